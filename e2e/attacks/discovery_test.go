package attacks

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/keycloak"
	"github.com/umawide/umawide/internal/testclaimsprovider"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

// Discovery (keycloak/extension/README.md, discoveryEnabled) makes Keycloak
// fetch https://{email domain}/.well-known/uma-wide-ecosystem-claims-provider
// and the jwks_uri it names, for a domain taken from a claims token that is
// not verified yet: the attacker chooses where Keycloak connects.
//
// The policy under attack has discovery on and insecure URLs off, as in
// production. Such a policy only fetches https URLs of public addresses, so
// the hostile servers are reached the way a real attacker's would be: the
// email domains are public IPv4 literals of 192.88.99.0/24 (the deprecated
// 6to4 relay anycast block, RFC 7526: public to the policy, routed nowhere),
// and this test's own Keycloak sends their traffic through an HTTPS proxy of
// the test (Keycloak's proxy-mappings) that terminates TLS with a certificate
// of a test CA (Keycloak's truststore-paths) and plays the hostile server.

const (
	discoNet     = "192.88.99."
	discoTimeout = 1000 // httpTimeoutMillis of the policy under attack
	// hangBound is far above what a refused fetch may take (connect, read
	// and the overall deadline of twice the timeout) and far below what the
	// hostile servers would hold a request thread for (slowFor).
	hangBound = 20 * time.Second
	slowFor   = 90 * time.Second
)

// hostile is the fake Internet behind the proxy: a handler per IP.
type hostile struct {
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc
	stall    map[string]bool // CONNECT accepted, then nothing (no TLS handshake)
	done     chan struct{}   // closed when the test ends: slow handlers give up
	connects atomic.Int64    // CONNECTs the proxy answered
}

func (h *hostile) handle(ip string, f http.HandlerFunc) {
	h.mu.Lock()
	h.handlers[ip] = f
	h.mu.Unlock()
}

func (h *hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	h.mu.Lock()
	f := h.handlers[host]
	h.mu.Unlock()
	if f == nil {
		http.NotFound(w, r)
		return
	}
	f(w, r)
}

// chanListener hands the proxy's TLS connections to an http.Server.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// bufConn reads what the CONNECT reader buffered before the connection.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// startProxy starts the HTTPS proxy: CONNECT to 192.88.99.x:443 is answered
// with TLS (a certificate of a fresh CA for every address of the block but
// .21) and the request goes to h. It returns the proxy's address and the
// CA certificate file.
func startProxy(t *testing.T, h *hostile) (string, string) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "umawide attack suite CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: discoNet + "0/24"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for i := 1; i < 255; i++ {
		if i != 21 { // .21 presents a certificate that does not name it
			leafTmpl.IPAddresses = append(leafTmpl.IPAddresses, net.ParseIP(fmt.Sprintf("%s%d", discoNet, i)))
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "attack-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey}}}

	inner := &chanListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	go func() { _ = srv.Serve(inner) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ln.Close()
		inner.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				req, err := http.ReadRequest(br)
				_ = c.SetReadDeadline(time.Time{})
				if err != nil || req.Method != http.MethodConnect {
					_, _ = c.Write([]byte("HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
					c.Close()
					return
				}
				host, _, _ := net.SplitHostPort(req.Host)
				h.connects.Add(1)
				if _, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
					c.Close()
					return
				}
				h.mu.Lock()
				stall := h.stall[host]
				h.mu.Unlock()
				if stall {
					select { // no TLS handshake: hold the connection
					case <-h.done:
					case <-time.After(slowFor):
					}
					c.Close()
					return
				}
				select {
				case inner.conns <- tls.Server(bufConn{c, br}, tlsConf):
				case <-inner.done:
					c.Close()
				}
			}()
		}
	}()
	return ln.Addr().String(), caFile
}

// TestDiscoveryAttacks points discovery at addresses it must not reach and
// at hostile servers, on a Keycloak of its own (proxy and truststore are
// server options): each grant is refused, answers within hangBound while
// the hostile server would hold it for slowFor, and Bob's Incoming is
// unchanged; one honest push through discovery shows the path works.
func TestDiscoveryAttacks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Keycloak of its own")
	}
	h := &hostile{handlers: map[string]http.HandlerFunc{}, stall: map[string]bool{}, done: make(chan struct{})}
	t.Cleanup(func() { close(h.done) })
	proxy, caFile := startProxy(t, h)

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	kc, err := launcher.Start(ctx, launcher.Options{
		Mode: launcher.ModeProcess,
		Env: map[string]string{
			// No backslashes: the configuration layer would eat them.
			"KC_SPI_CONNECTIONS_HTTP_CLIENT__DEFAULT__PROXY_MAPPINGS": strings.ReplaceAll(discoNet, ".", "[.]") + "[0-9]+;http://" + proxy,
			"KC_TRUSTSTORE_PATHS": caFile,
		},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := kc.Stop(context.Background()); err != nil {
			t.Errorf("stopping Keycloak: %v", err)
		}
	})
	s := newSuiteWith(t, kc, func(conf map[string]any) {
		conf["claimsProviders"] = "[]"
		conf["discoveryEnabled"] = "true"
		conf["allowInsecureUrls"] = "false"
		conf["httpTimeoutMillis"] = fmt.Sprint(discoTimeout)
		conf["jwksMinRefreshSeconds"] = "0"
	})
	dp := testclaimsprovider.New(t) // the keys every discovered provider below signs with
	jwks := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwksOf(dp))
	}
	h.handle(discoNet+"10", jwks)
	doc := func(ip string, edit func(d map[string]any)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != uma.DiscoveryPath {
				http.NotFound(w, r)
				return
			}
			d := map[string]any{"issuer": "https://" + ip, "claims_endpoint": "https://" + ip + "/claims/token",
				"jwks_uri": "https://" + discoNet + "10/jwks", "domains": []string{ip}, "signing_alg_values_supported": []string{"ES256"}}
			if edit != nil {
				edit(d)
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(d)
		}
	}
	// token is a claims token of the provider discovered at domain, for a
	// fresh ticket.
	token := func(t *testing.T, domain string) (string, string) {
		ticket := s.Ticket(t, "bob")
		c := s.claims("https://"+domain, "alice@"+domain, ticket)
		return ticket, s.pushedBound(dp.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), c))
	}
	// refused expects the policy's denial for domain within hangBound.
	refused := func(t *testing.T, domain, reason string) {
		t.Helper()
		ticket, ct := token(t, domain)
		start := time.Now()
		s.unchanged(t, func() { s.expectDenied(t, reason, e2etest.GrantForm(ticket, ct)) })
		if took := time.Since(start); took > hangBound {
			t.Errorf("the refusal took %s (bound %s)", took.Round(time.Millisecond), hangBound)
		}
	}

	t.Run("honest push through discovery", func(t *testing.T) {
		domain := discoNet + "1"
		h.handle(domain, doc(domain, nil))
		c := newContent("found through discovery")
		ticket := s.Ticket(t, "bob")
		claims := s.claims("https://"+domain, "alice@"+domain, ticket)
		rpt, te := s.Grant(t, "", e2etest.GrantForm(ticket, s.PushedFor("bob", dp.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), claims), c.meta())))
		if te != nil {
			t.Fatalf("grant through discovery: %v (%d CONNECTs at the proxy)", te, h.connects.Load())
		}
		if m := created(t, s.post(t, "bob", rpt, c)); m.SenderEmail != "alice@"+domain || m.SenderIss != "https://"+domain {
			t.Errorf("stored %+v", m)
		}
	})

	t.Run("addresses discovery must not reach", func(t *testing.T) {
		for _, domain := range []string{
			"localhost", "127.0.0.1", "127.1", "2130706433", "0.0.0.0",
			"10.0.0.1", "172.16.5.4", "192.168.1.1", // private
			"169.254.169.254", "169.254.10.10", // cloud metadata, link-local
			"100.64.1.1",                               // CGNAT
			"192.0.2.1", "198.51.100.7", "203.0.113.9", // documentation
			"224.0.0.1", "255.255.255.255", // multicast, broadcast
		} {
			t.Run(domain, func(t *testing.T) {
				mark := kctest.MarkLog(s.kcLog)
				refused(t, domain, "discovery_failed")
				// The guard refused before any connection: the failure is its
				// IOException (or the name's UnknownHostException), never a
				// connection error.
				lines := mark.Lines("discovery failed for domain " + domain + ":")
				if len(lines) != 1 || !(strings.HasSuffix(lines[0], ": IOException") || strings.HasSuffix(lines[0], ": UnknownHostException")) {
					t.Errorf("Keycloak's log: %q, want the URL guard's refusal", lines)
				}
			})
		}
	})

	t.Run("discovery documents naming what must not be fetched", func(t *testing.T) {
		for _, tc := range []struct {
			octet  int
			edit   func(d map[string]any)
			reason string
		}{
			{2, func(d map[string]any) { d["jwks_uri"] = "http://" + discoNet + "10/jwks" }, "discovery_failed"},
			{3, func(d map[string]any) { d["issuer"] = "http://" + discoNet + "3" }, "discovery_failed"},
			{4, func(d map[string]any) { d["jwks_uri"] = "https://127.0.0.1/jwks" }, "jwks_unavailable"},
			{5, func(d map[string]any) { d["jwks_uri"] = "https://169.254.169.254/latest/meta-data/" }, "jwks_unavailable"},
			{6, func(d map[string]any) { d["jwks_uri"] = "https://10.0.0.1/jwks" }, "jwks_unavailable"},
			{7, func(d map[string]any) { d["jwks_uri"] = "https://user:pw@" + discoNet + "10/jwks" }, "discovery_failed"},
			{8, func(d map[string]any) { d["issuer"] = "https://" + discoNet + "99" }, "untrusted_issuer"},
			{9, func(d map[string]any) { d["domains"] = []string{"foo.example"} }, "email_domain_not_trusted"},
			{11, func(d map[string]any) { d["domains"] = "192.88.99.11" }, "discovery_failed"},
		} {
			domain := fmt.Sprintf("%s%d", discoNet, tc.octet)
			h.handle(domain, doc(domain, tc.edit))
			t.Run(domain, func(t *testing.T) { refused(t, domain, tc.reason) })
		}
	})

	t.Run("hostile servers: redirect, error, slow, oversized, deep, wrong certificate, no handshake", func(t *testing.T) {
		stop := h.done
		trickleHeaders := func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
			_ = buf.Flush()
			deadline := time.Now().Add(slowFor)
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				case <-time.After(discoTimeout / 2 * time.Millisecond):
				}
				if _, err := buf.WriteString("X-Slow: a\r\n"); err != nil || buf.Flush() != nil {
					return
				}
			}
		}
		trickleBody := func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			deadline := time.Now().Add(slowFor)
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				case <-time.After(discoTimeout / 2 * time.Millisecond):
				}
				if _, err := w.Write([]byte(" ")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
		endless := func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			chunk := []byte(strings.Repeat(" ", 16<<10))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
		for _, tc := range []struct {
			octet   int
			handler http.HandlerFunc
			reason  string
		}{
			{12, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://"+discoNet+"1"+uma.DiscoveryPath, http.StatusFound)
			}, "discovery_failed"},
			{13, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) }, "discovery_failed"},
			{14, trickleHeaders, "discovery_failed"},
			{15, trickleBody, "discovery_failed"},
			{16, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "104857600")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte("{"))
			}, "discovery_failed"},
			{17, endless, "discovery_failed"},
			{18, func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"issuer":"https://` + discoNet + `18","x":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`))
			}, "discovery_failed"},
			{21, doc(discoNet+"21", nil), "discovery_failed"},
		} {
			domain := fmt.Sprintf("%s%d", discoNet, tc.octet)
			h.handle(domain, tc.handler)
			t.Run(domain, func(t *testing.T) { refused(t, domain, tc.reason) })
		}
		h.mu.Lock()
		h.stall[discoNet+"22"] = true
		h.mu.Unlock()
		t.Run(discoNet+"22 accepts, never shakes hands", func(t *testing.T) { refused(t, discoNet+"22", "discovery_failed") })
	})

	t.Run("hostile JWKS: slow, oversized", func(t *testing.T) {
		for i, jwksHandler := range []http.HandlerFunc{
			func(w http.ResponseWriter, r *http.Request) { // headers that never end
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					return
				}
				defer conn.Close()
				_, _ = buf.WriteString("HTTP/1.1 200 OK\r\n")
				_ = buf.Flush()
				for end := time.Now().Add(slowFor); time.Now().Before(end); {
					select {
					case <-h.done:
						return
					case <-time.After(discoTimeout / 2 * time.Millisecond):
					}
					if _, err := buf.WriteString("X-Slow: a\r\n"); err != nil || buf.Flush() != nil {
						return
					}
				}
			},
			func(w http.ResponseWriter, r *http.Request) { // a key set over the size limit
				_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(`{"kty":"oct","k":"`+strings.Repeat("A", 1000)+`"},`, 100) + `{}]}`))
			},
		} {
			domain, keys := fmt.Sprintf("%s%d", discoNet, 30+2*i), fmt.Sprintf("%s%d", discoNet, 31+2*i)
			h.handle(keys, jwksHandler)
			h.handle(domain, doc(domain, func(d map[string]any) { d["jwks_uri"] = "https://" + keys + "/jwks" }))
			t.Run(domain, func(t *testing.T) { refused(t, domain, "jwks_unavailable") })
		}
	})

	t.Run("slow servers hold no request thread: concurrent grants all answer, an honest one too", func(t *testing.T) {
		type result struct {
			name string
			took time.Duration
			ok   bool
		}
		results := make(chan result, 8)
		var wg sync.WaitGroup
		before := ids(s.BobMessages(t))
		for i := 0; i < 6; i++ {
			domain := fmt.Sprintf("%s%d", discoNet, 40+i)
			h.handle(domain, func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					return
				}
				defer conn.Close()
				_, _ = buf.WriteString("HTTP/1.1 200 OK\r\n")
				_ = buf.Flush()
				for end := time.Now().Add(slowFor); time.Now().Before(end); {
					select {
					case <-h.done:
						return
					case <-time.After(discoTimeout / 2 * time.Millisecond):
					}
					if _, err := buf.WriteString("X-Slow: a\r\n"); err != nil || buf.Flush() != nil {
						return
					}
				}
			})
			ticket, ct := token(t, domain)
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				_, err := kctest.PostToken(ctx, s.asURI, "rqp-client", e2etest.RQPSecret, e2etest.GrantForm(ticket, ct))
				var te *keycloak.Error
				results <- result{domain, time.Since(start), errors.As(err, &te) && te.StatusCode == http.StatusForbidden}
			}()
		}
		time.Sleep(500 * time.Millisecond)
		honest := discoNet + "1" // discovered and cached above
		ticket, ct := token(t, honest)
		start := time.Now()
		_, te := s.Grant(t, "", e2etest.GrantForm(ticket, ct))
		results <- result{"honest " + honest, time.Since(start), te == nil}
		wg.Wait()
		close(results)
		for r := range results {
			if !r.ok || r.took > hangBound {
				t.Errorf("%s: answered as expected %v after %s (bound %s)", r.name, r.ok, r.took.Round(time.Millisecond), hangBound)
			}
		}
		if after := ids(s.BobMessages(t)); len(after) != len(before) {
			t.Errorf("Bob's Incoming changed")
		}
	})
}

func jwksOf(p *testclaimsprovider.Provider) []byte {
	data, _ := json.Marshal(map[string]any{"keys": []any{testclaimsprovider.ECJWK(&p.EC.PublicKey, testclaimsprovider.ECKID)}})
	return data
}
