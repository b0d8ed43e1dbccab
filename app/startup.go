package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"

	"github.com/thepeerdrop/peerdrop/internal/atomicfile"
)

// Preference keys of the start settings.
const (
	prefStartMinimised = "start.minimised"
	prefStartAtLogin   = "start.atLogin"
)

// autostartName is the XDG autostart entry's file name (the app id).
const autostartName = "org.thepeerdrop.app.desktop"

// startup are the start settings.
type startup struct {
	minimised bool // the window stays hidden at start (with a tray icon)
	atLogin   bool // an autostart entry starts the app at login
}

func loadStartup(p fyne.Preferences) startup {
	return startup{minimised: p.Bool(prefStartMinimised), atLogin: p.Bool(prefStartAtLogin)}
}

// startupItems are the Settings form's items for starting the app: start
// minimised, and start at login where the desktop reads XDG autostart
// entries.
func (s *settingsView) startupItems() []*widget.FormItem {
	u := s.u
	minimised := widget.NewCheck("Start minimised", func(on bool) { s.prefs.SetBool(prefStartMinimised, on) })
	minimised.SetChecked(loadStartup(s.prefs).minimised)
	item := widget.NewFormItem("Start", minimised)
	item.HintText = "Hidden in the tray at start, where there is one."
	items := []*widget.FormItem{item}
	if !xdgDesktop(runtime.GOOS) {
		return items
	}

	// The entry on disk is the truth (it may have been removed by hand).
	// It is left as it is: rewriting it here would change the config dir
	// it starts with to this run's.
	path, err := autostartPath()
	atLogin := err == nil && fileExists(path)
	s.prefs.SetBool(prefStartAtLogin, atLogin)
	login := widget.NewCheck("Start at login", nil)
	login.SetChecked(atLogin)
	login.OnChanged = func(on bool) {
		if err := u.setStartAtLogin(on); err != nil {
			u.ShowError(err)
			return
		}
		s.prefs.SetBool(prefStartAtLogin, on)
	}
	loginItem := widget.NewFormItem("", login)
	loginItem.HintText = "Starts minimised, ready to receive."
	return append(items, loginItem)
}

// setStartAtLogin writes or removes the autostart entry.
func (u *UI) setStartAtLogin(on bool) error {
	path, err := autostartPath()
	if err != nil {
		return fmt.Errorf("start at login: %w", err)
	}
	if !on {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("could not turn off start at login: %w", err)
		}
		return nil
	}
	if err := writeAutostart(path, u.opts.ConfigDir); err != nil {
		return fmt.Errorf("could not turn on start at login: %w", err)
	}
	return nil
}

// xdgDesktop reports whether the desktop starts XDG autostart entries.
func xdgDesktop(goos string) bool {
	switch goos {
	case "linux", "freebsd", "openbsd", "netbsd":
		return true
	}
	return false
}

// autostartPath is $XDG_CONFIG_HOME/autostart/org.thepeerdrop.app.desktop.
func autostartPath() (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config folder: %w", err)
	}
	return filepath.Join(base, "autostart", autostartName), nil
}

// writeAutostart writes the autostart entry: this binary, minimised, with
// the config dir it runs with.
func writeAutostart(path, configDir string) error {
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program: %w", err)
	}
	args := []string{bin, "--minimised"}
	if configDir != "" {
		abs, err := filepath.Abs(configDir)
		if err != nil {
			return fmt.Errorf("config folder: %w", err)
		}
		args = append(args, "--config-dir", abs)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	return atomicfile.Write(path, []byte(autostartEntry(args)), 0o644)
}

// autostartEntry is the desktop entry that runs args.
func autostartEntry(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = execQuote(a)
	}
	return "[Desktop Entry]\n" +
		"Type=Application\n" +
		"Name=ThePeerDrop\n" +
		"Comment=Receive files from nearby devices\n" +
		"Exec=" + strings.Join(quoted, " ") + "\n" +
		"Icon=org.thepeerdrop.app\n" +
		"Terminal=false\n" +
		"X-GNOME-Autostart-enabled=true\n"
}

// execQuote quotes one argument of an Exec key as the Desktop Entry
// specification says: double quotes around anything with a reserved
// character, a backslash before ", `, $ and \ inside them; % is doubled.
// The value's own escapes (\\ for a backslash) apply on top.
func execQuote(arg string) string {
	arg = strings.ReplaceAll(arg, "%", "%%")
	if arg != "" && !strings.ContainsAny(arg, " \t\n\"'\\><~|&;$*?#()`=") {
		return arg
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range arg {
		switch r {
		case '"', '`', '$', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	// The string value's own escapes: each backslash doubled, and a
	// line break written as \n.
	return strings.ReplaceAll(strings.ReplaceAll(b.String(), `\`, `\\`), "\n", `\n`)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
