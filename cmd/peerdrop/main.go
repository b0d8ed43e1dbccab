// Command peerdrop is the headless ThePeerDrop: send and receive files and
// messages from a terminal or a script. See `peerdrop help`.
//
// PEERDROP_CPUPROFILE=FILE writes a CPU profile of the run to FILE, for
// `go tool pprof` (docs/ARCHITECTURE.md, Speed).
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/thepeerdrop/peerdrop/cli"
)

func main() {
	if path := os.Getenv("PEERDROP_CPUPROFILE"); path != "" {
		stop, err := cpuProfile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "peerdrop: CPU profile: %v\n", err)
			os.Exit(1)
		}
		code := cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// cpuProfile starts a CPU profile into path; stop ends it.
func cpuProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
