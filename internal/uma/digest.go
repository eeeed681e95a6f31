package uma

import (
	"crypto/sha256"
	"encoding/base64"
)

// TicketDigest binds a claims token to one permission ticket (step 5.1 of
// docs/PROTOCOL.md, the seed's note "Create ticket_digest"):
// BASE64URL-NOPAD(SHA-256(ticket)), always 43 characters.
func TicketDigest(ticket string) string {
	sum := sha256.Sum256([]byte(ticket))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidTicketDigest reports whether s has the shape of a ticket digest:
// exactly 43 BASE64URL characters without padding that decode to 32 bytes.
func ValidTicketDigest(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == sha256.Size
}
