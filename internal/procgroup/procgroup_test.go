package procgroup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeKC mimics how kc.sh runs the JVM: a bash script that starts its child in
// the background, forwards TERM/INT to it through a trap and waits. The
// child's PID goes to pidFile.
func fakeKC(t *testing.T) (script, pidFile string) {
	dir := t.TempDir()
	script = filepath.Join(dir, "kc.sh")
	pidFile = filepath.Join(dir, "jvm.pid")
	body := `#!/bin/bash
trap 'kill -TERM $PID; wait $PID' TERM INT
sleep 300 &
PID=$!
echo $PID > "$1"
wait $PID
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, pidFile
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(path)
		if err == nil && strings.TrimSpace(string(data)) != "" {
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		// A zombie is gone for our purpose: it holds no resources but its entry.
		if data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && strings.Contains(string(data), ") Z ") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("%s (pid %d) still runs", what, pid)
}

func TestStopEndsScriptAndChild(t *testing.T) {
	script, pidFile := fakeKC(t)
	cmd := exec.Command(script, pidFile)
	exited, err := Start(cmd, false)
	if err != nil {
		t.Fatal(err)
	}
	child := readPID(t, pidFile)
	if err := Stop(context.Background(), cmd.Process.Pid, exited); err != nil {
		t.Fatal(err)
	}
	<-exited
	waitGone(t, child, "the JVM stand-in")
}

// The parent dies without any chance to clean up (SIGKILL): the parent-death
// signal still ends the script and, through its trap, the child.
func TestChildDiesWithParent(t *testing.T) {
	if os.Getenv("LAUNCHER_FAKE_PARENT") != "" {
		script, pidFile := os.Getenv("LAUNCHER_FAKE_SCRIPT"), os.Getenv("LAUNCHER_FAKE_PIDFILE")
		if _, err := Start(exec.Command(script, pidFile), false); err != nil {
			os.Exit(3)
		}
		time.Sleep(time.Minute) // killed long before
		os.Exit(4)
	}
	script, pidFile := fakeKC(t)
	parent := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithParent$")
	parent.Env = append(os.Environ(), "LAUNCHER_FAKE_PARENT=1",
		"LAUNCHER_FAKE_SCRIPT="+script, "LAUNCHER_FAKE_PIDFILE="+pidFile)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	child := readPID(t, pidFile)
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	waitGone(t, child, "the JVM stand-in after its parent was killed")
}

// Detached processes (make up) survive their starter; Stop ends them.
func TestDetachedSurvivesUntilStopped(t *testing.T) {
	script, pidFile := fakeKC(t)
	cmd := exec.Command(script, pidFile)
	exited, err := Start(cmd, true)
	if err != nil {
		t.Fatal(err)
	}
	child := readPID(t, pidFile)
	if cmd.SysProcAttr.Pdeathsig != 0 {
		t.Fatal("a detached process got a parent-death signal")
	}
	if syscall.Kill(child, 0) != nil {
		t.Fatal("child not running")
	}
	if err := Stop(context.Background(), cmd.Process.Pid, nil); err != nil {
		t.Fatal(err)
	}
	<-exited
	waitGone(t, child, "the detached JVM stand-in")
}
