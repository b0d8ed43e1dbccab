//go:build !linux

package relay

import (
	"errors"
	"sync"
)

// notifyAddressChanges has no notifications to offer here: the timer alone
// renews the set.
func notifyAddressChanges(chan<- struct{}, *sync.WaitGroup) (func(), error) {
	return nil, errors.New("not supported on this system")
}
