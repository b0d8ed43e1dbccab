package app

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/thepeerdrop/peerdrop/internal/version"
)

// Settings ends with an About line: the app's version, with the commit
// it was built from when the build knows it.
func TestSettingsAbout(t *testing.T) {
	u, _ := newTestUI(t)
	u.tabs.Select(u.settingsTab)
	assert.True(t, shows(u.win, "ThePeerDrop "+version.App), "the About line names the version")
}
