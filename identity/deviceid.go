package identity

import "github.com/thepeerdrop/peerdrop/internal/device"

// IDLen is the length of a device id (device.IDLen).
const IDLen = device.IDLen

// ErrIDMismatch is device.ErrIDMismatch.
var ErrIDMismatch = device.ErrIDMismatch

// DeviceIDFor is device.IDFor: the id of the certificate with fingerprint fp.
func DeviceIDFor(fp string) string { return device.IDFor(fp) }

// CheckID is device.CheckID: ErrIDMismatch unless id is DeviceIDFor(fp).
func CheckID(id, fp string) error { return device.CheckID(id, fp) }
