package version

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// App is FyneApp.toml's version: one number, in two places a test keeps equal.
func TestAppIsFyneAppToml(t *testing.T) {
	b, err := os.ReadFile("../../FyneApp.toml")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^Version\s*=\s*"([^"]+)"`).FindSubmatch(b)
	require.NotNil(t, m, "FyneApp.toml has a Version")
	assert.Equal(t, string(m[1]), App, "internal/version.App must follow FyneApp.toml's Version")
}

func TestString(t *testing.T) {
	assert.Equal(t, "0.1.0", Info{Version: "0.1.0"}.String())
	d := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	assert.Equal(t, "0.1.0 (commit 0123456789ab, 2026-12-05)", Info{Version: "0.1.0", Commit: "0123456789abcdef", Date: d}.String())
	assert.Equal(t, "0.1.0 (commit 0123456789ab+changes)", Info{Version: "0.1.0", Commit: "0123456789abcdef", Modified: true}.String())
	assert.Equal(t, App, Get().Version)
}
