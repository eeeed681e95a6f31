package uma

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxTicketBytes bounds a permission ticket read by UnverifiedTicketClaims
// (the Resource Server refuses longer tickets from Keycloak as well).
const MaxTicketBytes = 16 << 10

// ErrTicket wraps every refusal of UnverifiedTicketClaims.
var ErrTicket = errors.New("uma: malformed permission ticket")

// TicketClaims is what a client reads from a permission ticket (seed step
// 2) before it spends anything on it: who issued it and which Incoming the
// Resource Server asked for it.
type TicketClaims struct {
	// Issuer is the ticket's iss, "" when it has none (Keycloak 26.5 sets
	// none on permission tickets; their aud is the realm's issuer).
	Issuer string
	// Audience is the ticket's aud (a string or an array in JSON); Keycloak
	// 26.5 sets it to the realm's issuer, the AS that will redeem the ticket.
	Audience []string
	// ResourceIDs are the rsid (Keycloak 26.5: "permissions") or id (older:
	// "resources") of the ticket's permissions.
	ResourceIDs []string
	// IncomingURIs are the distinct values of the incoming_uri claim found
	// in the ticket: in its top-level "claims" (where Keycloak 26.5 puts the
	// claims a Resource Server sends with POST .../authz/protection/permission,
	// every value an array) and in any per-permission "claims". One value is the only usable
	// answer; none or several mean the ticket names no single Incoming.
	IncomingURIs []string
}

// UnverifiedTicketClaims decodes a permission ticket's JWS payload WITHOUT
// checking its signature: a client uses it to refuse a ticket that is not for
// the Incoming it means to push to. A forged ticket gains nothing, since the
// authorization server verifies the ticket it is sent. The ticket must be a
// compact JWS of three parts whose payload is unpadded BASE64URL (what
// Keycloak issues) of one JSON object, at most MaxTicketBytes long.
func UnverifiedTicketClaims(ticket string) (TicketClaims, error) {
	var out TicketClaims
	if len(ticket) > MaxTicketBytes {
		return out, fmt.Errorf("%w: %d characters, at most %d", ErrTicket, len(ticket), MaxTicketBytes)
	}
	parts := strings.Split(ticket, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return out, fmt.Errorf("%w: not a compact JWS", ErrTicket)
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return out, fmt.Errorf("%w: payload is not unpadded BASE64URL: %v", ErrTicket, err)
	}
	var body struct {
		Iss         *json.RawMessage `json:"iss"`
		Aud         json.RawMessage  `json:"aud"`
		Claims      json.RawMessage  `json:"claims"`
		Resources   json.RawMessage  `json:"resources"`
		Permissions json.RawMessage  `json:"permissions"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&body); err != nil {
		return out, fmt.Errorf("%w: payload is not a JSON object: %v", ErrTicket, err)
	}
	if dec.More() {
		return out, fmt.Errorf("%w: data after the payload's JSON object", ErrTicket)
	}
	if body.Iss != nil {
		if err := json.Unmarshal(*body.Iss, &out.Issuer); err != nil {
			return out, fmt.Errorf("%w: iss is not a string", ErrTicket)
		}
	}
	if !isNull(body.Aud) {
		var one string
		if json.Unmarshal(body.Aud, &one) == nil {
			out.Audience = []string{one}
		} else if err := json.Unmarshal(body.Aud, &out.Audience); err != nil {
			return out, fmt.Errorf("%w: aud is neither a string nor an array of strings", ErrTicket)
		}
	}
	seen := map[string]bool{}
	add := func(where string, raw json.RawMessage) error {
		vals, err := claimValues(raw, ClaimIncomingURI)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrTicket, where, err)
		}
		for _, v := range vals {
			if !seen[v] {
				seen[v] = true
				out.IncomingURIs = append(out.IncomingURIs, v)
			}
		}
		return nil
	}
	if err := add("claims", body.Claims); err != nil {
		return TicketClaims{}, err
	}
	// Keycloak 26.5 names the ticket's permissions "permissions" (each
	// {"scopes", "rsid"}); older Keycloaks' PermissionTicketToken had
	// "resources". Both are read: a claim in either counts.
	for _, list := range []struct {
		name string
		raw  json.RawMessage
	}{{"resources", body.Resources}, {"permissions", body.Permissions}} {
		if isNull(list.raw) {
			continue
		}
		var perms []struct {
			RSID   string          `json:"rsid"`
			ID     string          `json:"id"`
			Claims json.RawMessage `json:"claims"`
		}
		if err := json.Unmarshal(list.raw, &perms); err != nil {
			return TicketClaims{}, fmt.Errorf("%w: %s is not an array of objects", ErrTicket, list.name)
		}
		for i, p := range perms {
			if id := cmp.Or(p.RSID, p.ID); id != "" {
				out.ResourceIDs = append(out.ResourceIDs, id)
			}
			if err := add(fmt.Sprintf("%s[%d].claims", list.name, i), p.Claims); err != nil {
				return TicketClaims{}, err
			}
		}
	}
	return out, nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// claimValues reads one claim of a claims object whose values are strings or
// arrays of strings (Keycloak's StringListMapDeserializer takes both).
func claimValues(raw json.RawMessage, name string) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errors.New("not a JSON object")
	}
	v, ok := m[name]
	if !ok || isNull(v) {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(v, &many); err != nil {
		return nil, fmt.Errorf("%s is neither a string nor an array of strings", name)
	}
	return many, nil
}
