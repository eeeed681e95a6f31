package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/rpt/rpttest"
	"github.com/umawide/umawide/resource-server/internal/store"
)

// newWebFingerEnv is newEnv with the organisation's domain bar.example.
func newWebFingerEnv(t *testing.T, domain string) *env {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "rs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signer := rpttest.New(asURI)
	v, err := rpt.New(rpt.Config{Issuer: asURI, Audience: "resource-server", Keys: signer.Keys(), GrantMACKey: rpttest.MACKey})
	if err != nil {
		t.Fatal(err)
	}
	prot := &fakeProt{}
	s, err := New(Config{
		Realm: "bar", Domain: domain, ASURI: asURI, PublicURL: publicURL,
		IsUnknownOwner: func(err error) bool { return errors.Is(err, errUnknown) },
		Store:          st, Protection: prot, Verifier: v,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, signer: signer, store: st, prot: prot}
}

func wfPath(resource string, rels ...string) string {
	q := url.Values{"resource": {resource}}
	for _, r := range rels {
		q.Add("rel", r)
	}
	return uma.WebFingerPath + "?" + q.Encode()
}

func TestWebFinger(t *testing.T) {
	e := newWebFingerEnv(t, "bar.example")

	r := e.do(http.MethodGet, wfPath("acct:bob@bar.example"), "", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != uma.ContentTypeJRD {
		t.Errorf("Content-Type %q", ct)
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q", got)
	}
	var jrd uma.JRD
	if err := json.Unmarshal(r.body, &jrd); err != nil {
		t.Fatal(err)
	}
	want := uma.JRD{Subject: "acct:bob@bar.example", Links: []uma.JRDLink{
		{Rel: uma.RelIncoming, Href: publicURL + "/incoming/bob"},
		{Rel: uma.RelUMAAS, Href: asURI},
	}}
	if jrd.Subject != want.Subject || len(jrd.Links) != 2 || jrd.Links[0] != want.Links[0] || jrd.Links[1] != want.Links[1] {
		t.Fatalf("JRD %+v, want %+v", jrd, want)
	}

	// Case does not make another person; the subject is the canonical form.
	r = e.do(http.MethodGet, wfPath("ACCT:Bob@Bar.Example"), "", nil, nil)
	if err := json.Unmarshal(r.body, &jrd); r.status != http.StatusOK || err != nil || jrd.Subject != "acct:bob@bar.example" {
		t.Fatalf("mixed case: %d %s", r.status, r.body)
	}

	// rel filters the links.
	r = e.do(http.MethodGet, wfPath("acct:bob@bar.example", uma.RelUMAAS), "", nil, nil)
	if err := json.Unmarshal(r.body, &jrd); r.status != http.StatusOK || err != nil || len(jrd.Links) != 1 || jrd.Link(uma.RelUMAAS) != asURI {
		t.Fatalf("rel filter: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodGet, wfPath("acct:bob@bar.example", "http://webfinger.net/rel/avatar"), "", nil, nil)
	if err := json.Unmarshal(r.body, &jrd); r.status != http.StatusOK || err != nil || len(jrd.Links) != 0 || !strings.Contains(string(r.body), `"links":[]`) {
		t.Fatalf("rel of no link: %d %s", r.status, r.body)
	}
}

func TestWebFingerRefusals(t *testing.T) {
	e := newWebFingerEnv(t, "bar.example")
	long := strings.Repeat("a", 3000)
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"no resource", uma.WebFingerPath, 400},
		{"empty resource", uma.WebFingerPath + "?resource=", 400},
		{"two resources", uma.WebFingerPath + "?resource=acct:bob@bar.example&resource=acct:bob@bar.example", 400},
		{"malformed query", uma.WebFingerPath + "?resource=%zz", 400},
		{"query too long", uma.WebFingerPath + "?resource=acct:" + long + "@bar.example", 400},
		{"too many rels", wfPath("acct:bob@bar.example", "a", "b", "c", "d", "e", "f", "g", "h", "i"), 400},
		{"unknown user", wfPath("acct:nobody@bar.example"), 404},
		{"another domain", wfPath("acct:bob@foo.example"), 404},
		{"a subdomain", wfPath("acct:bob@sub.bar.example"), 404},
		{"bare address", wfPath("bob@bar.example"), 404},
		{"https resource", wfPath("https://bar.example/bob"), 404},
		{"service account", wfPath("acct:service-account-resource-server@bar.example"), 404},
		{"two @", wfPath("acct:bob@evil@bar.example"), 404},
		{"owner-name rules", wfPath("acct:bob..x@bar.example"), 404},
		{"local part too long", wfPath("acct:" + strings.Repeat("b", 65) + "@bar.example"), 404},
		{"percent in local part", wfPath("acct:b%6fb@bar.example"), 404},
		{"no domain", wfPath("acct:bob@"), 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(http.MethodGet, tc.path, "", nil, nil)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if r.header.Get("Access-Control-Allow-Origin") != "*" {
				t.Error("no Access-Control-Allow-Origin on the refusal")
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("refusal Content-Type %q: not a JRD", ct)
			}
			if r.err().Code == "" || strings.Contains(string(r.body), "subject") {
				t.Errorf("refusal body %s", r.body)
			}
			// An honest query right after still succeeds.
			if ok := e.do(http.MethodGet, wfPath("acct:bob@bar.example"), "", nil, nil); ok.status != http.StatusOK {
				t.Fatalf("honest query after: %d %s", ok.status, ok.body)
			}
		})
	}

	e.prot.down.Store(true)
	if r := e.do(http.MethodGet, wfPath("acct:bob@bar.example"), "", nil, nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("Keycloak down: %d %s", r.status, r.body)
	}
	e.prot.down.Store(false)
	if r := e.do(http.MethodGet, wfPath("acct:bob@bar.example"), "", nil, nil); r.status != http.StatusOK {
		t.Fatalf("Keycloak back: %d %s", r.status, r.body)
	}
}

func TestWebFingerOffWithoutDomain(t *testing.T) {
	e := newWebFingerEnv(t, "")
	if r := e.do(http.MethodGet, wfPath("acct:bob@bar.example"), "", nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	if _, err := New(Config{Realm: "bar", Domain: "Bar.Example", ASURI: asURI, PublicURL: publicURL,
		IsUnknownOwner: func(error) bool { return false }, Store: e.store, Protection: e.prot, Verifier: &rpt.Verifier{}}); err == nil {
		t.Fatal("an upper-case domain was accepted")
	}
}
