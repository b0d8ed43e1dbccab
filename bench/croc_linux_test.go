//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// crocVersion is the croc the issue compares against. It is built from the
// module proxy into a module of its own, so it never enters our go.mod.
const crocVersion = "v10.7.0"

var (
	crocOnce sync.Once
	crocBin  string
	crocErr  error
)

// buildCroc builds croc once per run, within 5 minutes, or says why not.
func buildCroc(b *testing.B) (string, error) {
	b.Helper()
	binaries(b) // binDir exists from here on
	crocOnce.Do(func() {
		dir := filepath.Join(binDir, "crocmod")
		if crocErr = os.MkdirAll(dir, 0o755); crocErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out := filepath.Join(binDir, "croc")
		for _, args := range [][]string{
			{"mod", "init", "crocbench"},
			{"get", "github.com/schollz/croc/v10@" + crocVersion},
			{"build", "-o", out, "github.com/schollz/croc/v10"},
		} {
			cmd := exec.CommandContext(ctx, "go", args...)
			cmd.Dir = dir
			if o, err := cmd.CombinedOutput(); err != nil {
				crocErr = fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, lastLine(o))
				return
			}
		}
		crocBin = out
	})
	return crocBin, crocErr
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// crocPorts are the relay's ports: the first is the one clients are given.
const crocPorts = "19009,19010,19011,19012,19013"

// runCroc sends src with croc through a croc relay on the sender's host, as a
// user runs it on a LAN without the public relay: `croc relay` there, then
// `croc send` and `croc` (receive) with the same secret. croc prints no
// events, so only the total (sender start to both exited) is timed. The
// relay's CPU is counted on the sender's side.
func runCroc(b *testing.B, croc string, pl place, work, src, outDir string) (pairResult, error) {
	b.Helper()
	secret := fmt.Sprintf("peerdrop-bench-%d", time.Now().UnixNano())
	home := func(side string) string {
		d := filepath.Join(work, "croc-home-"+side)
		_ = os.MkdirAll(d, 0o700)
		return "HOME=" + d
	}
	relayAddr := pl.send.addr + ":19009"
	relay := startProc(b, "croc relay", "ip", inNS(pl.send.ns, []string{home("relay")}, -1,
		croc, "relay", "--host", pl.send.addr, "--ports", crocPorts)...)
	defer relay.kill()
	if err := waitFor(relay, "starting TCP server", 10*time.Second); err != nil {
		return pairResult{}, err
	}
	env := func(side string) []string { return []string{home(side), "CROC_SECRET=" + secret} }
	send := startProc(b, "croc sender", "ip", inNS(pl.send.ns, env("send"), -1,
		croc, "--relay", relayAddr, "--no-compress", "--yes", "send", "--no-local", src)...)
	recv := startProc(b, "croc receiver", "ip", inNS(pl.recv.ns, env("recv"), -1,
		croc, "--relay", relayAddr, "--yes", "--overwrite", "--out", outDir)...)
	t0 := send.start
	defer send.kill()
	defer recv.kill()
	deadline := time.After(5 * time.Minute)
	for _, p := range []*proc{send, recv} {
		select {
		case <-p.exited:
		case <-deadline:
			return pairResult{}, fmt.Errorf("croc did not finish within 5 minutes")
		}
		if p.waitErr != nil {
			return pairResult{}, fmt.Errorf("%s: %v: %s", p.name, p.waitErr, lastLine([]byte(p.stderr.String())))
		}
	}
	relay.kill()
	last := send.exitAt
	if recv.exitAt.After(last) {
		last = recv.exitAt
	}
	r := pairResult{impl: "croc", total: last.Sub(t0), send: send.usage(), recv: recv.usage()}
	ru := relay.usage()
	r.send.user += ru.user
	r.send.sys += ru.sys
	return r, nil
}

// waitFor waits until p's output holds s.
func waitFor(p *proc, s string, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if strings.Contains(p.stderr.String(), s) || strings.Contains(p.lastOut.String(), s) {
			return nil
		}
		if p.isDone() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New(p.name + " did not start: " + lastLine([]byte(p.stderr.String())))
}
