//go:build ignore

// Command wmdelete asks an X window to close as a window manager does when
// its close button is clicked: a WM_DELETE_WINDOW client message. The
// end-to-end tests run the desktop app under Xvfb with no window manager;
// xdotool's windowclose destroys the window instead, which no app sees as
// a close request.
//
//	wmdelete WINDOW-ID   (DISPLAY from the environment)
package main

/*
#cgo LDFLAGS: -lX11
#include <X11/Xlib.h>

static int sendDelete(unsigned long w) {
	Display *d = XOpenDisplay(NULL);
	if (d == NULL) return -1;
	XEvent ev = {0};
	ev.xclient.type = ClientMessage;
	ev.xclient.window = (Window)w;
	ev.xclient.message_type = XInternAtom(d, "WM_PROTOCOLS", False);
	ev.xclient.format = 32;
	ev.xclient.data.l[0] = XInternAtom(d, "WM_DELETE_WINDOW", False);
	ev.xclient.data.l[1] = CurrentTime;
	int ok = XSendEvent(d, (Window)w, False, NoEventMask, &ev);
	XSync(d, False);
	XCloseDisplay(d);
	return ok ? 0 : -2;
}
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: wmdelete WINDOW-ID")
		os.Exit(2)
	}
	w, err := strconv.ParseUint(os.Args[1], 0, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wmdelete:", err)
		os.Exit(2)
	}
	if r := C.sendDelete(C.ulong(w)); r != 0 {
		fmt.Fprintln(os.Stderr, "wmdelete: cannot send the message:", r)
		os.Exit(1)
	}
}
