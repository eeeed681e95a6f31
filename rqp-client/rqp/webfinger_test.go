package rqp_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/testca"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// tlsDomain is an HTTPS server for host names of a test CA; the client
// reaches it by any of those names through dialer.
type tlsDomain struct {
	srv  *httptest.Server
	ca   *testca.CA
	hits atomic.Int32
}

func newTLSDomain(t *testing.T, h http.HandlerFunc, hosts ...string) *tlsDomain {
	t.Helper()
	ca, err := testca.New("rqp test CA")
	if err != nil {
		t.Fatal(err)
	}
	return newTLSDomainCA(t, ca, h, hosts...)
}

func newTLSDomainCA(t *testing.T, ca *testca.CA, h http.HandlerFunc, hosts ...string) *tlsDomain {
	t.Helper()
	sc, err := ca.Issue(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := sc.TLS()
	if err != nil {
		t.Fatal(err)
	}
	d := &tlsDomain{ca: ca}
	d.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		h(w, r)
	}))
	d.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	d.srv.StartTLS()
	t.Cleanup(d.srv.Close)
	return d
}

// client trusts only ca and dials every name to the domain's server: normal
// certificate validation on the name asked for.
func (d *tlsDomain) client(ca *testca.CA) *http.Client {
	hc := rqp.DefaultHTTPClient()
	tr := hc.Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool()}
	addr := d.srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
	}
	return hc
}

func jrd(subject string, links ...uma.JRDLink) string {
	b, _ := json.Marshal(uma.JRD{Subject: subject, Links: links})
	return string(b)
}

var (
	bobIncoming = uma.JRDLink{Rel: uma.RelIncoming, Href: "https://rs.bar.example/incoming/bob"}
	bobAS       = uma.JRDLink{Rel: uma.RelUMAAS, Href: "https://sso.bar.example/realms/bar"}
)

func resolver(t *testing.T, d *tlsDomain, ca *testca.CA) *rqp.Client {
	t.Helper()
	return newClient(t, rqp.Config{
		AuthN:      rqp.AuthN{Issuer: "https://sso.foo.example/realms/foo", ClientID: "rqp-client", ClientSecret: "s"},
		Register:   &rqp.DynamicRegistration{Dir: t.TempDir()},
		HTTPClient: d.client(ca), Timeout: 5 * time.Second,
	})
}

func TestResolve(t *testing.T) {
	var asked []string
	d := newTLSDomain(t, func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.Host+" "+r.URL.Path+" "+r.URL.Query().Get(uma.WebFingerResourceParam))
		w.Header().Set("Content-Type", uma.ContentTypeJRD)
		if r.URL.Query().Get("resource") != "acct:bob@bar.example" {
			http.Error(w, `{"error":"not_found"}`, 404)
			return
		}
		_, _ = w.Write([]byte(jrd("acct:bob@bar.example", uma.JRDLink{Rel: "http://webfinger.net/rel/profile-page", Href: "https://bar.example/~bob"}, bobIncoming, bobAS)))
	}, "bar.example")
	c := resolver(t, d, d.ca)
	rc, err := c.Resolve(context.Background(), "bob@BAR.example")
	if err != nil {
		t.Fatal(err)
	}
	if rc.Incoming != bobIncoming.Href || rc.AS != bobAS.Href || rc.Address != "bob@bar.example" {
		t.Errorf("resolved %+v", rc)
	}
	if len(asked) != 1 || asked[0] != "bar.example "+uma.WebFingerPath+" acct:bob@bar.example" {
		t.Errorf("asked %q", asked)
	}

	// An unknown recipient: a clear error, and an honest look-up right
	// after still works.
	_, err = c.Resolve(context.Background(), "nobody@bar.example")
	var se *rqp.StepError
	if !errors.As(err, &se) || se.Reason != rqp.ReasonUnknownRecipient || !errors.Is(err, rqp.ErrUnknownRecipient) || !errors.Is(err, rqp.ErrRefused) {
		t.Fatalf("unknown recipient: %v", err)
	}
	if !strings.Contains(err.Error(), "nobody@bar.example") || !strings.Contains(err.Error(), "no such recipient") {
		t.Errorf("message does not name the recipient: %v", err)
	}
	if _, err := c.Resolve(context.Background(), "bob@bar.example"); err != nil {
		t.Fatal(err)
	}
}

func TestResolveRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		want error
	}{
		"another subject":   {jrd("acct:mallory@bar.example", bobIncoming, bobAS), rqp.ErrProtocol},
		"no AS":             {jrd("acct:bob@bar.example", bobIncoming), rqp.ErrProtocol},
		"two Incomings":     {jrd("acct:bob@bar.example", bobIncoming, bobIncoming, bobAS), rqp.ErrProtocol},
		"plain http":        {jrd("acct:bob@bar.example", uma.JRDLink{Rel: uma.RelIncoming, Href: "http://rs.bar.example/incoming/bob"}, bobAS), rqp.ErrProtocol},
		"not JSON":          {"<html>", rqp.ErrProtocol},
		"answer too long":   {`{"subject":"` + strings.Repeat("a", 100<<10) + `"}`, rqp.ErrProtocol},
		"AS with user info": {jrd("acct:bob@bar.example", bobIncoming, uma.JRDLink{Rel: uma.RelUMAAS, Href: "https://u:p@sso.bar.example/realms/bar"}), rqp.ErrProtocol},
	} {
		t.Run(name, func(t *testing.T) {
			d := newTLSDomain(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(tc.body)) }, "bar.example")
			_, err := resolver(t, d, d.ca).Resolve(context.Background(), "bob@bar.example")
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("not an address", func(t *testing.T) {
		d := newTLSDomain(t, func(w http.ResponseWriter, r *http.Request) {}, "bar.example")
		for _, a := range []string{"bob", "bob@", "bob@127.0.0.1", "b ob@bar.example", "@bar.example"} {
			if _, err := resolver(t, d, d.ca).Resolve(context.Background(), a); !errors.Is(err, rqp.ErrConfig) {
				t.Errorf("%q: %v", a, err)
			}
		}
		if n := d.hits.Load(); n != 0 {
			t.Errorf("%d requests for malformed addresses", n)
		}
	})
	t.Run("certificate of another CA", func(t *testing.T) {
		d := newTLSDomain(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(jrd("acct:bob@bar.example", bobIncoming, bobAS)))
		}, "bar.example")
		other, err := testca.New("another CA")
		if err != nil {
			t.Fatal(err)
		}
		_, err = resolver(t, d, other).Resolve(context.Background(), "bob@bar.example")
		if !errors.Is(err, rqp.ErrUnreachable) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("got %v, want a certificate failure", err)
		}
	})
	t.Run("certificate for another name", func(t *testing.T) {
		d := newTLSDomain(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(jrd("acct:bob@bar.example", bobIncoming, bobAS)))
		}, "evil.example")
		_, err := resolver(t, d, d.ca).Resolve(context.Background(), "bob@bar.example")
		if !errors.Is(err, rqp.ErrUnreachable) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("got %v, want a certificate failure", err)
		}
	})
}

func TestIsAddress(t *testing.T) {
	for to, want := range map[string]bool{
		"bob@bar.example": true, "https://rs.bar.example/incoming/bob": false,
		"http://u@h/incoming/bob": false, "bob": false, "a@b@c": false,
	} {
		if got := rqp.IsAddress(to); got != want {
			t.Errorf("IsAddress(%q) = %v", to, got)
		}
	}
}
