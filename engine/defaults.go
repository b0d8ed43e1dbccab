package engine

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/thepeerdrop/peerdrop/signaling"
)

// DefaultName turns a host name into a display name: its first label, or
// "peerdrop" when that is empty or not a valid name.
func DefaultName(host string) string {
	host, _, _ = strings.Cut(host, ".")
	if host == "" || signaling.ValidateName(host) != nil {
		return "peerdrop"
	}
	return host
}

// DefaultDownloadDir is ~/Downloads when it exists, else ".".
func DefaultDownloadDir() string {
	if home, err := os.UserHomeDir(); err == nil {
		d := filepath.Join(home, "Downloads")
		if info, err := os.Stat(d); err == nil && info.IsDir() {
			return d
		}
	}
	return "."
}
