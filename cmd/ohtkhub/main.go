// Command ohtkhub runs the ohtkhub hub, the protected OHTK Export API, or both as a demo.
package main

import (
	"os"

	"github.com/ohtkhub/ohtkhub/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
