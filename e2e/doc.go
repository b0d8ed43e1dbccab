// Package e2e holds the end-to-end tests: they run the real binaries on
// Linux (network namespaces, Xvfb, a private session bus), so every test
// file is built for Linux alone; this file keeps the package whole
// elsewhere, where `make vet-cross` vets it.
package e2e
