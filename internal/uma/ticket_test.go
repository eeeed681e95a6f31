package uma

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func jws(payload string) string {
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
}

func TestUnverifiedTicketClaims(t *testing.T) {
	const bob = "http://127.0.0.1:8082/incoming/bob"
	for _, tc := range []struct {
		name, payload string
		want          TicketClaims
	}{
		// What Keycloak 26.5.6 issued for POST .../authz/protection/permission
		// with [{"resource_id", "resource_scopes", "claims": {"incoming_uri": [...]}}]
		// (a string value comes out as an array as well).
		{"keycloak", `{"exp":1796123343,"iat":1796123043,"permissions":[{"scopes":["create"],"rsid":"3c00e0a8-ef70-4d06-a9b1-72aec033c511"}],` +
			`"claims":{"incoming_uri":["` + bob + `"]},"jti":"e500a7f8-ae7f-c9c6-86c6-2e03c53df0e2-1796123044997",` +
			`"aud":"http://127.0.0.1:41977/realms/bar","sub":"7aefe07b-5dd7-4845-beec-cc9836516b10","azp":"resource-server"}`,
			TicketClaims{Audience: []string{"http://127.0.0.1:41977/realms/bar"}, ResourceIDs: []string{"3c00e0a8-ef70-4d06-a9b1-72aec033c511"}, IncomingURIs: []string{bob}}},
		{"aud as an array", `{"aud":["a","b"],"claims":{"incoming_uri":["` + bob + `"]}}`,
			TicketClaims{Audience: []string{"a", "b"}, IncomingURIs: []string{bob}}},
		// Older Keycloaks' PermissionTicketToken: "resources".
		{"resources", `{"resources":[{"id":"r1","scopes":["create"],"claims":{"incoming_uri":["` + bob + `"]}}]}`,
			TicketClaims{ResourceIDs: []string{"r1"}, IncomingURIs: []string{bob}}},
		{"iss and a string value", `{"iss":"http://as/realms/bar","claims":{"incoming_uri":"` + bob + `"}}`,
			TicketClaims{Issuer: "http://as/realms/bar", IncomingURIs: []string{bob}}},
		{"per permission", `{"permissions":[{"claims":{"incoming_uri":["` + bob + `"]}}]}`,
			TicketClaims{IncomingURIs: []string{bob}}},
		{"per resource, same as top level", `{"claims":{"incoming_uri":["` + bob + `"]},"resources":[{"id":"r","claims":{"incoming_uri":["` + bob + `"]}}]}`,
			TicketClaims{ResourceIDs: []string{"r"}, IncomingURIs: []string{bob}}},
		{"two values", `{"claims":{"incoming_uri":["` + bob + `","http://x/incoming/bob"]}}`,
			TicketClaims{IncomingURIs: []string{bob, "http://x/incoming/bob"}}},
		{"top level and permission differ", `{"claims":{"incoming_uri":["` + bob + `"]},"permissions":[{"claims":{"incoming_uri":["http://x/incoming/bob"]}}]}`,
			TicketClaims{IncomingURIs: []string{bob, "http://x/incoming/bob"}}},
		{"none", `{"resources":[{"id":"r1","scopes":["create"]}]}`, TicketClaims{ResourceIDs: []string{"r1"}}},
		{"other claims only", `{"claims":{"other":["x"]}}`, TicketClaims{}},
		{"nulls", `{"iss":null,"claims":null,"resources":null,"permissions":[{"claims":null}]}`, TicketClaims{}},
	} {
		got, err := UnverifiedTicketClaims(jws(tc.payload))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: UnverifiedTicketClaims = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestUnverifiedTicketClaimsRefusals(t *testing.T) {
	good := jws(`{"claims":{"incoming_uri":["http://h/incoming/bob"]}}`)
	parts := strings.Split(good, ".")
	for _, tc := range []struct{ name, ticket string }{
		{"empty", ""},
		{"aud a number", jws(`{"aud":1}`)},
		{"two parts", parts[0] + "." + parts[1]},
		{"four parts", good + ".x"},
		{"trailing dot", good + "."},
		{"empty header", "." + parts[1] + "." + parts[2]},
		{"padded", parts[0] + "." + parts[1] + "==." + parts[2]},
		{"standard alphabet", parts[0] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[1]) + "+." + parts[2]},
		{"not base64", parts[0] + ".e30!." + parts[2]},
		{"not JSON", jws(`not json`)},
		{"array", jws(`[]`)},
		{"trailing data", jws(`{} {}`)},
		{"iss number", jws(`{"iss":1}`)},
		{"claims array", jws(`{"claims":["incoming_uri"]}`)},
		{"claim number", jws(`{"claims":{"incoming_uri":1}}`)},
		{"claim object", jws(`{"claims":{"incoming_uri":{"a":"b"}}}`)},
		{"resources object", jws(`{"resources":{"claims":{}}}`)},
		{"permission claims string", jws(`{"permissions":[{"claims":"x"}]}`)},
		{"too long", jws(`{"x":"` + strings.Repeat("a", MaxTicketBytes) + `"}`)},
	} {
		got, err := UnverifiedTicketClaims(tc.ticket)
		if err == nil {
			t.Errorf("%s: UnverifiedTicketClaims = %+v, want an error", tc.name, got)
			continue
		}
		if !errors.Is(err, ErrTicket) {
			t.Errorf("%s: %v does not wrap ErrTicket", tc.name, err)
		}
	}
}

// FuzzUnverifiedTicketClaims: reading a ticket a Resource Server sent never
// panics; refusals wrap ErrTicket; what it accepts was within MaxTicketBytes,
// and its incoming_uri values are distinct. Seed corpus:
// testdata/fuzz/FuzzUnverifiedTicketClaims (run by go test).
func FuzzUnverifiedTicketClaims(f *testing.F) {
	f.Add(jws(`{"claims":{"incoming_uri":["http://127.0.0.1:8082/incoming/bob"]}}`))
	f.Add(jws(`{"iss":"x","permissions":[{"claims":{"incoming_uri":"a"}}],"resources":null}`))
	f.Fuzz(func(t *testing.T, ticket string) {
		tc, err := UnverifiedTicketClaims(ticket)
		if err != nil {
			if !errors.Is(err, ErrTicket) {
				t.Fatalf("error %v does not wrap ErrTicket", err)
			}
			return
		}
		if len(ticket) > MaxTicketBytes {
			t.Fatalf("accepted a ticket of %d characters", len(ticket))
		}
		seen := map[string]bool{}
		for _, u := range tc.IncomingURIs {
			if seen[u] {
				t.Fatalf("%q listed twice in %v", u, tc.IncomingURIs)
			}
			seen[u] = true
		}
	})
}
