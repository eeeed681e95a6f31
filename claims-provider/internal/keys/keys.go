// Package keys keeps the Claims Provider's signing keys on disk and rotates
// them.
//
// Layout of the key directory (mode 0700, no access for group or others):
//
//	state.json    which key is current, which were retired and when
//	<kid>.pem     one private key per file, PKCS#8 PEM, mode 0600
//	.lock         flock(2) target serialising rotations and first starts
//
// The kid of a key is its RFC 7638 thumbprint, so a restart that loads the
// same file publishes the same kid. A key is created only when the directory
// holds no state at all (first start) or when Rotate is called; loading never
// creates a key. A rotation makes a new current key and keeps the previous one
// in the published set (JWKS) for a grace period, so that claims tokens it
// signed stay verifiable until they expire; keys past their grace period are
// no longer published and their files are deleted at the next Open or Rotate.
package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/umawide/umawide/internal/jwk"
)

// Signing algorithms the Claims Provider can use.
const (
	ES256 = "ES256"
	RS256 = "RS256"
	PS256 = "PS256"
	EdDSA = "EdDSA"
)

// Algorithms lists the supported signing algorithms, the default first.
var Algorithms = []string{ES256, RS256, PS256, EdDSA}

// DefaultRSABits is the size of RSA keys made for RS256 and PS256.
const DefaultRSABits = 3072

// Bounds of what the store reads and keeps.
const (
	maxStateBytes = 64 << 10
	maxKeyBytes   = 64 << 10
	// MaxRetired bounds the retired keys kept for their grace period; a
	// rotation beyond it drops the oldest early (and logs so).
	MaxRetired = 8
)

const (
	stateFile = "state.json"
	lockFile  = ".lock"
)

// Errors of the store.
var (
	// ErrAlgMismatch: the current key on disk is of another algorithm than
	// the configured one; a rotation with the new algorithm switches.
	ErrAlgMismatch = errors.New("keys: current key is of another algorithm")
	// ErrInsecure: the key directory or a key file is open to group or others.
	ErrInsecure = errors.New("keys: insecure permissions")
	// ErrCorrupt: the state file or a key file is malformed or inconsistent.
	ErrCorrupt = errors.New("keys: corrupt key directory")
)

// Key is one signing key.
type Key struct {
	Kid       string
	Alg       string
	Private   crypto.Signer
	CreatedAt time.Time
	// RetiredAt is zero for the current key.
	RetiredAt time.Time
}

// Public is the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

// Options tune a Store; zero values take the defaults.
type Options struct {
	// Grace keeps a retired key published this long; default 1 hour.
	Grace time.Duration
	// RSABits for new RSA keys; default DefaultRSABits (at least 2048).
	RSABits int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Grace == 0 {
		o.Grace = time.Hour
	}
	if o.RSABits == 0 {
		o.RSABits = DefaultRSABits
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Store is the loaded key directory. It is safe for concurrent use.
type Store struct {
	dir  string
	opts Options

	mu      sync.RWMutex
	current *Key
	retired []*Key // newest first
	stamp   fileStamp
}

// state is the JSON of state.json.
type state struct {
	Current stateKey   `json:"current"`
	Retired []stateKey `json:"retired,omitempty"`
}

type stateKey struct {
	Kid       string    `json:"kid"`
	Alg       string    `json:"alg"`
	CreatedAt time.Time `json:"created_at"`
	RetiredAt time.Time `json:"retired_at,omitzero"`
}

type fileStamp struct {
	modTime time.Time
	size    int64
}

// ValidAlg reports whether alg is a supported signing algorithm.
func ValidAlg(alg string) bool { return slices.Contains(Algorithms, alg) }

// Open loads the key directory, creating it and a first key of alg when it
// holds no state yet. An existing current key of another algorithm is
// refused (ErrAlgMismatch): switching algorithms is a rotation.
func Open(dir, alg string, opts Options) (*Store, error) {
	opts.defaults()
	if !ValidAlg(alg) {
		return nil, fmt.Errorf("keys: algorithm %q not supported (want one of %v)", alg, Algorithms)
	}
	if opts.RSABits < 2048 {
		return nil, fmt.Errorf("keys: RSA keys of %d bits, at least 2048", opts.RSABits)
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	s := &Store{dir: dir, opts: opts}
	err := withLock(dir, syscall.LOCK_EX, func() error {
		st, err := s.readState()
		if errors.Is(err, fs.ErrNotExist) {
			k, err := s.create(alg)
			if err != nil {
				return err
			}
			opts.Logger.Info("created the first signing key", "kid", k.Kid, "alg", alg, "dir", dir)
			st = &state{Current: stateKey{Kid: k.Kid, Alg: k.Alg, CreatedAt: k.CreatedAt}}
			if err := s.writeState(st); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if st.Current.Alg != alg {
			return fmt.Errorf("%w: key %s is %s, configured %s: rotate to switch algorithms", ErrAlgMismatch, st.Current.Kid, st.Current.Alg, alg)
		}
		if err := s.prune(st, false); err != nil {
			return err
		}
		return s.load()
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Rotate makes a new current key of alg in dir and retires the current one
// (kept published for the grace period). It returns the new key's kid. A
// running server picks the change up with Reload.
func Rotate(dir, alg string, opts Options) (string, error) {
	opts.defaults()
	if !ValidAlg(alg) {
		return "", fmt.Errorf("keys: algorithm %q not supported (want one of %v)", alg, Algorithms)
	}
	if opts.RSABits < 2048 {
		return "", fmt.Errorf("keys: RSA keys of %d bits, at least 2048", opts.RSABits)
	}
	if err := ensureDir(dir); err != nil {
		return "", err
	}
	s := &Store{dir: dir, opts: opts}
	var kid string
	err := withLock(dir, syscall.LOCK_EX, func() error {
		st, err := s.readState()
		if errors.Is(err, fs.ErrNotExist) {
			st = nil
		} else if err != nil {
			return err
		}
		k, err := s.create(alg)
		if err != nil {
			return err
		}
		next := &state{Current: stateKey{Kid: k.Kid, Alg: k.Alg, CreatedAt: k.CreatedAt}}
		if st != nil {
			old := st.Current
			old.RetiredAt = opts.Now().UTC()
			next.Retired = append([]stateKey{old}, st.Retired...)
		}
		if err := s.prune(next, true); err != nil {
			return err
		}
		kid = k.Kid
		opts.Logger.Info("rotated the signing key", "kid", k.Kid, "alg", alg, "retired", retiredKids(next), "grace", opts.Grace)
		return nil
	})
	return kid, err
}

func retiredKids(st *state) []string {
	var out []string
	for _, r := range st.Retired {
		out = append(out, r.Kid)
	}
	return out
}

// Reload reads the directory again when state.json changed since the last
// load (a rotation by another process). It reports whether the keys changed;
// on error the keys loaded before stay in use.
func (s *Store) Reload() (bool, error) {
	fi, err := os.Stat(filepath.Join(s.dir, stateFile))
	if err != nil {
		return false, fmt.Errorf("keys: %w", err)
	}
	s.mu.RLock()
	same := s.stamp == fileStamp{fi.ModTime(), fi.Size()}
	s.mu.RUnlock()
	if same {
		return false, nil
	}
	err = withLock(s.dir, syscall.LOCK_SH, s.load)
	return err == nil, err
}

// Current is the key that signs now.
func (s *Store) Current() *Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.current
}

// Published gives the keys to publish: the current key, then retired keys
// still within their grace period, newest first.
func (s *Store) Published() []*Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.opts.Now()
	out := []*Key{s.current}
	for _, k := range s.retired {
		if now.Before(k.RetiredAt.Add(s.opts.Grace)) {
			out = append(out, k)
		}
	}
	return out
}

// JWKS is the published keys as a JWK Set.
func (s *Store) JWKS() (jwk.Set, error) {
	set := jwk.Set{Keys: []jwk.JWK{}}
	for _, k := range s.Published() {
		j, err := jwk.FromPublic(k.Public(), k.Kid, k.Alg)
		if err != nil {
			return jwk.Set{}, err
		}
		set.Keys = append(set.Keys, j)
	}
	return set, nil
}

// Algs lists the algorithms of the published keys, current first, no repeats.
func (s *Store) Algs() []string {
	var out []string
	for _, k := range s.Published() {
		if !slices.Contains(out, k.Alg) {
			out = append(out, k.Alg)
		}
	}
	return out
}

// Watch reloads the keys every interval until ctx ends, so that a rotation
// made by `claims-provider rotate` takes effect without a restart.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.ReloadAndLog()
		}
	}
}

// ReloadAndLog is Reload with its outcome logged (SIGHUP, Watch).
func (s *Store) ReloadAndLog() {
	changed, err := s.Reload()
	switch {
	case err != nil:
		s.opts.Logger.Error("reloading signing keys failed; keeping the keys loaded before", "err", err)
	case changed:
		cur := s.Current()
		s.opts.Logger.Info("reloaded signing keys", "kid", cur.Kid, "alg", cur.Alg, "published", len(s.Published()))
	}
}

// Dir is the key directory.
func (s *Store) Dir() string { return s.dir }

// load reads state.json and the key files it names (the caller holds the lock).
func (s *Store) load() error {
	fi, err := os.Stat(filepath.Join(s.dir, stateFile))
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	st, err := s.readState()
	if err != nil {
		return err
	}
	cur, err := s.readKey(st.Current)
	if err != nil {
		return err
	}
	var retired []*Key
	now := s.opts.Now()
	for _, r := range st.Retired {
		if !now.Before(r.RetiredAt.Add(s.opts.Grace)) {
			continue // past its grace period: not published, not needed
		}
		k, err := s.readKey(r)
		if err != nil {
			return err
		}
		retired = append(retired, k)
	}
	s.mu.Lock()
	s.current, s.retired, s.stamp = cur, retired, fileStamp{fi.ModTime(), fi.Size()}
	s.mu.Unlock()
	return nil
}

// prune drops retired keys past their grace period (and beyond MaxRetired),
// writes the state when it changed (or write is set) and deletes key files
// the state no longer names.
func (s *Store) prune(st *state, write bool) error {
	now := s.opts.Now()
	var keep []stateKey
	for _, r := range st.Retired {
		switch {
		case !now.Before(r.RetiredAt.Add(s.opts.Grace)):
		case len(keep) >= MaxRetired:
			s.opts.Logger.Warn("dropping a retired key before its grace period ended: too many rotations", "kid", r.Kid)
		default:
			keep = append(keep, r)
		}
	}
	if len(keep) != len(st.Retired) {
		write = true
	}
	st.Retired = keep
	if write {
		if err := s.writeState(st); err != nil {
			return err
		}
	}
	named := map[string]bool{st.Current.Kid + ".pem": true}
	for _, r := range keep {
		named[r.Kid+".pem"] = true
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && filepath.Ext(e.Name()) == ".pem" && !named[e.Name()] && validKid(e.Name()[:len(e.Name())-4]) {
			if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil {
				return fmt.Errorf("keys: removing a retired key: %w", err)
			}
			s.opts.Logger.Info("deleted a retired signing key", "file", e.Name())
		}
	}
	return nil
}

func (s *Store) readState() (*state, error) {
	data, err := readBounded(filepath.Join(s.dir, stateFile), maxStateBytes)
	if err != nil {
		return nil, err
	}
	var st state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, stateFile, err)
	}
	all := append([]stateKey{st.Current}, st.Retired...)
	for _, k := range all {
		if !validKid(k.Kid) || !ValidAlg(k.Alg) {
			return nil, fmt.Errorf("%w: %s names key %q of alg %q", ErrCorrupt, stateFile, k.Kid, k.Alg)
		}
	}
	if len(st.Retired) > 4*MaxRetired {
		return nil, fmt.Errorf("%w: %s lists %d retired keys", ErrCorrupt, stateFile, len(st.Retired))
	}
	return &st, nil
}

func (s *Store) writeState(st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.dir, stateFile), append(data, '\n'))
}

// readKey loads a key file and checks it is the key the state names.
func (s *Store) readKey(sk stateKey) (*Key, error) {
	path := filepath.Join(s.dir, sk.Kid+".pem")
	if err := checkPrivate(path, 0o077); err != nil {
		return nil, err
	}
	data, err := readBounded(path, maxKeyBytes)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s is not a PKCS#8 PEM private key", ErrCorrupt, path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok || !fitsAlg(signer.Public(), sk.Alg) {
		return nil, fmt.Errorf("%w: %s holds a %T, not a key for %s", ErrCorrupt, path, parsed, sk.Alg)
	}
	kid, err := jwk.Thumbprint(signer.Public())
	if err != nil {
		return nil, err
	}
	if kid != sk.Kid {
		return nil, fmt.Errorf("%w: %s has thumbprint %s", ErrCorrupt, path, kid)
	}
	return &Key{Kid: kid, Alg: sk.Alg, Private: signer, CreatedAt: sk.CreatedAt, RetiredAt: sk.RetiredAt}, nil
}

// create makes a new key for alg and writes its file (mode 0600).
func (s *Store) create(alg string) (*Key, error) {
	signer, err := Generate(alg, s.opts.RSABits)
	if err != nil {
		return nil, err
	}
	kid, err := jwk.Thumbprint(signer.Public())
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := writeAtomic(filepath.Join(s.dir, kid+".pem"), data); err != nil {
		return nil, err
	}
	return &Key{Kid: kid, Alg: alg, Private: signer, CreatedAt: s.opts.Now().UTC()}, nil
}

// Generate makes a fresh private key for alg: P-256 for ES256, RSA of
// rsaBits for RS256 and PS256, Ed25519 for EdDSA.
func Generate(alg string, rsaBits int) (crypto.Signer, error) {
	switch alg {
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256, PS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("keys: algorithm %q not supported", alg)
}

func fitsAlg(pub crypto.PublicKey, alg string) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return alg == ES256 && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return (alg == RS256 || alg == PS256) && k.N.BitLen() >= 2048
	case ed25519.PublicKey:
		return alg == EdDSA
	}
	return false
}

// validKid: a thumbprint is 43 BASE64URL characters; anything else in the
// state file must not become a path.
func validKid(kid string) bool {
	if len(kid) != 43 {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ensureDir creates dir with mode 0700, or checks an existing one is not open
// to group or others.
func ensureDir(dir string) error {
	if dir == "" {
		return errors.New("keys: no key directory configured")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("keys: %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: key directory %s has mode %v, want 0700 (chmod 700 %s)", ErrInsecure, dir, fi.Mode().Perm(), dir)
	}
	return nil
}

func checkPrivate(path string, forbidden fs.FileMode) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, path)
	}
	if fi.Mode().Perm()&forbidden != 0 {
		return fmt.Errorf("%w: %s has mode %v, want 0600", ErrInsecure, path, fi.Mode().Perm())
	}
	return nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorrupt, path, limit)
	}
	return data, nil
}

// writeAtomic writes data to a temporary file (mode 0600) in the same
// directory, syncs it and renames it over path.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("keys: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("keys: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keys: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// withLock runs fn holding flock(2) on dir/.lock (exclusive or shared).
func withLock(dir string, how int, fn func() error) error {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("keys: lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		return fmt.Errorf("keys: lock: %w", err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}
