// Package pkce is RFC 7636 Proof Key for Code Exchange with the S256
// method, the one implementation every authorization code login of
// umawide uses (the RqP client's loopback login, Bob's web page, the tests'
// logins).
package pkce

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Method is the code_challenge_method sent with Challenge.
const Method = "S256"

// NewVerifier is a fresh code verifier: 32 random bytes, BASE64URL without
// padding (43 characters, RFC 7636 4.1).
func NewVerifier() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Challenge is the S256 code challenge of verifier (RFC 7636 4.2).
func Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
