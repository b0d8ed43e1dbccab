// Package peertest builds what the tests of the packages above peer share:
// a device's peer config. (peer's own tests cannot import it.)
package peertest

import (
	"testing"

	"github.com/thepeerdrop/peerdrop/internal/testkit"
	"github.com/thepeerdrop/peerdrop/peer"
)

// Config is the peer config of a new device called name, its identity in
// a folder of t's own.
func Config(t testing.TB, name string) peer.Config {
	t.Helper()
	return peer.Config{Identity: testkit.Identity(t), Name: name}
}
