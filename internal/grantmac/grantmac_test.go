package grantmac

import (
	"errors"
	"testing"
)

// vector is the one keycloak/extension's GrantMacTest checks too: both sides
// must agree on every byte.
func vector() map[string]string {
	return map[string]string{
		"grant_id":       "AAAAAAAAAAAAAAAAAAAAAA",
		"sender_email":   "alice@foo.example",
		"sender_iss":     "https://cp.foo.example",
		"sender_sub":     "a1b2",
		"content_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"content_length": "0",
		"incoming_uri":   "https://rs.bar.example/incoming/bob",
		"content_type":   "text/plain; charset=utf-8",
	}
}

func TestSharedVector(t *testing.T) {
	if got := Compute([]byte("resource-server-secret"), "res-1", vector()); got != "w7hDO8ogIRrFT3tD7908y0lGYvFs1TXpXsHlaqTJawA" {
		t.Fatalf("Compute = %s", got)
	}
}

func TestVerify(t *testing.T) {
	key := []byte("k")
	c := vector()
	c[Claim] = Compute(key, "res-1", c)
	if err := Verify(key, "res-1", c); err != nil {
		t.Fatal(err)
	}
	for _, f := range append([]string{Claim}, Fields...) {
		bad := vector()
		bad[Claim] = c[Claim]
		bad[f] += "x"
		if err := Verify(key, "res-1", bad); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s changed: %v", f, err)
		}
	}
	if err := Verify(key, "res-2", c); !errors.Is(err, ErrMismatch) {
		t.Error("another resource verified")
	}
	if err := Verify([]byte("other"), "res-1", c); !errors.Is(err, ErrMismatch) {
		t.Error("another key verified")
	}
	if err := Verify(nil, "res-1", c); !errors.Is(err, ErrMismatch) {
		t.Error("no key verified")
	}
	delete(c, Claim)
	if err := Verify(key, "res-1", c); !errors.Is(err, ErrMismatch) {
		t.Error("no MAC verified")
	}
}

func TestAttest(t *testing.T) {
	many := map[string][]string{}
	for k, v := range vector() {
		many[k] = []string{v}
	}
	got := Attest([]byte("resource-server-secret"), "res-1", many)
	if g := got[Claim]; len(g) != 1 || g[0] != "w7hDO8ogIRrFT3tD7908y0lGYvFs1TXpXsHlaqTJawA" {
		t.Fatalf("grant_mac %v", g)
	}
	if _, ok := many[Claim]; ok {
		t.Fatal("Attest changed its argument")
	}
}
