package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/jwk"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testOpts(c *clock) Options {
	return Options{
		Grace:   10 * time.Minute,
		RSABits: 2048, // fast enough for tests; production default is 3072
		Now:     c.Now,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func keyDir(t *testing.T) string { return filepath.Join(t.TempDir(), "keys") }

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func pemFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOpenCreatesKeyOnce(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			c := newClock()
			dir := keyDir(t)
			s, err := Open(dir, alg, testOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			cur := s.Current()
			if cur.Alg != alg {
				t.Fatalf("alg = %s, want %s", cur.Alg, alg)
			}
			tp, err := jwk.Thumbprint(cur.Public())
			if err != nil || tp != cur.Kid {
				t.Fatalf("kid %s is not the RFC 7638 thumbprint %s (%v)", cur.Kid, tp, err)
			}
			if m := mode(t, dir); m != 0o700 {
				t.Errorf("dir mode %v, want 0700", m)
			}
			files := pemFiles(t, dir)
			if len(files) != 1 || filepath.Base(files[0]) != cur.Kid+".pem" {
				t.Fatalf("key files %v, want one named after the kid", files)
			}
			if m := mode(t, files[0]); m != 0o600 {
				t.Errorf("key file mode %v, want 0600", m)
			}
			if m := mode(t, filepath.Join(dir, stateFile)); m != 0o600 {
				t.Errorf("state file mode %v, want 0600", m)
			}
			switch alg {
			case ES256:
				_, ok := cur.Private.(*ecdsa.PrivateKey)
				wantTrue(t, ok, "ES256 key is ECDSA")
			case RS256, PS256:
				k, ok := cur.Private.(*rsa.PrivateKey)
				wantTrue(t, ok && k.N.BitLen() == 2048, "RSA key of the configured size")
			case EdDSA:
				_, ok := cur.Private.(ed25519.PrivateKey)
				wantTrue(t, ok, "EdDSA key is Ed25519")
			}

			// A restart loads the same key: same kid, no new file.
			c.Add(24 * time.Hour)
			s2, err := Open(dir, alg, testOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			if s2.Current().Kid != cur.Kid {
				t.Fatalf("restart changed kid %s -> %s", cur.Kid, s2.Current().Kid)
			}
			if n := len(pemFiles(t, dir)); n != 1 {
				t.Fatalf("restart left %d key files", n)
			}
			set, err := s2.JWKS()
			if err != nil || len(set.Keys) != 1 || set.Keys[0].Kid != cur.Kid || set.Keys[0].Alg != alg || set.Keys[0].Use != "sig" {
				t.Fatalf("JWKS = %+v (%v), want the one key", set, err)
			}
		})
	}
}

func wantTrue(t *testing.T, ok bool, what string) {
	t.Helper()
	if !ok {
		t.Errorf("want: %s", what)
	}
}

func TestConcurrentFirstStartsAgree(t *testing.T) {
	dir := keyDir(t)
	c := newClock()
	kids := make([]string, 4)
	var wg sync.WaitGroup
	for i := range kids {
		wg.Go(func() {
			s, err := Open(dir, ES256, testOpts(c))
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = s.Current().Kid
		})
	}
	wg.Wait()
	for _, k := range kids[1:] {
		if k != kids[0] {
			t.Fatalf("concurrent first starts made different keys: %v", kids)
		}
	}
	if n := len(pemFiles(t, dir)); n != 1 {
		t.Fatalf("%d key files, want 1", n)
	}
}

func TestRotation(t *testing.T) {
	c := newClock()
	dir := keyDir(t)
	opts := testOpts(c)
	s, err := Open(dir, ES256, opts)
	if err != nil {
		t.Fatal(err)
	}
	old := s.Current().Kid

	c.Add(time.Minute)
	kid, err := Rotate(dir, ES256, opts)
	if err != nil {
		t.Fatal(err)
	}
	if kid == old {
		t.Fatal("rotation kept the kid")
	}
	// The running store sees the rotation on reload.
	changed, err := s.Reload()
	if err != nil || !changed {
		t.Fatalf("Reload = %v, %v; want a change", changed, err)
	}
	if s.Current().Kid != kid {
		t.Fatalf("current kid %s, want the new %s", s.Current().Kid, kid)
	}
	if changed, err := s.Reload(); err != nil || changed {
		t.Fatalf("second Reload = %v, %v; want no change", changed, err)
	}
	if got := publishedKids(t, s); len(got) != 2 || got[0] != kid || got[1] != old {
		t.Fatalf("published %v, want [%s %s]", got, kid, old)
	}
	// A restart during the grace period serves both as well.
	s2, err := Open(dir, ES256, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := publishedKids(t, s2); len(got) != 2 || s2.Current().Kid != kid {
		t.Fatalf("after restart published %v current %s", got, s2.Current().Kid)
	}
	if n := len(pemFiles(t, dir)); n != 2 {
		t.Fatalf("%d key files during grace, want 2", n)
	}

	// After the grace period the old key is neither published nor kept.
	c.Add(opts.Grace)
	if got := publishedKids(t, s); len(got) != 1 || got[0] != kid {
		t.Fatalf("after grace published %v, want [%s]", got, kid)
	}
	s3, err := Open(dir, ES256, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := publishedKids(t, s3); len(got) != 1 || got[0] != kid {
		t.Fatalf("after grace restart published %v", got)
	}
	files := pemFiles(t, dir)
	if len(files) != 1 || filepath.Base(files[0]) != kid+".pem" {
		t.Fatalf("after grace key files %v, want only the current", files)
	}
}

func publishedKids(t *testing.T, s *Store) []string {
	t.Helper()
	set, err := s.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	// The JWKS parses back to keys a verifier can use.
	data, _ := json.Marshal(set)
	parsed, err := jwk.ParseSet(data)
	if err != nil || len(parsed) != len(set.Keys) {
		t.Fatalf("JWKS does not parse back: %v (%d keys)", err, len(parsed))
	}
	return out
}

func TestRotationBounded(t *testing.T) {
	c := newClock()
	dir := keyDir(t)
	opts := testOpts(c)
	if _, err := Open(dir, EdDSA, opts); err != nil {
		t.Fatal(err)
	}
	for range MaxRetired + 3 {
		c.Add(time.Second)
		if _, err := Rotate(dir, EdDSA, opts); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(dir, EdDSA, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Published()); n != MaxRetired+1 {
		t.Fatalf("%d published keys, want %d", n, MaxRetired+1)
	}
	if n := len(pemFiles(t, dir)); n != MaxRetired+1 {
		t.Fatalf("%d key files, want %d", n, MaxRetired+1)
	}
}

func TestAlgorithmSwitchIsARotation(t *testing.T) {
	c := newClock()
	dir := keyDir(t)
	opts := testOpts(c)
	if _, err := Open(dir, ES256, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, RS256, opts); !errors.Is(err, ErrAlgMismatch) {
		t.Fatalf("Open with another alg: %v, want ErrAlgMismatch", err)
	}
	if _, err := Rotate(dir, RS256, opts); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, RS256, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Algs(); len(got) != 2 || got[0] != RS256 || got[1] != ES256 {
		t.Fatalf("Algs = %v, want [RS256 ES256] during the grace period", got)
	}
}

func TestInsecurePermissionsRefused(t *testing.T) {
	c := newClock()
	t.Run("directory", func(t *testing.T) {
		dir := keyDir(t)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, ES256, testOpts(c)); !errors.Is(err, ErrInsecure) {
			t.Fatalf("Open on a 0755 dir: %v, want ErrInsecure", err)
		}
	})
	t.Run("key file", func(t *testing.T) {
		dir := keyDir(t)
		s, err := Open(dir, ES256, testOpts(c))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, s.Current().Kid+".pem"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, ES256, testOpts(c)); !errors.Is(err, ErrInsecure) {
			t.Fatalf("Open with a 0644 key: %v, want ErrInsecure", err)
		}
	})
}

func TestCorruptDirectoryRefused(t *testing.T) {
	c := newClock()
	writeState := func(t *testing.T, dir string, st state) {
		data, _ := json.Marshal(st)
		if err := os.WriteFile(filepath.Join(dir, stateFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("kid that is a path", func(t *testing.T) {
		dir := keyDir(t)
		if _, err := Open(dir, ES256, testOpts(c)); err != nil {
			t.Fatal(err)
		}
		writeState(t, dir, state{Current: stateKey{Kid: "../../etc/passwd", Alg: ES256}})
		if _, err := Open(dir, ES256, testOpts(c)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("got %v, want ErrCorrupt", err)
		}
	})
	t.Run("key file that is another key", func(t *testing.T) {
		dir := keyDir(t)
		s, err := Open(dir, ES256, testOpts(c))
		if err != nil {
			t.Fatal(err)
		}
		kid := s.Current().Kid
		if _, err := Rotate(dir, ES256, testOpts(c)); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(dir, ES256, testOpts(c))
		if err != nil {
			t.Fatal(err)
		}
		// Swap the new key's file for the old one.
		data, err := os.ReadFile(filepath.Join(dir, kid+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s2.Current().Kid+".pem"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, ES256, testOpts(c)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("got %v, want ErrCorrupt", err)
		}
	})
	t.Run("unknown field", func(t *testing.T) {
		dir := keyDir(t)
		if _, err := Open(dir, ES256, testOpts(c)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(`{"current":{},"extra":1}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, ES256, testOpts(c)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("got %v, want ErrCorrupt", err)
		}
	})
	t.Run("missing key file", func(t *testing.T) {
		dir := keyDir(t)
		s, err := Open(dir, ES256, testOpts(c))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, s.Current().Kid+".pem")); err != nil {
			t.Fatal(err)
		}
		// Never silently regenerate: a lost key is an error.
		if _, err := Open(dir, ES256, testOpts(c)); err == nil {
			t.Fatal("Open with the current key file missing succeeded")
		}
		if n := len(pemFiles(t, dir)); n != 0 {
			t.Fatalf("Open regenerated %d key files", n)
		}
	})
}

func TestReloadKeepsKeysOnError(t *testing.T) {
	c := newClock()
	dir := keyDir(t)
	s, err := Open(dir, ES256, testOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	kid := s.Current().Kid
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(); err == nil {
		t.Fatal("Reload of a broken state succeeded")
	}
	if s.Current().Kid != kid {
		t.Fatal("a failed reload changed the current key")
	}
}

func TestOptionsChecked(t *testing.T) {
	c := newClock()
	opts := testOpts(c)
	if _, err := Open(keyDir(t), "HS256", opts); err == nil {
		t.Error("Open accepted HS256")
	}
	if _, err := Open(keyDir(t), "none", opts); err == nil {
		t.Error("Open accepted none")
	}
	opts.RSABits = 1024
	if _, err := Open(keyDir(t), RS256, opts); err == nil {
		t.Error("Open accepted 1024-bit RSA")
	}
	if _, err := Open("", ES256, testOpts(c)); err == nil {
		t.Error("Open accepted an empty dir")
	}
}

func TestGenerateFitsAlg(t *testing.T) {
	for _, alg := range Algorithms {
		k, err := Generate(alg, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if !fitsAlg(k.Public(), alg) {
			t.Errorf("%s: generated %T does not fit", alg, k)
		}
		var _ crypto.Signer = k
	}
	if _, err := Generate("HS256", 2048); err == nil {
		t.Error("Generate accepted HS256")
	}
}
