// Package bench holds ThePeerDrop's end-to-end benchmarks (`make bench`):
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./bench/
//
// Each benchmark builds the peerdrop command (and bench/barepion, a minimal
// pion data-channel transfer with pion's default settings) and runs them as
// separate processes on loopback, timing the transfer phase and reading each
// process's peak RSS and CPU time from its rusage. The figures are printed
// as a table and reported with b.ReportMetric.
package bench
