package kctest

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/keycloak/launcher"
)

// KeycloakLog is the path of Keycloak's log where this process can read it:
// a Keycloak it started itself, or KEYCLOAK_LOG next to KEYCLOAK_URL (devstack
// exec sets both); "" otherwise.
func KeycloakLog(kc *launcher.Keycloak) string {
	path := kc.LogPath
	if path == "" {
		path = os.Getenv("KEYCLOAK_LOG")
	}
	if path == "" {
		return ""
	}
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

// LogMark is a position in a log file: what was written after it can be
// searched.
type LogMark struct {
	Path string
	off  int64
}

// MarkLog marks the current end of the log at path ("" gives a mark that
// finds nothing).
func MarkLog(path string) LogMark {
	m := LogMark{Path: path}
	if fi, err := os.Stat(path); err == nil {
		m.off = fi.Size()
	}
	return m
}

// Lines are the lines written after the mark that contain every needle.
func (m LogMark) Lines(needles ...string) []string {
	if m.Path == "" {
		return nil
	}
	f, err := os.Open(m.Path)
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, m.off, 1<<40))
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		all := true
		for _, s := range needles {
			if !strings.Contains(line, s) {
				all = false
				break
			}
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

// WaitLines waits up to d for n lines with every needle after the mark and
// returns how many there are.
func (m LogMark) WaitLines(d time.Duration, n int, needles ...string) int {
	deadline := time.Now().Add(d)
	for {
		got := len(m.Lines(needles...))
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DenialNeedles select the lines the claims-token policy logs when it denies
// a grant in realm for reason (any reason when empty), for LogMark.Lines.
func DenialNeedles(reason, realm string) []string {
	if reason == "" {
		return []string{"claims-token policy denied: reason=", " realm=" + realm + " "}
	}
	return []string{"claims-token policy denied: reason=" + reason + " realm=" + realm + " "}
}

// Denials counts the policy's denials in realm for reason (any when empty)
// after the mark.
func (m LogMark) Denials(reason, realm string) int {
	return len(m.Lines(DenialNeedles(reason, realm)...))
}

// ExpectDenial checks that the claims-token policy logged exactly one denial
// with reason (any when empty) for realm after the mark, waiting up to d for
// it to be written; it reports a mismatch with t.Errorf and returns false.
// Where the log is not readable (a mark without Path) there is nothing to
// check.
func (m LogMark) ExpectDenial(t testing.TB, d time.Duration, reason, realm string) bool {
	t.Helper()
	if m.Path == "" {
		return true
	}
	needles := DenialNeedles(reason, realm)
	if n := m.WaitLines(d, 1, needles...); n != 1 {
		t.Errorf("Keycloak's log has %d lines with %q, want 1; the policy's lines: %q", n, needles,
			m.Lines(DenialNeedles("", realm)...))
		return false
	}
	return true
}
