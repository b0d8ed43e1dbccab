// Package app is the Fyne desktop UI of ThePeerDrop: the nearby devices,
// incoming offers, the transfer queue, conversations and settings. It
// adapts engine events to widgets (HandleEvent hands them to the Fyne
// thread) and turns clicks and drops into calls on a small Engine interface
// of its own; it holds no networking logic.
package app
