// Command peerdrop is the headless ThePeerDrop: send and receive files and
// messages from a terminal or a script. See `peerdrop help`.
package main

import (
	"os"

	"github.com/thepeerdrop/peerdrop/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
