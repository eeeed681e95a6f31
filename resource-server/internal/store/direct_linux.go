package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// errInvalid is what Linux answers O_DIRECT where a filesystem cannot do it,
// or a direct write it cannot align.
var errInvalid error = unix.EINVAL

// setDirectIO turns O_DIRECT on or off on f's open file description.
func setDirectIO(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			ferr = err
			return
		}
		if on {
			flags |= unix.O_DIRECT
		} else {
			flags &^= unix.O_DIRECT
		}
		_, ferr = unix.FcntlInt(fd, unix.F_SETFL, flags)
	}); err != nil {
		return err
	}
	if ferr != nil {
		return &os.PathError{Op: "fcntl O_DIRECT", Path: f.Name(), Err: ferr}
	}
	return nil
}
