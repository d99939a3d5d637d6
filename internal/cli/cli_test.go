package cli

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// helpArgs are the command lines of every subcommand; TestEveryCommandHasHelp checks that
// every registered command is among them.
var helpArgs = [][]string{
	{"hub"}, {"api"}, {"demo"}, {"setup"}, {"seed"},
	{"tenant", "create"}, {"authority", "create"}, {"user", "create"}, {"app", "create"}, {"apikey", "create"},
}

// TestEveryCommandHasHelp: --help prints a usage line, a sentence of what the command does and
// its flags, and exits 0; an unknown flag or a stray argument is one line and exit 2.
func TestEveryCommandHasHelp(t *testing.T) {
	covered := map[string]bool{}
	for _, args := range helpArgs {
		covered[args[0]] = true
		name := strings.Join(args, " ")
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(append(args[:len(args):len(args)], "--help"), &stdout, &stderr)
			// Help asked for goes to stdout, so that it pipes into a pager.
			lines := strings.Split(stdout.String(), "\n")
			if code != 0 || stderr.Len() != 0 || len(lines) < 6 {
				t.Fatalf("--help: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
			if !strings.HasPrefix(lines[0], "usage: ohtkhub "+name) || lines[1] != "" {
				t.Errorf("--help: usage line %q, then %q", lines[0], lines[1])
			}
			about := strings.Join(lines[2:slices.Index(lines[2:], "")+2], " ")
			if about == "" || !strings.HasSuffix(about, ".") || strings.HasPrefix(about, "  -") {
				t.Errorf("--help: no sentence of what it does: %q", about)
			}
			if !strings.Contains(stdout.String(), "\nflags:\n  -") {
				t.Errorf("--help: no flags:\n%s", stdout.String())
			}

			for _, bad := range [][]string{{"--no-such-flag"}, {"stray"}} {
				stdout.Reset()
				stderr.Reset()
				code = Main(append(args[:len(args):len(args)], bad...), &stdout, &stderr)
				if code != 2 || strings.Count(stderr.String(), "\n") != 1 || !strings.HasPrefix(stderr.String(), "ohtkhub "+name+": ") ||
					!strings.HasSuffix(stderr.String(), "(run 'ohtkhub "+name+" --help')\n") {
					t.Errorf("%v: exit %d, stderr %q; want 2 and one line", bad, code, stderr.String())
				}
			}
		})
	}
	for name := range commands {
		if !covered[name] {
			t.Errorf("command %q is not in helpArgs", name)
		}
	}
	// ohtkhub --help lists the commands on stdout; ohtkhub alone is a usage error.
	for _, tc := range []struct {
		args []string
		code int
	}{{[]string{"--help"}, 0}, {[]string{"help"}, 0}, {nil, 2}} {
		var stdout, stderr bytes.Buffer
		code := Main(tc.args, &stdout, &stderr)
		help := stdout.String()
		if tc.code != 0 {
			help = stderr.String()
		}
		if code != tc.code || !strings.HasPrefix(help, "usage: ohtkhub <command>") || !strings.Contains(help, "\n  demo ") {
			t.Errorf("ohtkhub %v: exit %d, stdout %q, stderr %q", tc.args, code, stdout.String(), stderr.String())
		}
	}
}
