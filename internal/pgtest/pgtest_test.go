package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startOrSkip starts a server, or skips where the binaries are not installed
// (the only reason to skip: any other failure fails).
func startOrSkip(t *testing.T) *Server {
	t.Helper()
	s, err := Start(context.Background(), Options{Logger: quiet()})
	if errors.Is(err, ErrNoServer) {
		t.Skipf("private PostgreSQL NOT tested: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func processUID(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := bufio.NewScanner(strings.NewReader(string(data)))
	for s.Scan() {
		if f := strings.Fields(s.Text()); len(f) > 1 && f[0] == "Uid:" {
			uid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return uid
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return -1
}

func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && strings.Contains(string(data), ") Z ") // a zombie holds nothing
}

func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if gone(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("%s (pid %d) still runs", what, pid)
}

func TestStartServesTestDatabaseAndStopRemovesEverything(t *testing.T) {
	s := startOrSkip(t)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = s.Stop(context.Background())
		}
	})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.URL(Database))
	if err != nil {
		t.Fatal(err)
	}
	var user, db string
	var super bool
	if err := conn.QueryRow(ctx, "SELECT current_user, current_database(), rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&user, &db, &super); err != nil {
		t.Fatal(err)
	}
	// The tests create databases (scale-out, cluster) and schemas (store suite).
	if user != User || db != Database || !super {
		t.Fatalf("connected as %s to %s (superuser %v), want %s to %s as superuser", user, db, super, User, Database)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE pgtest_probe"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	conn.Close(ctx)

	// A wrong password is refused: the server is not open to every local user.
	bad := *s
	bad.Password = "wrong"
	if c, err := pgx.Connect(ctx, bad.URL(Database)); err == nil {
		c.Close(ctx)
		t.Fatal("a wrong password was accepted")
	}

	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s.PID))
	if err != nil || !strings.Contains(string(cmdline), "cluster_name="+ClusterName(os.Getenv("UMAWIDE_RUN_ID"))) {
		t.Errorf("server command line %q lacks its cluster name (%v)", cmdline, err)
	}
	if os.Geteuid() == 0 {
		if uid := processUID(t, s.PID); uid == 0 {
			t.Fatal("the server runs as root")
		}
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	waitGone(t, s.PID, "the postmaster after Stop")
	if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("folder %s after Stop: %v", s.Dir, err)
	}
	if c, err := pgx.Connect(ctx, s.URL(Database)); err == nil {
		c.Close(ctx)
		t.Fatal("the server still answers after Stop")
	}
}

// The process that started the server dies without any chance to clean up
// (SIGKILL): the server ends with it, and the next Start removes its folder.
func TestServerDiesWithItsStarter(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") != "" {
		s, err := Start(context.Background(), Options{Logger: quiet()})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		fmt.Println(s.PID, s.Dir)
		time.Sleep(time.Minute) // killed long before
		os.Exit(4)
	}
	if _, err := FindBinDir(os.Getenv(BinDirEnv)); err != nil {
		t.Skipf("private PostgreSQL NOT tested: %v", err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithItsStarter$")
	child.Env = append(os.Environ(), "PGTEST_CHILD=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = child.Process.Kill()
		t.Fatalf("child: %v", err)
	}
	var pid int
	var dir string
	if _, err := fmt.Sscan(line, &pid, &dir); err != nil {
		_ = child.Process.Kill()
		t.Fatalf("child said %q", line)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	waitGone(t, pid, "the postmaster after its starter was killed")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the folder should stay until the next start: %v", err)
	}
	removeStale(filepath.Dir(dir), quiet())
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		_ = os.RemoveAll(dir)
		t.Fatalf("folder %s of a dead run not removed: %v", dir, err)
	}
}

// removeStale leaves alone what is not a dead run's: a live owner, a folder
// without owner file.
func TestRemoveStaleKeepsLiveFolders(t *testing.T) {
	tmp := t.TempDir()
	live := filepath.Join(tmp, dirPrefix+"live")
	foreign := filepath.Join(tmp, dirPrefix+"foreign")
	dead := filepath.Join(tmp, dirPrefix+"dead")
	for _, d := range []string{live, foreign, dead} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(live, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	// A process that has certainly exited: a finished child of ours.
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, "owner.pid"), []byte(strconv.Itoa(c.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	removeStale(tmp, quiet())
	for _, d := range []string{live, foreign} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", filepath.Base(d), err)
		}
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead run's folder kept: %v", err)
	}
}

func TestFindBinDir(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := FindBinDir(dir); err != nil || got != dir {
		t.Fatalf("FindBinDir(%s) = %s, %v", dir, got, err)
	}
	empty := t.TempDir()
	if _, err := FindBinDir(empty); !errors.Is(err, ErrNoServer) {
		t.Fatalf("FindBinDir of a folder without binaries: %v, want ErrNoServer", err)
	}
	if versionOf("/usr/lib/postgresql/15/bin") <= versionOf("/usr/lib/postgresql/9.6/bin") {
		t.Fatal("15 must sort after 9.6")
	}
}

func TestRunAsRefusesRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		cred, err := runAs("root")
		if err != nil || cred != nil {
			t.Fatalf("not root: runAs = %v, %v; want to run as ourselves", cred, err)
		}
		return
	}
	if _, err := runAs("root"); err == nil {
		t.Fatal("runAs(root) accepted")
	}
	cred, err := runAs("")
	if err != nil || cred == nil || cred.Uid == 0 {
		t.Fatalf("runAs default = %v, %v", cred, err)
	}
}
