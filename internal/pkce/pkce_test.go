package pkce

import "testing"

// RFC 7636 Appendix B.
func TestChallengeVector(t *testing.T) {
	if got := Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("challenge %s", got)
	}
}

func TestNewVerifier(t *testing.T) {
	a, b := NewVerifier(), NewVerifier()
	if len(a) != 43 || a == b {
		t.Fatalf("verifiers %q %q", a, b)
	}
}
