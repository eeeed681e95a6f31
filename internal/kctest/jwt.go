package kctest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Claims decodes a JWT's payload WITHOUT verifying it: for tests that look at
// what Keycloak issued, never for a decision.
func Claims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("kctest: not a compact JWT (%d parts)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("kctest: JWT payload: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("kctest: JWT payload: %w", err)
	}
	return claims, nil
}
