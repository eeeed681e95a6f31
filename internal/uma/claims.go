package uma

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Bounds of pushed claims, enforced before and while decoding.
const (
	MaxPushedClaimsEncoded = 16 << 10 // characters of the claim_token parameter
	MaxPushedClaimKeys     = 16
	MaxPushedClaimValues   = 4 // strings per key
)

// PushedClaims is the JSON object Keycloak accepts as claim_token with
// ClaimTokenFormatJWT: every value an array of strings.
type PushedClaims map[string][]string

// Set replaces a claim's values with one string.
func (p PushedClaims) Set(name, value string) { p[name] = []string{value} }

// Get returns a claim's only value, or "" when it is absent or has several.
func (p PushedClaims) Get(name string) string {
	if v := p[name]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// Encode gives the claim_token parameter: BASE64URL (no padding) of the JSON.
func (p PushedClaims) Encode() (string, error) {
	if len(p) > MaxPushedClaimKeys {
		return "", fmt.Errorf("uma: %d pushed claims, at most %d", len(p), MaxPushedClaimKeys)
	}
	for k, v := range p {
		if len(v) == 0 || len(v) > MaxPushedClaimValues {
			return "", fmt.Errorf("uma: pushed claim %q has %d values, want 1 to %d", k, len(v), MaxPushedClaimValues)
		}
	}
	data, err := json.Marshal(map[string][]string(p))
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding.EncodeToString(data)
	if len(enc) > MaxPushedClaimsEncoded {
		return "", fmt.Errorf("uma: pushed claims encode to %d characters, at most %d", len(enc), MaxPushedClaimsEncoded)
	}
	return enc, nil
}

// ErrPushedClaims wraps every decoding refusal.
var ErrPushedClaims = errors.New("uma: malformed pushed claims")

// DecodePushedClaims parses a claim_token parameter, bounded in size, keys and
// values; padding is tolerated, any other deviation is refused.
func DecodePushedClaims(s string) (PushedClaims, error) {
	if len(s) > MaxPushedClaimsEncoded {
		return nil, fmt.Errorf("%w: %d characters, at most %d", ErrPushedClaims, len(s), MaxPushedClaimsEncoded)
	}
	data, err := base64.RawURLEncoding.DecodeString(trimPadding(s))
	if err != nil {
		return nil, fmt.Errorf("%w: not BASE64URL: %v", ErrPushedClaims, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrPushedClaims, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrPushedClaims)
	}
	if len(raw) > MaxPushedClaimKeys {
		return nil, fmt.Errorf("%w: %d keys, at most %d", ErrPushedClaims, len(raw), MaxPushedClaimKeys)
	}
	out := make(PushedClaims, len(raw))
	for k, v := range raw {
		var vals []string
		if err := json.Unmarshal(v, &vals); err != nil || vals == nil {
			return nil, fmt.Errorf("%w: %q is not an array of strings", ErrPushedClaims, k)
		}
		if len(vals) == 0 || len(vals) > MaxPushedClaimValues {
			return nil, fmt.Errorf("%w: %q has %d values, want 1 to %d", ErrPushedClaims, k, len(vals), MaxPushedClaimValues)
		}
		out[k] = vals
	}
	return out, nil
}

func trimPadding(s string) string {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return s
}
