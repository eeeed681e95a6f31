// Package owner defines which owner names the Resource Server accepts in
// /incoming/{owner}: a strict subset of Keycloak usernames, so that the path,
// the protection-API resource name (incoming:{owner}), the admin-API username
// lookup and the reader's preferred_username can never disagree about who is
// meant.
//
// An owner name is 1 to 64 characters of lower-case ASCII letters, digits,
// '.', '_' and '-'; it starts and ends with a letter or digit, has no two
// consecutive punctuation characters (so no "..", "._", "--"), and does not
// start with "service-account-" (Keycloak's service-account users are not
// owners). Everything else is refused before any lookup: upper case (Keycloak
// lower-cases usernames, so "Bob" and "bob" would be one user), percent
// encoding, '/', '@', white space, non-ASCII (no Unicode look-alikes or
// normalization forms), and "." / ".." path segments.
package owner

import "strings"

// MaxLen is the longest owner name.
const MaxLen = 64

// Rules is the one-line description used in error messages.
const Rules = "owner names are 1-64 characters of a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit, without two punctuation characters in a row"

// ServiceAccountPrefix starts the usernames of Keycloak's service accounts.
const ServiceAccountPrefix = "service-account-"

// Valid says whether name is an acceptable owner name.
func Valid(name string) bool {
	if len(name) == 0 || len(name) > MaxLen {
		return false
	}
	if strings.HasPrefix(name, ServiceAccountPrefix) {
		return false
	}
	prevPunct := true // a name may not start with punctuation
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			prevPunct = false
		case c == '.' || c == '_' || c == '-':
			if prevPunct {
				return false
			}
			prevPunct = true
		default:
			return false
		}
	}
	return !prevPunct // nor end with it
}
