// Command icons writes the app's icon at the XDG icon theme's sizes, for
// the Debian package: icons SRC.png DIR NAME SIZE... writes
// DIR/SIZExSIZE/apps/NAME.png for each size (make release runs it).
package main

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/image/draw"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "icons:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 4 {
		return fmt.Errorf("usage: icons SRC.png DIR NAME SIZE...")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	src, err := png.Decode(f)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	for _, s := range args[3:] {
		size, err := strconv.Atoi(s)
		if err != nil || size < 8 || size > src.Bounds().Dx() {
			return fmt.Errorf("size %q: want 8 to %d", s, src.Bounds().Dx())
		}
		dst := image.NewRGBA(image.Rect(0, 0, size, size))
		draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Over, nil)
		dir := filepath.Join(args[1], fmt.Sprintf("%dx%d", size, size), "apps")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		out, err := os.Create(filepath.Join(dir, args[2]+".png"))
		if err != nil {
			return err
		}
		if err := png.Encode(out, dst); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
	return nil
}
