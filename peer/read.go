package peer

import (
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/webrtc/v4"

	"github.com/thepeerdrop/peerdrop/internal/datachan"
)

// Reading a data channel: pion's own read loop allocates and copies every
// message for its OnMessage callback (a 64 KiB chunk of file data is a
// 64 KiB allocation, a GiB a GiB of garbage). The channel is detached
// instead, and one goroutine reads it into buffers of a pool, which the
// reader gives back with Message.Release.

// readSize is the pooled buffer size: a chunk of file data (the sender's
// 64 KiB) fits. A larger message (up to MaxMessageSize) gets a buffer of
// its own.
const readSize = 64 * 1024

var readPool = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

func giveBack(b []byte) {
	if cap(b) == readSize {
		b = b[:readSize]
		readPool.Put(&b)
	}
}

// startReading detaches dc, just opened, and reads it until it closes.
// A detached channel counts as open as soon as its OPEN is sent; onOpen
// waits, on the dialer's side, for the peer's ACK, which our reading
// handles (pion's DCEP), as pion's own read loop would: a dialer's channel
// is open when the peer has it.
func (c *Conn) startReading(dc *webrtc.DataChannel, dialer bool, onOpen func()) {
	raw, err := dc.Detach()
	if err != nil {
		// Closed as it opened: it never counts as open.
		slog.Debug("data channel detach", slog.Any("err", err))
		c.markDone()
		return
	}
	if d, ok := raw.(*datachannel.DataChannel); ok && dialer {
		d.OnOpen(onOpen)
	} else {
		onOpen()
	}
	c.reading.Store(true)
	go c.readLoop(raw)
}

// drainTimeout bounds how long, after the peer closed the channel, its
// last messages may take to be read (a receiver busy with what came
// before): then Done closes whatever is left.
const drainTimeout = 10 * time.Second

// readLoop delivers what raw carries to Messages until the channel or
// the connection closes. A channel the peer closed is read to its end
// first: nothing it sent before closing is lost.
func (c *Conn) readLoop(raw datachannel.ReadWriteCloser) {
	defer c.markDone()
	for {
		buf := *readPool.Get().(*[]byte)
		n, isString, err := raw.ReadDataChannel(buf)
		for size := 2 * readSize; errors.Is(err, io.ErrShortBuffer) && size <= MaxMessageSize; size *= 2 {
			giveBack(buf)
			buf = make([]byte, size)
			n, isString, err = raw.ReadDataChannel(buf)
		}
		if err != nil {
			giveBack(buf)
			if !errors.Is(err, io.EOF) {
				slog.Debug("data channel read", slog.Any("err", err))
			}
			return
		}
		m := datachan.Lent(isString, buf[:n], giveBack)
		select {
		case c.msgs <- m:
		case <-c.done:
			m.Release()
			return
		}
	}
}
