package attacks

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/testclaimsprovider"
	"github.com/umawide/umawide/internal/uma"
)

// raw sends one HTTP/1.1 request to the Resource Server with the
// request-target exactly as given (no client-side cleaning or escaping) and
// Content-Length as in hdr, else the body's length.
func (s *suite) raw(t *testing.T, method, target string, hdr http.Header, body []byte) answer {
	t.Helper()
	host := strings.TrimPrefix(s.RSURL, "http://")
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
	if hdr.Get("Content-Length") == "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	for k, vs := range hdr {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	b.Write(body)
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).CloseWrite() // a body shorter than its Content-Length ends here
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode, Header: resp.Header}
	a.Body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = json.Unmarshal(a.Body, &a.Err)
	return a
}

// spellings: one person or one owner written so that two parts might
// disagree about who or where it is.
func (s *suite) spellings(t *testing.T) {
	t.Run("emails at the Claims Provider", func(t *testing.T) {
		for _, tc := range []struct {
			email  string
			status int
			code   string
		}{
			// Cyrillic а, Cyrillic о, Greek ο, full-width Ａ, a zero-width space
			{"\u0430lice@foo.example", 400, "invalid_request"},
			{"alice@f\u043eo.example", 400, "invalid_request"},
			{"alice@fo\u03bf.example", 400, "invalid_request"},
			{"\uff21lice@foo.example", 400, "invalid_request"},
			{"alice\u200b@foo.example", 400, "invalid_request"},
			{"alice@foo.example.", 400, "invalid_request"},
			{"alice@foo..example", 400, "invalid_request"},
			{`"alice"@foo.example`, 400, "invalid_request"},
			{`"alice@evil.example"@foo.example`, 400, "invalid_request"},
			{"alice@evil.example@foo.example", 400, "invalid_request"},
			{"alice@foo.example@evil.example", 400, "invalid_request"},
			{"alice%40foo.example", 400, "invalid_request"},
			{" alice@foo.example", 400, "invalid_request"},
			{"alice@foo.example\n", 400, "invalid_request"},
			{"alice@[127.0.0.1]", 400, "invalid_request"},
			{"alice(comment)@foo.example", 400, "invalid_request"},
			{"alice+tag@foo.example", 403, "access_denied"},
			{"alice@sub.foo.example", 403, "access_denied"},
			{"alice@foo.example.evil.example", 403, "access_denied"},
			{"alice@xn--fo-2kb.example", 403, "access_denied"},
			{"alice@bar.example", 403, "access_denied"},
		} {
			ticket := s.Ticket(t, "bob")
			a := s.CPDo(t, s.aliceClientToken(t), url.Values{uma.FormTicketDigest: {uma.TicketDigest(ticket)}, uma.FormAudience: {s.asURI}, uma.FormEmail: {tc.email}})
			if a.Status != tc.status || a.Err.Code != tc.code {
				t.Errorf("email %q: %s, want %d %s", tc.email, a, tc.status, tc.code)
			}
		}
		// Upper case is the same person: the token carries Keycloak's
		// spelling, and the AS agrees.
		for _, email := range []string{"ALICE@FOO.EXAMPLE", "Alice@Foo.Example"} {
			ticket := s.Ticket(t, "bob")
			jws := s.claimsToken(t, ticket, email, "")
			rpt, te := s.Grant(t, "", e2etest.GrantForm(ticket, s.pushedBound(jws)))
			if te != nil {
				t.Fatalf("%s: %v", email, te)
			}
			if got := permissionClaims(t, rpt)[uma.ClaimSenderEmail]; len(got) != 1 || got[0] != e2etest.AliceEmail {
				t.Errorf("%s: sender_email %v", email, got)
			}
		}
	})

	t.Run("emails in claims tokens at the AS", func(t *testing.T) {
		for _, tc := range []struct{ email, reason string }{
			{"alice@" + partnerDomain + ".", "email_invalid"},
			{"alice@" + partnerDomain + "@foo.example", "email_invalid"},
			{"alice@foo.example@" + partnerDomain, "email_invalid"},
			{`"alice@foo.example"@` + partnerDomain, "email_invalid"},
			{"alice@p\u0430rtner.example", "email_invalid"},
			{"\u0430lice@" + partnerDomain, "email_invalid"},
			{"alice@" + partnerDomain + " ", "email_invalid"},
			{"alice@" + partnerDomain + "\x00.foo.example", "email_invalid"},
			{"alice@partner_example", "email_invalid"},
			{"@" + partnerDomain, "email_invalid"},
			{"alice@sub." + partnerDomain, "email_domain_not_trusted"},
			{"alice@" + partnerDomain + ".foo.example", "email_domain_not_trusted"},
			{"alice@xn--prtner-2ua.example", "email_domain_not_trusted"},
		} {
			ticket := s.Ticket(t, "bob")
			jws := s.partner.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), s.claims(s.partner.Issuer, tc.email, ticket))
			s.unchanged(t, func() { s.expectDenied(t, tc.reason, e2etest.GrantForm(ticket, s.pushedBound(jws))) })
		}
		// One spelling in the RPT: the lower-cased address.
		ticket := s.Ticket(t, "bob")
		jws := s.partner.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), s.claims(s.partner.Issuer, "Alice@PARTNER.Example", ticket))
		rpt, te := s.Grant(t, "", e2etest.GrantForm(ticket, s.pushedBound(jws)))
		if te != nil {
			t.Fatal(te)
		}
		if got := permissionClaims(t, rpt)[uma.ClaimSenderEmail]; len(got) != 1 || got[0] != "alice@"+partnerDomain {
			t.Errorf("sender_email %v, want alice@%s", got, partnerDomain)
		}
	})

	t.Run("owner names at the Resource Server", func(t *testing.T) {
		c := newContent("owner spellings")
		rpt, _ := s.rptFor(t, "bob", c, e2etest.AliceEmail)
		hdr := c.header()
		hdr.Set("Authorization", "Bearer "+rpt)
		s.unchanged(t, func() {
			for _, tc := range []struct {
				target string
				status int
				code   string
			}{
				{"/incoming/Bob", 404, "not_found"},
				{"/incoming/BOB", 404, "not_found"},
				{"/incoming/b%6fb", 400, "invalid_request"},
				{"/incoming/%62ob", 400, "invalid_request"},
				{"/incoming/bob%2f", 400, "invalid_request"},
				{"/incoming/bob%00", 400, "invalid_request"},
				{"/incoming%2fbob", 400, "invalid_request"},
				{"/incoming/bob/", 404, "not_found"},
				{"/incoming//bob", 404, "not_found"},
				{"//incoming/bob", 404, "not_found"},
				{"/incoming/./bob", 404, "not_found"},
				{"/incoming/../incoming/bob", 404, "not_found"},
				{"/incoming/bob/.", 404, "not_found"},
				{"/incoming/bob/..", 404, "not_found"},
				{"/incoming/bob.", 404, "not_found"},
				{"/incoming/.bob", 404, "not_found"},
				{"/incoming/bob@bar.example", 404, "not_found"},
				{"/incoming/b\u043eb", 400, "invalid_request"},
				{"/incoming/\uff42\uff4f\uff42", 400, "invalid_request"},
				{"/incoming/bob;carol", 404, "not_found"},
				{"/incoming/bob\\", 400, "invalid_request"},
				{"/Incoming/bob", 404, "not_found"},
				{"/incoming/service-account-resource-server", 404, "not_found"},
				{"/incoming/carol/../bob", 404, "not_found"},
			} {
				a := s.raw(t, http.MethodPost, tc.target, hdr, c.body)
				if a.Status != tc.status || a.Err.Code != tc.code {
					t.Errorf("POST %q with Bob's RPT: %s, want %d %s", tc.target, a, tc.status, tc.code)
				}
			}
		})
		// None of those spent the RPT: no spelling reached Bob's Incoming.
		created(t, s.raw(t, http.MethodPost, "/incoming/bob", hdr, c.body))
		// Reading: only the exact name, only the owner.
		bob := http.Header{"Authorization": {"Bearer " + s.CachedBobToken(t)}}
		for _, target := range []string{"/incoming/Bob/messages", "/incoming/bob/messages/", "/incoming/bob/./messages", "/incoming/bob%2fmessages", "/incoming/carol/../bob/messages"} {
			if a := s.raw(t, http.MethodGet, target, bob, nil); a.Status != 404 && a.Status != 400 {
				t.Errorf("GET %q as Bob: %s, want 404 or 400", target, a)
			}
		}
		if a := s.RSDo(t, http.MethodGet, "/incoming/carol/messages", s.CachedBobToken(t), nil, nil); a.Status != 403 || a.Err.Code != "access_denied" {
			t.Errorf("Bob reads Carol's Incoming: %s, want 403 access_denied", a)
		}
	})
}
