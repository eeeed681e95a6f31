// Package procgroup starts child processes in their own process group, tied
// to this process's life unless detached, and stops a whole group: Keycloak
// (kc.sh and its JVM) and the services of the development stack and the
// end-to-end tests.
package procgroup

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Start starts cmd in its own process group, so that Stop can end it and
// its children together (kc.sh and the JVM). Unless detached, the process gets
// SIGTERM when this process dies for any reason (Linux parent-death signal);
// kc.sh's trap forwards that to the JVM. The returned channel closes when the
// process exits.
//
// The start happens on a goroutine locked to its OS thread, which then waits
// for the process: the parent-death signal fires when the thread that forked
// the child exits, so that thread must live as long as the child.
func Start(cmd *exec.Cmd, detached bool) (<-chan struct{}, error) {
	var deathSignal syscall.Signal
	if !detached {
		deathSignal = syscall.SIGTERM
	}
	return StartWithDeathSignal(cmd, deathSignal)
}

// StartWithDeathSignal is Start for a process that wants another signal than
// SIGTERM when this process dies (PostgreSQL: SIGTERM is its "smart"
// shutdown, which waits for every client; SIGINT ends it now); 0 detaches it.
// A cmd.SysProcAttr that is already set (Credential: run as another user)
// is kept; the kernel keeps the parent-death signal across that user change
// because Go sets it after switching the user.
func StartWithDeathSignal(cmd *exec.Cmd, deathSignal syscall.Signal) (<-chan struct{}, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = deathSignal
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}

// Stop sends SIGTERM to a process group, waits for its leader to
// exit (exited, or polling when nil), then SIGKILLs whatever is left.
func Stop(ctx context.Context, pgid int, exited <-chan struct{}) error {
	if pgid <= 0 {
		return nil
	}
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("procgroup: stopping process group %d: %w", pgid, err)
	}
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		if exited == nil && !groupAlive(pgid) {
			break
		}
		select {
		case <-exited:
			exited = nil // the leader is gone; now wait for the rest of the group
		case <-tick.C:
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	// The JVM may outlive kc.sh by a moment; nothing of the group survives this.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("procgroup: killing process group %d: %w", pgid, err)
	}
	return nil
}

func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}
