// Package testclaimsprovider is a Claims Provider for tests: its own keys (P-256, RSA
// 2048, Ed25519), a JWKS and a discovery document served by an httptest
// server, and signing of arbitrary JWS headers and claims with any of its
// keys, with HMAC or with no signature at all. The extension's integration
// tests sign well-formed claims tokens with it; the attack suite also forges
// the ill-formed ones a real Claims Provider never issues.
package testclaimsprovider

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/umawide/umawide/internal/uma"
)

// Key ids of the provider's keys in its JWKS.
const (
	ECKID    = "test-es256"
	RSAKID   = "test-rs256"
	EdDSAKID = "test-eddsa"
)

// Provider is a test Claims Provider.
type Provider struct {
	Server *httptest.Server
	// Issuer is the server's URL (the iss of its tokens).
	Issuer string
	EC     *ecdsa.PrivateKey
	RSA    *rsa.PrivateKey
	Ed     ed25519.PrivateKey
	// JWKSFetches counts GET /jwks; DiscoveryFetches the discovery document.
	JWKSFetches, DiscoveryFetches atomic.Int64

	mu        sync.Mutex
	jwks      []map[string]any
	discovery map[string]any
}

// New starts a provider on 127.0.0.1 that publishes its three keys; the
// server stops when t ends.
func New(t testing.TB) *Provider {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{EC: ec, RSA: rk, Ed: ed}
	p.jwks = []map[string]any{
		ECJWK(&ec.PublicKey, ECKID),
		RSAJWK(&rk.PublicKey, RSAKID),
		EdJWK(ed.Public().(ed25519.PublicKey), EdDSAKID),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		p.JWKSFetches.Add(1)
		p.mu.Lock()
		body, _ := json.Marshal(map[string]any{"keys": p.jwks})
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET "+uma.DiscoveryPath, func(w http.ResponseWriter, r *http.Request) {
		p.DiscoveryFetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.DiscoveryDocument())
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Server.Close)
	p.Issuer = p.Server.URL
	return p
}

// JWKSURI is where the provider serves its keys.
func (p *Provider) JWKSURI() string { return p.Server.URL + "/jwks" }

// SetJWKS replaces the published keys (rotation, revocation, key-type games).
func (p *Provider) SetJWKS(keys ...map[string]any) {
	p.mu.Lock()
	p.jwks = keys
	p.mu.Unlock()
}

// SetDiscovery replaces the discovery document; nil restores the default.
func (p *Provider) SetDiscovery(doc map[string]any) {
	p.mu.Lock()
	p.discovery = doc
	p.mu.Unlock()
}

// DiscoveryDocument is what the provider serves at uma.DiscoveryPath: by
// default its issuer, JWKS and domain foo.example.
func (p *Provider) DiscoveryDocument() []byte {
	p.mu.Lock()
	doc := p.discovery
	p.mu.Unlock()
	if doc == nil {
		doc = map[string]any{
			"issuer": p.Issuer, "claims_endpoint": p.Issuer + "/claims/token", "jwks_uri": p.JWKSURI(),
			"domains": []string{"foo.example"}, "signing_alg_values_supported": []string{"ES256", "RS256", "EdDSA"},
		}
	}
	body, _ := json.Marshal(doc)
	return body
}

// ECJWK is the public JWK of a P-256 key (alg ES256, use sig).
func ECJWK(k *ecdsa.PublicKey, kid string) map[string]any {
	return map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
		"x": B64(Pad(k.X.Bytes(), 32)), "y": B64(Pad(k.Y.Bytes(), 32))}
}

// RSAJWK is the public JWK of an RSA key (no alg, use sig).
func RSAJWK(k *rsa.PublicKey, kid string) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "n": B64(k.N.Bytes()), "e": B64(big.NewInt(int64(k.E)).Bytes())}
}

// EdJWK is the public JWK of an Ed25519 key.
func EdJWK(k ed25519.PublicKey, kid string) map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA", "x": B64(k)}
}

// RSAPublicPEM is what an algorithm-confusion attacker uses as HMAC secret.
func (p *Provider) RSAPublicPEM() []byte { return PublicPEM(&p.RSA.PublicKey) }

// PublicPEM is the PKIX PEM of a public key.
func PublicPEM(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// B64 is BASE64URL without padding.
func B64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Pad left-pads b with zeros to n bytes.
func Pad(b []byte, n int) []byte {
	if len(b) >= n {
		return b
	}
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out
}

// Part is the BASE64URL of v's JSON: one part of a compact JWS.
func Part(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return B64(data)
}

// Header is a JWS header with alg, kid and typ JWT.
func Header(alg, kid string) map[string]any {
	return map[string]any{"alg": alg, "kid": kid, "typ": "JWT"}
}

// SignES256 signs with the provider's P-256 key (JWS R || S form).
func (p *Provider) SignES256(header, claims map[string]any) string {
	return SignES256(p.EC, header, claims)
}

// SignRS256 signs with the provider's RSA key (PKCS #1 v1.5).
func (p *Provider) SignRS256(header, claims map[string]any) string {
	return SignRS256(p.RSA, header, claims)
}

// SignPS256 signs with the provider's RSA key (PSS).
func (p *Provider) SignPS256(header, claims map[string]any) string {
	return SignPS256(p.RSA, header, claims)
}

// SignEdDSA signs with the provider's Ed25519 key.
func (p *Provider) SignEdDSA(header, claims map[string]any) string {
	return SignEdDSA(p.Ed, header, claims)
}

// SignES256 signs header.claims with a P-256 key, whatever the header says.
func SignES256(k *ecdsa.PrivateKey, header, claims map[string]any) string {
	return SignInputES256(k, Part(header)+"."+Part(claims))
}

// SignInputES256 signs a JWS signing input as given (header.payload, e.g. a
// payload that no JSON encoder would produce) with a P-256 key.
func SignInputES256(k *ecdsa.PrivateKey, input string) string {
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
	if err != nil {
		panic(err)
	}
	return input + "." + B64(append(Pad(r.Bytes(), 32), Pad(s.Bytes(), 32)...))
}

// SignRS256 signs header.claims with RSASSA-PKCS1-v1_5 SHA-256.
func SignRS256(k *rsa.PrivateKey, header, claims map[string]any) string {
	input := Part(header) + "." + Part(claims)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return input + "." + B64(sig)
}

// SignPS256 signs header.claims with RSASSA-PSS SHA-256.
func SignPS256(k *rsa.PrivateKey, header, claims map[string]any) string {
	input := Part(header) + "." + Part(claims)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		panic(err)
	}
	return input + "." + B64(sig)
}

// SignEdDSA signs header.claims with Ed25519.
func SignEdDSA(k ed25519.PrivateKey, header, claims map[string]any) string {
	input := Part(header) + "." + Part(claims)
	return input + "." + B64(ed25519.Sign(k, []byte(input)))
}

// SignHS256 signs header.claims with HMAC-SHA256 and secret.
func SignHS256(header, claims map[string]any, secret []byte) string {
	input := Part(header) + "." + Part(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + B64(m.Sum(nil))
}

// Unsigned is header.claims with an empty signature (alg none).
func Unsigned(header, claims map[string]any) string {
	return Part(header) + "." + Part(claims) + "."
}
