package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// loginSealer keeps a login in progress in the browser, in the login
// cookie, sealed (AES-256-GCM under a key this process draws at start):
// state, nonce, PKCE verifier and expiry. The browser can neither read
// nor change them, and the server holds nothing for a login that has not
// come back, so no number of unauthenticated GET /web/login can fill
// anything (review F5: a store of pending logins could be filled by
// anyone, refusing every login). The cookie is cleared at the callback;
// the code it completes is single use and bound to the verifier at
// Keycloak, the ID token to the nonce.
type loginSealer struct {
	aead cipher.AEAD
}

// sealedLogin is the cookie's plaintext.
type sealedLogin struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"` // Unix seconds
}

// loginAAD binds a sealed value to its use: no other value sealed under
// the key (there is none today) can pass for a login.
var loginAAD = []byte("umawide-web-login-v1")

// maxLoginCookie bounds the cookie read (a sealed login is about 250
// characters).
const maxLoginCookie = 1024

func newLoginSealer() (*loginSealer, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read does not fail (Go 1.24+)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("web: login key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("web: login key: %w", err)
	}
	return &loginSealer{aead: aead}, nil
}

// seal is l, valid until exp, as a cookie value.
func (s *loginSealer) seal(l login, exp time.Time) string {
	plain, _ := json.Marshal(sealedLogin{State: l.state, Nonce: l.nonce, Verifier: l.verifier, Expires: exp.Unix()})
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, loginAAD))
}

// open is the login sealed in v; ok false when v was not sealed by this
// process (tampered, another process's, malformed) and expired true when
// it was but its time is up.
func (s *loginSealer) open(v string, now time.Time) (l login, ok, expired bool) {
	if len(v) > maxLoginCookie {
		return login{}, false, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return login{}, false, false
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], loginAAD)
	if err != nil {
		return login{}, false, false
	}
	var sl sealedLogin
	if json.Unmarshal(plain, &sl) != nil || sl.State == "" || sl.Nonce == "" || sl.Verifier == "" {
		return login{}, false, false
	}
	if !now.Before(time.Unix(sl.Expires, 0)) {
		return login{}, true, true
	}
	return login{state: sl.State, nonce: sl.Nonce, verifier: sl.Verifier}, true, false
}
