// Package cli holds the ohtkhub command line: one file per subcommand.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand of ohtkhub.
type command struct {
	name    string
	summary string
	// run parses args and does the work. Errors are printed as one line.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is filled by the init functions of the files in this package.
var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("cli: duplicate command " + c.name)
	}
	commands[c.name] = c
}

// errUsage marks an error already explained by the flag package's usage output.
var errUsage = errors.New("usage")

// Main runs the ohtkhub command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout) // asked for: on standard output, so that it pipes into a pager
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ohtkhub: unknown command %q (run 'ohtkhub --help')\n", args[0])
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintf(stderr, "ohtkhub %s: %v\n", c.name, err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ohtkhub <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-20s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'ohtkhub <command> --help' for a command's flags.")
}

// newFlags returns the flag set of the command name. Its --help prints the usage line, about
// (what the command does, in sentences) and the flags on stdout; its errors go to stderr and
// are returned, not exited on.
func newFlags(name string, stdout, stderr io.Writer, line, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("ohtkhub "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: "+line)
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, about)
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, "flags:")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	return fs
}

// parse parses args into fs. --help prints the usage and returns flag.ErrHelp; a bad flag or
// argument prints one line and returns errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	// The flag package prints the whole usage after a bad flag: print one line instead.
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case err != nil:
		fmt.Fprintf(out, "%s: %v (run '%s --help')\n", fs.Name(), err, fs.Name())
		return errUsage
	case fs.NArg() > 0:
		fmt.Fprintf(out, "%s: unexpected argument %q (run '%s --help')\n", fs.Name(), fs.Arg(0), fs.Name())
		return errUsage
	}
	return nil
}
