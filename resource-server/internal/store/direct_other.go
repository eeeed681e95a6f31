//go:build !linux

package store

import (
	"errors"
	"os"
	"syscall"
)

// errInvalid: see direct_linux.go.
var errInvalid error = syscall.EINVAL

// setDirectIO: O_DIRECT is used on Linux only; elsewhere content files are
// written through the page cache.
func setDirectIO(f *os.File, on bool) error {
	if !on {
		return nil
	}
	return errors.ErrUnsupported
}
