package cli

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// No test scans the machine's own network (discovery's subnet scan).
	_ = os.Setenv("PEERDROP_SCAN", "off")
	os.Exit(m.Run())
}
