// Package grantmac checks grant_mac, the claims-token policy's attestation of
// a granted permission (docs/PROTOCOL.md step 8; the Java side is
// keycloak/extension's GrantMac).
//
// Keycloak signs every RPT, whatever road produced it, and on roads that skip
// policies it copies the client's pushed claims verbatim. A signed RPT whose
// permission says sender_email=alice@foo.example therefore proves nothing by
// itself. grant_mac does: an HMAC-SHA256, keyed with the Resource Server's
// client secret (which only Keycloak and the Resource Server hold), over the
// resource id and the claims the policy wrote after it verified the sender.
package grantmac

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Claim is the permission claim that carries the MAC.
const Claim = "grant_mac"

// version is the first line of the MAC input.
const version = "umawide-grant-mac-v1"

// Fields are the permission claims covered, in MAC order, after the
// resource id. An absent optional claim (content_type, file_name) counts as
// the empty value.
var Fields = []string{
	"grant_id", "sender_email", "sender_iss", "sender_sub",
	"content_sha256", "content_length", "incoming_uri", "content_type", "file_name",
}

// ErrMismatch is returned by Verify when the MAC is missing or wrong.
var ErrMismatch = errors.New("grantmac: grant_mac does not attest these claims")

// Compute is the MAC of claims (one value each) for resourceID under key, as
// BASE64URL without padding. The input is a version line, then each field as
// its UTF-8 byte length in decimal, ':', the value and '\n', so no value can
// shift into another field.
func Compute(key []byte, resourceID string, claims map[string]string) string {
	var b strings.Builder
	b.WriteString(version)
	b.WriteByte('\n')
	field := func(v string) {
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	field(resourceID)
	for _, f := range Fields {
		field(claims[f])
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks claims[Claim] against the other claims in constant time.
func Verify(key []byte, resourceID string, claims map[string]string) error {
	got := claims[Claim]
	if got == "" || len(key) == 0 {
		return ErrMismatch
	}
	want := Compute(key, resourceID, claims)
	if !hmac.Equal([]byte(got), []byte(want)) {
		return ErrMismatch
	}
	return nil
}

// Attest returns a copy of claims, in the many-valued form of an RPT
// permission's claims, with grant_mac over their single values, as the
// claims-token policy writes it. For tests and tools that stand in for the
// policy (a realm whose stock policy copies pushed claims).
func Attest(key []byte, resourceID string, claims map[string][]string) map[string][]string {
	one := make(map[string]string, len(claims))
	out := make(map[string][]string, len(claims)+1)
	for k, v := range claims {
		out[k] = v
		if len(v) == 1 {
			one[k] = v[0]
		}
	}
	out[Claim] = []string{Compute(key, resourceID, one)}
	return out
}
