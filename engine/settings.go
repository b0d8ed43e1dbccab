package engine

// Settings that change while the engine runs: auto-accept, quick save
// and the download folder.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/thepeerdrop/peerdrop/transfer"
)

// SetAutoAcceptTrusted turns auto-accept from trusted devices on or off.
func (e *Engine) SetAutoAcceptTrusted(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.autoAccept = on
}

// SetQuickSave turns quick save on or off: every offer, from any device,
// is accepted without asking (Config.QuickSave).
func (e *Engine) SetQuickSave(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.quickSave = on
}

// QuickSave reports whether quick save is on.
func (e *Engine) QuickSave() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.quickSave
}

// DownloadDir is the folder received files go to now (absolute): the one
// in Config, ~/Downloads by default, or the last SetDownloadDir.
func (e *Engine) DownloadDir() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dir
}

// SetDownloadDir changes where received files go (for new offers). The
// folder is created; a relative one is taken from the working directory.
func (e *Engine) SetDownloadDir(dir string) error {
	if dir == "" {
		return errors.New("download folder: empty path")
	}
	abs, err := prepareDir(dir)
	if err != nil {
		return err
	}
	transfer.CleanStale(abs, transfer.StaleAfter)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dir = abs
	return nil
}

// prepareDir makes dir absolute and creates it.
func prepareDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("download folder %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("download folder: %w", err)
	}
	return abs, nil
}
