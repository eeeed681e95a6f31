package flagenv

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", []byte("  s3cret\n"))
	for _, e := range []map[string]string{nil, {"SVC_CLIENT_SECRET_FILE": good}} {
		s, c := newSet(&bytes.Buffer{})
		args := []string{"-client-secret-file", good}
		if e != nil {
			args = nil
		}
		if err := s.Parse(args, env(e)); err != nil || c.secret != "s3cret" {
			t.Fatalf("secret %q, %v", c.secret, err)
		}
	}
	for _, bad := range []string{
		write("empty", []byte("\n")),
		write("big", bytes.Repeat([]byte("x"), MaxSecretFileBytes+1)),
		filepath.Join(dir, "missing"),
	} {
		s, _ := newSet(&bytes.Buffer{})
		if err := s.Parse([]string{"-client-secret-file", bad}, env(nil)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
