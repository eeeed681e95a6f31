package attacks

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/testclaimsprovider"
)

// realCPKey is the real Claims Provider's current public JWK, as anybody
// can read it.
func (s *suite) realCPKey(t *testing.T) map[string]any {
	t.Helper()
	a := s.rsLike(t, s.CPURL+"/jwks")
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(a.Body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("the Claims Provider's JWKS: %s", a)
	}
	return set.Keys[0]
}

func (s *suite) rsLike(t *testing.T, url string) answer {
	t.Helper()
	req, _ := http.NewRequestWithContext(e2etest.Timeout(t, time.Minute), http.MethodGet, url, nil)
	return e2etest.Do(t, req)
}

// forged: claims tokens the AS must refuse at step 8, each for a fresh
// ticket of Bob's Incoming.
func (s *suite) forged(t *testing.T) {
	// deny pushes jws for ticket and expects the policy's reason.
	deny := func(t *testing.T, ticket, jws, reason string) {
		t.Helper()
		s.unchanged(t, func() { s.expectDenied(t, reason, e2etest.GrantForm(ticket, s.pushedBound(jws))) })
	}
	// partnerSigned is a partner token for a fresh ticket, claims edited.
	partnerSigned := func(t *testing.T, edit func(c map[string]any)) (string, map[string]any) {
		ticket := s.Ticket(t, "bob")
		c := s.claims(s.partner.Issuer, "alice@"+partnerDomain, ticket)
		edit(c)
		return ticket, c
	}

	t.Run("an attacker's Claims Provider vouches for alice@foo.example", func(t *testing.T) {
		ticket := s.Ticket(t, "bob")
		jws := s.attacker.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), s.claims(s.attacker.Issuer, e2etest.AliceEmail, ticket))
		deny(t, ticket, jws, "untrusted_issuer")
		if n := s.attacker.JWKSFetches.Load() + s.attacker.DiscoveryFetches.Load(); n != 0 {
			t.Errorf("Keycloak fetched from the untrusted issuer %d times", n)
		}
	})

	t.Run("the attacker names the real Claims Provider as issuer, signs with its own key", func(t *testing.T) {
		realKID, _ := s.realCPKey(t)["kid"].(string)
		for _, kid := range []string{testclaimsprovider.ECKID, realKID} {
			ticket := s.Ticket(t, "bob")
			jws := s.attacker.SignES256(testclaimsprovider.Header("ES256", kid), s.claims(s.CPURL, e2etest.AliceEmail, ticket))
			reason := "unknown_kid"
			if kid == realKID {
				reason = "bad_signature"
			}
			deny(t, ticket, jws, reason)
		}
	})

	t.Run("a provider trusted for partner.example vouches for foo.example", func(t *testing.T) {
		for _, email := range []string{e2etest.AliceEmail, "bob@bar.example", "alice@sub." + partnerDomain, "alice@" + partnerDomain + ".foo.example"} {
			ticket, c := partnerSigned(t, func(c map[string]any) { c["email"] = email })
			deny(t, ticket, s.partner.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), c), "email_domain_not_trusted")
		}
	})

	t.Run("the real Claims Provider vouches for a domain it serves but the AS does not trust it for", func(t *testing.T) {
		ticket := s.Ticket(t, "bob")
		deny(t, ticket, s.claimsToken(t, ticket, s.Outsider, ""), "email_domain_not_trusted")
	})

	t.Run("a user whose email is not verified", func(t *testing.T) {
		email := e2etest.AddUser(t, s.KC, "foo", "atk-unverified-"+e2etest.RandomHex(3), "foo.example", false)
		ticket := s.Ticket(t, "bob")
		deny(t, ticket, s.claimsToken(t, ticket, email, ""), "email_not_verified")
	})

	t.Run("replay: a granted claims token with a new ticket, with its own ticket, a fresh token with the used ticket", func(t *testing.T) {
		ticket := s.Ticket(t, "bob")
		ct := s.claimsToken(t, ticket, e2etest.AliceEmail, "")
		if _, te := s.Grant(t, "", e2etest.GrantForm(ticket, s.pushedBound(ct))); te != nil {
			t.Fatalf("honest grant: %v", te)
		}
		deny(t, s.Ticket(t, "bob"), ct, "ticket_digest_mismatch")
		deny(t, ticket, ct, "jti_replayed")
		deny(t, ticket, s.claimsToken(t, ticket, e2etest.AliceEmail, ""), "ticket_reused")
	})

	t.Run("the same jti in a second token of the same issuer", func(t *testing.T) {
		ticket, c := partnerSigned(t, func(map[string]any) {})
		if _, te := s.Grant(t, "", e2etest.GrantForm(ticket, s.pushedBound(s.partner.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), c)))); te != nil {
			t.Fatalf("partner grant: %v", te)
		}
		jti := c["jti"]
		ticket2, c2 := partnerSigned(t, func(c map[string]any) { c["jti"] = jti })
		deny(t, ticket2, s.partner.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), c2), "jti_replayed")
	})

	t.Run("a claims token for another AS, and aud spelled differently", func(t *testing.T) {
		other := s.KC.IssuerURL("bar")
		upper := strings.Replace(s.asURI, "http://", "HTTP://", 1)
		for _, aud := range []string{other, s.asURI + "/", upper, s.asURI + "/protocol/openid-connect/token"} {
			ticket := s.Ticket(t, "bob")
			deny(t, ticket, s.claimsToken(t, ticket, e2etest.AliceEmail, aud), "audience_mismatch")
		}
		ticket, c := partnerSigned(t, func(c map[string]any) { c["aud"] = []string{s.asURI, other} })
		deny(t, ticket, s.partner.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), c), "audience_mismatch")
	})

	t.Run("forbidden algorithms: none, HS256 with the public key as secret", func(t *testing.T) {
		for _, alg := range []string{"none", "None", "NONE"} {
			ticket, c := partnerSigned(t, func(map[string]any) {})
			deny(t, ticket, testclaimsprovider.Unsigned(testclaimsprovider.Header(alg, testclaimsprovider.ECKID), c), "alg_not_allowed")
		}
		realKey, _ := json.Marshal(s.realCPKey(t))
		for _, secret := range [][]byte{s.partner.RSAPublicPEM(), testclaimsprovider.PublicPEM(&s.partner.EC.PublicKey), realKey} {
			ticket, c := partnerSigned(t, func(map[string]any) {})
			deny(t, ticket, testclaimsprovider.SignHS256(testclaimsprovider.Header("HS256", testclaimsprovider.RSAKID), c, secret), "alg_not_allowed")
		}
		// HS512 and a made-up algorithm.
		for _, alg := range []string{"HS512", "ES256K", "RS1"} {
			ticket, c := partnerSigned(t, func(map[string]any) {})
			deny(t, ticket, testclaimsprovider.SignHS256(testclaimsprovider.Header(alg, testclaimsprovider.ECKID), c, []byte("secret")), "alg_not_allowed")
		}
	})

	t.Run("keys that do not fit: the kid of one key, the type of another", func(t *testing.T) {
		p := s.partner
		cases := []struct {
			name   string
			sign   func(c map[string]any) string
			reason string
		}{
			{"RS256 signature, kid of the EC key", func(c map[string]any) string {
				return p.SignRS256(testclaimsprovider.Header("RS256", testclaimsprovider.ECKID), c)
			}, "unknown_kid"},
			{"ES256 signature, kid of the RSA key", func(c map[string]any) string {
				return p.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.RSAKID), c)
			}, "unknown_kid"},
			{"EdDSA signature, kid of the EC key", func(c map[string]any) string {
				return p.SignEdDSA(testclaimsprovider.Header("EdDSA", testclaimsprovider.ECKID), c)
			}, "unknown_kid"},
			{"PS256 header over a PKCS#1 v1.5 signature", func(c map[string]any) string {
				return p.SignRS256(testclaimsprovider.Header("PS256", testclaimsprovider.RSAKID), c)
			}, "bad_signature"},
			{"RS256 header over a PSS signature", func(c map[string]any) string {
				return p.SignPS256(testclaimsprovider.Header("RS256", testclaimsprovider.RSAKID), c)
			}, "bad_signature"},
			{"the right kid, another P-256 key", func(c map[string]any) string {
				other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				return testclaimsprovider.SignES256(other, testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), c)
			}, "bad_signature"},
			{"the attacker's key under the partner's kid", func(c map[string]any) string {
				return s.attacker.SignEdDSA(testclaimsprovider.Header("EdDSA", testclaimsprovider.EdDSAKID), c)
			}, "bad_signature"},
			{"no kid", func(c map[string]any) string { return p.SignES256(map[string]any{"alg": "ES256"}, c) }, "kid_missing"},
			{"a crit header", func(c map[string]any) string {
				return p.SignES256(map[string]any{"alg": "ES256", "kid": testclaimsprovider.ECKID, "crit": []string{"exp"}, "exp": 1}, c)
			}, "jws_malformed"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ticket, c := partnerSigned(t, func(map[string]any) {})
				deny(t, ticket, tc.sign(c), tc.reason)
			})
		}
	})

	t.Run("claims changed under a valid signature", func(t *testing.T) {
		ticket, c := partnerSigned(t, func(map[string]any) {})
		parts := strings.Split(s.partner.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), c), ".")
		c["email"] = "ceo@" + partnerDomain
		deny(t, ticket, parts[0]+"."+testclaimsprovider.Part(c)+"."+parts[2], "bad_signature")
	})

	t.Run("times: expired, issued in the future, living too long, not yet valid", func(t *testing.T) {
		now := time.Now().Unix()
		for _, tc := range []struct {
			reason        string
			iat, exp, nbf int64
		}{
			{"expired", now - 300, now - 100, 0},
			{"iat_in_future", now + 600, now + 700, 0},
			{"lifetime_too_long", now, now + 3600, 0},
			{"not_yet_valid", now, now + 120, now + 600},
		} {
			ticket, c := partnerSigned(t, func(c map[string]any) {
				c["iat"], c["exp"] = tc.iat, tc.exp
				if tc.nbf != 0 {
					c["nbf"] = tc.nbf
				}
			})
			deny(t, ticket, s.partner.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), c), tc.reason)
		}
	})

	t.Run("claims of the wrong type or missing", func(t *testing.T) {
		for _, tc := range []struct {
			reason string
			edit   func(c map[string]any)
		}{
			{"email_not_verified", func(c map[string]any) { c["email_verified"] = "true" }},
			{"email_not_verified", func(c map[string]any) { delete(c, "email_verified") }},
			{"email_missing", func(c map[string]any) { delete(c, "email") }},
			{"email_invalid", func(c map[string]any) { c["email"] = []string{"alice@" + partnerDomain} }},
			{"untrusted_issuer", func(c map[string]any) { c["iss"] = []string{s.partner.Issuer} }},
			{"untrusted_issuer", func(c map[string]any) { c["iss"] = s.partner.Issuer + "/" }},
			{"jti_missing", func(c map[string]any) { c["jti"] = 12345 }},
			{"sub_missing", func(c map[string]any) { delete(c, "sub") }},
			{"exp_missing", func(c map[string]any) { c["exp"] = "tomorrow" }},
			{"ticket_digest_mismatch", func(c map[string]any) { delete(c, "ticket_digest") }},
			{"ticket_digest_mismatch", func(c map[string]any) { c["ticket_digest"] = strings.ToUpper(c["ticket_digest"].(string)) }},
		} {
			ticket, c := partnerSigned(t, tc.edit)
			deny(t, ticket, s.partner.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), c), tc.reason)
		}
	})

	t.Run("parser games: duplicate keys, deep nesting, oversized token", func(t *testing.T) {
		ticket := s.Ticket(t, "bob")
		c := s.claims(s.partner.Issuer, "alice@"+partnerDomain, ticket)
		payload, _ := json.Marshal(c)
		// Two emails: a parser keeping the first sees partner.example, one
		// keeping the last sees foo.example. Strict parsing refuses both.
		dup := strings.TrimSuffix(string(payload), "}") + `,"email":"alice@foo.example"}`
		jws := signRawES256(s.partner.EC, testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), []byte(dup))
		deny(t, ticket, jws, "jws_malformed")

		deep := `{"iss":"` + s.partner.Issuer + `","x":` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200) + `}`
		deny(t, s.Ticket(t, "bob"), signRawES256(s.partner.EC, testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), []byte(deep)), "jws_malformed")

		ticket, c = partnerSigned(t, func(c map[string]any) { c["name"] = strings.Repeat("A", 7000) })
		deny(t, ticket, s.partner.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), c), "claims_token_too_large")
	})

	t.Run("key rotation abuse: an encryption key, a key whose alg differs, an unknown-kid flood", func(t *testing.T) {
		p := s.partner
		encKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		enc := testclaimsprovider.ECJWK(&encKey.PublicKey, "enc-key")
		enc["use"] = "enc"
		rsaRS256 := testclaimsprovider.RSAJWK(&p.RSA.PublicKey, "rsa-rs256-only")
		rsaRS256["alg"] = "RS256"
		p.SetJWKS(testclaimsprovider.ECJWK(&p.EC.PublicKey, testclaimsprovider.ECKID), testclaimsprovider.RSAJWK(&p.RSA.PublicKey, testclaimsprovider.RSAKID), testclaimsprovider.EdJWK(p.Ed.Public().(ed25519.PublicKey), testclaimsprovider.EdDSAKID), enc, rsaRS256)
		t.Cleanup(func() {
			p.SetJWKS(testclaimsprovider.ECJWK(&p.EC.PublicKey, testclaimsprovider.ECKID), testclaimsprovider.RSAJWK(&p.RSA.PublicKey, testclaimsprovider.RSAKID), testclaimsprovider.EdJWK(p.Ed.Public().(ed25519.PublicKey), testclaimsprovider.EdDSAKID))
		})
		// The policy refetches a JWKS at most every jwksMinRefreshSeconds
		// (10): wait so that the first unknown kid below does refetch.
		time.Sleep(11 * time.Second)
		before := p.JWKSFetches.Load()
		ticket, c := partnerSigned(t, func(map[string]any) {})
		deny(t, ticket, testclaimsprovider.SignES256(encKey, testclaimsprovider.Header("ES256", "enc-key"), c), "unknown_kid")
		if p.JWKSFetches.Load() != before+1 {
			t.Fatalf("the unknown kid did not refetch the JWKS (%d fetches before, %d after)", before, p.JWKSFetches.Load())
		}
		ticket, c = partnerSigned(t, func(map[string]any) {})
		deny(t, ticket, p.SignPS256(testclaimsprovider.Header("PS256", "rsa-rs256-only"), c), "unknown_kid")
		for i := 0; i < 5; i++ {
			ticket, c := partnerSigned(t, func(map[string]any) {})
			deny(t, ticket, p.SignES256(testclaimsprovider.Header("ES256", "forged-"+e2etest.RandomHex(4)), c), "unknown_kid")
		}
		if n := p.JWKSFetches.Load() - before; n != 1 {
			t.Errorf("7 unknown kids made Keycloak fetch the JWKS %d times within the refresh interval, want 1", n)
		}
	})
}

// signRawES256 signs an exact payload (not re-marshalled) with a P-256 key.
func signRawES256(k *ecdsa.PrivateKey, header map[string]any, payload []byte) string {
	return testclaimsprovider.SignInputES256(k, testclaimsprovider.Part(header)+"."+testclaimsprovider.B64(payload))
}
