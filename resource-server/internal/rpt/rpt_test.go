package rpt_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/rpt/rpttest"
)

const (
	issuer = "http://kc.test/realms/bar"
	rid    = "rid-bob"
	sum    = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func newVerifier(t testing.TB, s *rpttest.Signer) *rpt.Verifier {
	v, err := rpt.New(rpt.Config{Issuer: issuer, Audience: "resource-server", Keys: s.Keys(), GrantMACKey: rpttest.MACKey})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const incoming = "https://rs.bar.example/incoming/bob"

var body = []byte("test")

func TestAuthorize(t *testing.T) {
	s := rpttest.New(issuer)
	v := newVerifier(t, s)
	cl := rpttest.GrantClaims(incoming, body)
	cl["content_type"] = []string{"text/plain"}
	cl["file_name"] = []string{"t.txt"}
	raw := s.RPT([]rpttest.Perm{
		{RSID: "other", Claims: map[string][]string{"sender_email": {"eve@x"}}},
		{RSID: rid, Claims: cl},
	}, jwt.MapClaims{"jti": "the-jti"})
	g, err := v.Authorize(context.Background(), raw, rid, incoming)
	if err != nil {
		t.Fatal(err)
	}
	if g.JTI != "the-jti" || g.ExpiresAt.Before(time.Now()) || g.GrantID != cl["grant_id"][0] {
		t.Errorf("jti %q exp %v grant %q", g.JTI, g.ExpiresAt, g.GrantID)
	}
	if g.Sender != (rpt.Sender{Email: rpttest.SenderEmail, Iss: rpttest.SenderIss, Sub: rpttest.SenderSub}) {
		t.Errorf("sender %+v", g.Sender)
	}
	if g.Content != (rpt.Binding{SHA256: sum, Length: 4, ContentType: "text/plain", FileName: "t.txt"}) {
		t.Errorf("binding %+v", g.Content)
	}
	// A bare string is accepted as one value too; the jti is not needed.
	cl = rpttest.Attest(rid, rpttest.GrantClaims(incoming, nil))
	perm := map[string]any{"rsid": rid, "scopes": []string{"create"}, "claims": map[string]any{}}
	for k, vals := range cl {
		perm["claims"].(map[string]any)[k] = vals[0]
	}
	c := s.Base()
	delete(c, "jti")
	c["authorization"] = map[string]any{"permissions": []any{perm}}
	g, err = v.Authorize(context.Background(), s.Sign(c), rid, incoming)
	if err != nil || g.Content.Length != 0 || g.JTI != "" {
		t.Fatalf("string-valued claims: %+v %v", g, err)
	}
	// Neither a string nor an array of one string: refused.
	for _, bad := range []any{5, map[string]any{"a": "b"}, []any{5}, []string{}, nil, true} {
		perm["claims"].(map[string]any)["sender_email"] = bad
		if _, err := v.Authorize(context.Background(), s.Sign(c), rid, incoming); !errors.Is(err, rpt.ErrRefused) {
			t.Errorf("sender_email %v: %v, want a refusal", bad, err)
		}
	}
}

// TestAuthorizeInvariant: a permission for the Incoming that lacks one part
// of issue 12's invariant is refused with its reason.
func TestAuthorizeInvariant(t *testing.T) {
	s := rpttest.New(issuer)
	v := newVerifier(t, s)
	type edit func(map[string][]string)
	del := func(k string) edit { return func(c map[string][]string) { delete(c, k) } }
	set := func(k string, vals ...string) edit { return func(c map[string][]string) { c[k] = vals } }
	cases := []struct {
		name   string
		edit   edit
		reason string
	}{
		{"no sender_email", del("sender_email"), rpt.ReasonSenderUnverified},
		{"no sender_iss", del("sender_iss"), rpt.ReasonSenderUnverified},
		{"no sender_sub", del("sender_sub"), rpt.ReasonSenderUnverified},
		{"two sender_email", set("sender_email", "alice@foo.example", "ceo@partner.example"), rpt.ReasonSenderUnverified},
		{"empty sender_iss", set("sender_iss", ""), rpt.ReasonSenderUnverified},
		{"no values", set("sender_sub"), rpt.ReasonSenderUnverified},
		{"control character", set("sender_email", "a@b\r\nX: y"), rpt.ReasonSenderUnverified},
		{"no content_sha256", del("content_sha256"), rpt.ReasonContentUnbound},
		{"no content_length", del("content_length"), rpt.ReasonContentUnbound},
		{"sha256 upper case", set("content_sha256", strings.ToUpper(sum)), rpt.ReasonContentUnbound},
		{"sha256 not hex", set("content_sha256", strings.Repeat("z", 64)), rpt.ReasonContentUnbound},
		{"sha256 short", set("content_sha256", "abcd"), rpt.ReasonContentUnbound},
		{"two sha256", set("content_sha256", sum, sum), rpt.ReasonContentUnbound},
		{"negative length", set("content_length", "-1"), rpt.ReasonContentUnbound},
		{"signed length", set("content_length", "+4"), rpt.ReasonContentUnbound},
		{"leading zero", set("content_length", "04"), rpt.ReasonContentUnbound},
		{"length not a number", set("content_length", "1e3"), rpt.ReasonContentUnbound},
		{"length beyond int64", set("content_length", "9999999999999999999"), rpt.ReasonContentUnbound},
		{"no incoming_uri", del("incoming_uri"), rpt.ReasonIncomingURIMismatch},
		{"other Incoming", set("incoming_uri", "https://rs.bar.example/incoming/carol"), rpt.ReasonIncomingURIMismatch},
		{"other server", set("incoming_uri", "https://other.example/incoming/bob"), rpt.ReasonIncomingURIMismatch},
		{"not canonical", set("incoming_uri", "https://RS.bar.example:443/incoming/bob/"), rpt.ReasonIncomingURIMismatch},
		{"two incoming_uri", set("incoming_uri", incoming, incoming), rpt.ReasonIncomingURIMismatch},
		{"no grant_id", del("grant_id"), rpt.ReasonGrantUnbound},
		{"two grant_id", set("grant_id", rpttest.NewGrantID(), rpttest.NewGrantID()), rpt.ReasonGrantUnbound},
		{"short grant_id", set("grant_id", "abc"), rpt.ReasonGrantUnbound},
		{"grant_id not BASE64URL", set("grant_id", strings.Repeat("+", 22)), rpt.ReasonGrantUnbound},
		{"no grant_mac (claims copied by a road that skips the policy)", set("grant_mac"), rpt.ReasonGrantUnattested},
		{"forged grant_mac", set("grant_mac", strings.Repeat("A", 43)), rpt.ReasonGrantUnattested},
		{"grant_mac of another resource", func(c map[string][]string) { maps.Copy(c, rpttest.Attest("rid-carol", c)) }, rpt.ReasonGrantUnattested},
		{"file name changed after the grant", func(c map[string][]string) {
			a := rpttest.Attest(rid, c)
			a["file_name"] = []string{"invoice.pdf"}
			maps.Copy(c, a)
		}, rpt.ReasonGrantUnattested},
		// The first missing part is the one reported.
		{"nothing at all", func(c map[string][]string) { clear(c) }, rpt.ReasonSenderUnverified},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := rpttest.GrantClaims(incoming, body)
			tc.edit(cl)
			_, err := v.Authorize(context.Background(), s.RPT([]rpttest.Perm{{RSID: rid, Claims: cl}}, nil), rid, incoming)
			var re *rpt.RefusedError
			if !errors.As(err, &re) || !errors.Is(err, rpt.ErrRefused) || re.Reason != tc.reason {
				t.Fatalf("err = %v, want reason %s", err, tc.reason)
			}
			// The honest permission right after is accepted.
			if _, err := v.Authorize(context.Background(), s.RPT([]rpttest.Perm{{RSID: rid, Claims: rpttest.GrantClaims(incoming, body)}}, nil), rid, incoming); err != nil {
				t.Fatalf("honest RPT after the refusal: %v", err)
			}
		})
	}
	// The server's own URL must be known: an empty one matches nothing.
	cl := rpttest.GrantClaims("", body)
	if _, err := v.Authorize(context.Background(), s.RPT([]rpttest.Perm{{RSID: rid, Claims: cl}}, nil), rid, ""); !errors.Is(err, rpt.ErrRefused) {
		t.Fatalf("empty Incoming URL: %v", err)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	s := rpttest.New(issuer)
	other := rpttest.New(issuer)
	other.Kid = s.Kid // same kid, different key: a forgery
	v := newVerifier(t, s)
	ok := []rpttest.Perm{{RSID: rid, Claims: rpttest.GrantClaims(incoming, body)}}
	optional := func(k, val string) []rpttest.Perm {
		cl := rpttest.GrantClaims(incoming, body)
		cl[k] = []string{val}
		return []rpttest.Perm{{RSID: rid, Claims: cl}}
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, s.Base())
	hs.Header["kid"] = s.Kid
	hsRaw, _ := hs.SignedString([]byte("secret"))
	rs := jwt.NewWithClaims(jwt.SigningMethodRS256, s.Base())
	rs.Header["kid"] = s.Kid
	rsRaw, _ := rs.SignedString(rsaKey)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, s.Base()).SignedString(jwt.UnsafeAllowNoneSignatureType)

	cases := []struct {
		name string
		raw  string
		want error
	}{
		{"forged signature", other.RPT(ok, nil), rpt.ErrInvalid},
		{"alg none", none, rpt.ErrInvalid},
		{"HMAC", hsRaw, rpt.ErrInvalid},
		{"RSA key not in the set", rsRaw, rpt.ErrInvalid},
		{"expired", s.RPT(ok, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}), rpt.ErrInvalid},
		{"no exp", s.RPT(ok, jwt.MapClaims{"exp": nil}), rpt.ErrInvalid},
		{"other issuer", s.RPT(ok, jwt.MapClaims{"iss": "http://kc.test/realms/foo"}), rpt.ErrInvalid},
		{"other audience", s.RPT(ok, jwt.MapClaims{"aud": "account"}), rpt.ErrInvalid},
		{"ID token", s.RPT(ok, jwt.MapClaims{"typ": "ID"}), rpt.ErrInvalid},
		{"garbage", "not.a.jwt", rpt.ErrInvalid},
		{"huge", strings.Repeat("a", 20000), rpt.ErrInvalid},
		{"no authorization", s.Reader("bob", "incoming-app", jwt.MapClaims{"aud": "resource-server"}), rpt.ErrInsufficient},
		{"other resource", s.RPT([]rpttest.Perm{{RSID: "rid-carol", Claims: rpttest.GrantClaims(incoming, body)}}, nil), rpt.ErrInsufficient},
		{"no scope create", s.RPT([]rpttest.Perm{{RSID: rid, Scopes: []string{"read"}, Claims: rpttest.GrantClaims(incoming, body)}}, nil), rpt.ErrInsufficient},
		{"two permissions for it", s.RPT(append(ok, ok...), nil), rpt.ErrInsufficient},
		{"content_type control character", s.RPT(optional("content_type", "text/plain\r\nX: y"), nil), rpt.ErrInvalid},
		{"two file names", s.RPT([]rpttest.Perm{{RSID: rid, Claims: func() map[string][]string {
			cl := rpttest.GrantClaims(incoming, body)
			cl["file_name"] = []string{"a", "b"}
			return cl
		}()}}, nil), rpt.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Authorize(context.Background(), tc.raw, rid, incoming)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReader(t *testing.T) {
	s := rpttest.New(issuer)
	v := newVerifier(t, s)
	r, err := v.Reader(context.Background(), s.Reader("bob", "incoming-app", nil))
	if err != nil || r.Subject != rpttest.UserID("bob") || r.Username != "bob" || r.ClientID != "incoming-app" {
		t.Fatalf("%+v %v", r, err)
	}
	for name, raw := range map[string]string{
		"ID token":     s.Reader("bob", "incoming-app", jwt.MapClaims{"typ": "ID"}),
		"no sub":       s.Reader("bob", "incoming-app", jwt.MapClaims{"sub": nil}),
		"expired":      s.Reader("bob", "incoming-app", jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}),
		"other realm":  s.Reader("bob", "incoming-app", jwt.MapClaims{"iss": "http://kc.test/realms/foo"}),
		"forged":       rpttest.New(issuer).Reader("bob", "incoming-app", nil),
		"empty string": "",
	} {
		if _, err := v.Reader(context.Background(), raw); !errors.Is(err, rpt.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func BenchmarkAuthorize(b *testing.B) {
	s := rpttest.New(issuer)
	v := newVerifier(b, s)
	raw := s.RPT([]rpttest.Perm{{RSID: rid, Claims: rpttest.GrantClaims(incoming, body)}}, nil)
	ctx := context.Background()
	for b.Loop() {
		if _, err := v.Authorize(ctx, raw, rid, incoming); err != nil {
			b.Fatal(err)
		}
	}
}

func TestIDToken(t *testing.T) {
	s := rpttest.New(issuer)
	v := newVerifier(t, s)
	id := func(extra jwt.MapClaims) string {
		c := jwt.MapClaims{"typ": "ID", "aud": "incoming-app", "nonce": "n-1"}
		maps.Copy(c, extra)
		return s.Reader("bob", "incoming-app", c)
	}
	r, err := v.IDToken(context.Background(), id(nil), "incoming-app", "n-1")
	if err != nil || r.Subject != rpttest.UserID("bob") || r.Username != "bob" || r.ClientID != "incoming-app" {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := v.IDToken(context.Background(), id(jwt.MapClaims{"azp": nil}), "incoming-app", "n-1"); err != nil {
		t.Errorf("an ID token without azp: %v", err)
	}
	for name, raw := range map[string]string{
		"access token": s.Reader("bob", "incoming-app", jwt.MapClaims{"aud": "incoming-app", "nonce": "n-1"}),
		"other client": id(jwt.MapClaims{"aud": "rqp-client", "azp": "rqp-client"}),
		"other azp":    id(jwt.MapClaims{"azp": "rqp-client"}),
		"no sub":       id(jwt.MapClaims{"sub": nil}),
		"expired":      id(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}),
		"other realm":  id(jwt.MapClaims{"iss": "http://kc.test/realms/foo"}),
		"forged":       rpttest.New(issuer).Reader("bob", "incoming-app", jwt.MapClaims{"typ": "ID", "aud": "incoming-app", "nonce": "n-1"}),
		"empty string": "",
	} {
		if _, err := v.IDToken(context.Background(), raw, "incoming-app", "n-1"); !errors.Is(err, rpt.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	for _, nonce := range []string{"n-2", "n-", "n-1 "} {
		if _, err := v.IDToken(context.Background(), id(nil), "incoming-app", nonce); !errors.Is(err, rpt.ErrNonce) {
			t.Errorf("nonce %q: %v, want ErrNonce", nonce, err)
		}
	}
	if _, err := v.IDToken(context.Background(), id(jwt.MapClaims{"nonce": nil}), "incoming-app", "n-1"); !errors.Is(err, rpt.ErrNonce) {
		t.Errorf("no nonce: %v, want ErrNonce", err)
	}
}
