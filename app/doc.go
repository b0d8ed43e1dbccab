// Package app holds the Fyne desktop UI. It adapts engine events to widgets and holds no networking logic.
package app
