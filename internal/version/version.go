// Package version says which ThePeerDrop this is: the app's version (the
// one FyneApp.toml gives, which a test keeps equal) and, from Go's build
// information, the commit it was built from and that commit's date. It is
// not the protocol's version, which the LAN hello and the server's
// /healthz carry (signaling.Version).
package version

import (
	"fmt"
	"runtime/debug"
	"time"
)

// App is the application's version, as FyneApp.toml says.
const App = "0.1.0"

// Info is a build of ThePeerDrop.
type Info struct {
	Version  string
	Commit   string    // "" when unknown (built outside a git checkout)
	Date     time.Time // the commit's date; zero when unknown
	Modified bool      // built from a checkout with changes not committed
}

// Get is this build.
func Get() Info {
	in := Info{Version: App}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.time":
			in.Date, _ = time.Parse(time.RFC3339, s.Value)
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is the version line: "0.1.0 (commit 1a2b3c4d5e6f, 2026-12-05)",
// with "+changes" after the commit of a modified checkout.
func (in Info) String() string {
	if in.Commit == "" {
		return in.Version
	}
	c := in.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if in.Modified {
		c += "+changes"
	}
	if in.Date.IsZero() {
		return fmt.Sprintf("%s (commit %s)", in.Version, c)
	}
	return fmt.Sprintf("%s (commit %s, %s)", in.Version, c, in.Date.UTC().Format("2006-01-02"))
}
