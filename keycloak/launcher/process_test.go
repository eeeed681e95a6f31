package launcher

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

func TestStopProcessGroupEndsScriptAndChild(t *testing.T) {
	script, pidFile := fakeKC(t)
	cmd := exec.Command(script, pidFile)
	exited, err := startGroup(cmd, false)
	if err != nil {
		t.Fatal(err)
	}
	child := readPID(t, pidFile)
	if err := StopProcessGroup(context.Background(), cmd.Process.Pid, exited); err != nil {
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
		if _, err := startGroup(exec.Command(script, pidFile), false); err != nil {
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

// Detached processes (make up) survive their starter; StopProcessGroup ends them.
func TestDetachedSurvivesUntilStopped(t *testing.T) {
	script, pidFile := fakeKC(t)
	cmd := exec.Command(script, pidFile)
	exited, err := startGroup(cmd, true)
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
	if err := StopProcessGroup(context.Background(), cmd.Process.Pid, nil); err != nil {
		t.Fatal(err)
	}
	<-exited
	waitGone(t, child, "the detached JVM stand-in")
}

func TestExpandPlaceholders(t *testing.T) {
	t.Setenv("UMAWIDE_TEST_FROM_ENV", `a"b`)
	in := `{"a":"${UMAWIDE_TEST_UNSET:def}","b":"${UMAWIDE_TEST_FROM_ENV:x}","c":"${UMAWIDE_TEST_VAR}","d":"${UMAWIDE_TEST_UNSET}","e":"${UMAWIDE_TEST_UNSET:}"}`
	got := string(ExpandPlaceholders([]byte(in), map[string]string{"UMAWIDE_TEST_VAR": "v"}))
	want := `{"a":"def","b":"a\"b","c":"v","d":"${UMAWIDE_TEST_UNSET}","e":""}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestOlderThanSources(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src", "A.java")
	jar := filepath.Join(dir, "x.jar")
	os.MkdirAll(filepath.Dir(src), 0o755)
	os.WriteFile(src, []byte("x"), 0o644)
	if stale, _ := olderThanSources(jar, filepath.Join(dir, "src")); !stale {
		t.Fatal("missing JAR not stale")
	}
	os.WriteFile(jar, []byte("x"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(src, old, old)
	if stale, _ := olderThanSources(jar, filepath.Join(dir, "src")); stale {
		t.Fatal("fresh JAR stale")
	}
	os.Chtimes(src, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	if stale, _ := olderThanSources(jar, filepath.Join(dir, "src")); !stale {
		t.Fatal("JAR older than a source not stale")
	}
}
