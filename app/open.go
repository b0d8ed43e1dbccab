package app

import (
	"fmt"
	"net/url"
	"os/exec"
	"runtime"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
)

// openFile opens a file or folder with the desktop's default application.
// On Linux and the BSDs it runs xdg-open itself and waits for it: Fyne's
// OpenURL starts xdg-open and never waits, leaving a zombie per Open.
// Elsewhere Fyne's OpenURL does it (it waits on macOS, and Windows has no
// child process).
func openFile(a fyne.App, path string) error {
	switch runtime.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd":
		cmd := exec.Command("xdg-open", path)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start xdg-open: %w", err)
		}
		// xdg-open may run the application in the foreground: this
		// goroutine lasts as long as it does and ends with it.
		go func() { _ = cmd.Wait() }()
		return nil
	}
	uri, err := url.Parse(storage.NewFileURI(path).String())
	if err != nil {
		return err
	}
	return a.OpenURL(uri)
}
