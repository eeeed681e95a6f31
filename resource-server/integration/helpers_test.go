package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/grantmac"
	"github.com/umawide/umawide/internal/jwtverify"
	"github.com/umawide/umawide/internal/kctest"
	kcprotection "github.com/umawide/umawide/internal/keycloak/protection"
	"github.com/umawide/umawide/internal/testhttp"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
	"github.com/umawide/umawide/resource-server/internal/protection"
	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/rpt/rpttest"
	"github.com/umawide/umawide/resource-server/internal/server"
	"github.com/umawide/umawide/resource-server/internal/store"
)

const (
	rsSecret      = "resource-server-secret"
	rqpSecret     = "rqp-client-secret"
	bobPassword   = "bob-password"
	testMaxBody   = 64 << 10
	userPasswords = "pw-"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// realmEnv is one private copy of realm bar.
type realmEnv struct {
	kc     *launcher.Keycloak
	realm  string
	issuer string
}

func newRealm(t *testing.T) *realmEnv {
	kc := kctest.Keycloak(t)
	realm := kctest.ImportStockBar(t, kc)
	return &realmEnv{kc: kc, realm: realm, issuer: kc.IssuerURL(realm)}
}

// createUser adds an enabled user with a verified email and password
// "pw-<username>".
func (r *realmEnv) createUser(t *testing.T, username string) {
	t.Helper()
	err := r.kc.Admin(ctxT(t), http.MethodPost, "/"+r.realm+"/users", map[string]any{
		"username": username, "enabled": true, "email": username + "@bar.example", "emailVerified": true,
		"firstName": "Test", "lastName": "User",
		"credentials": []map[string]any{{"type": "password", "value": userPasswords + username, "temporary": false}},
	}, nil)
	if err != nil {
		t.Fatalf("create user %s: %v", username, err)
	}
}

// login runs Keycloak's login for incoming-app and returns the access token.
func (r *realmEnv) login(t *testing.T, username, password string) string {
	t.Helper()
	port, err := launcher.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := kctest.LoginForTokens(ctxT(t), kctest.CodeFlow{
		Issuer: r.issuer, ClientID: "incoming-app",
		RedirectURI: fmt.Sprintf("http://127.0.0.1:%d/", port), Scope: "openid",
	}, username, password)
	if err != nil {
		t.Fatalf("login %s: %v", username, err)
	}
	return tok.AccessToken
}

// rpt is seed step 7 with the stock policy: the uma-ticket grant of
// rqp-client with pushed claims.
func (r *realmEnv) rpt(t *testing.T, ticket string, claims uma.PushedClaims) string {
	t.Helper()
	tok, err := r.grant(t, ticket, claims)
	if err != nil {
		t.Fatalf("uma-ticket grant: %v", err)
	}
	return tok
}

// grant is the uma-ticket grant of rqp-client under the stock client policy
// of the realm copy, which copies pushed claims into the RPT's permission:
// it stands in for what the claims-token policy writes (sender_email,
// sender_iss, sender_sub, a fresh grant_id, and incoming_uri, by default the
// ticket's own, as an honest client pushes the URL it posts to). A claim
// given in claims wins; one given with no values is not pushed.
func (r *realmEnv) grant(t *testing.T, ticket string, claims uma.PushedClaims) (string, error) {
	t.Helper()
	push := uma.PushedClaims{
		uma.ClaimSenderEmail: {"alice@foo.example"},
		uma.ClaimSenderIss:   {"http://127.0.0.1:8081"},
		uma.ClaimSenderSub:   {"a11ce"},
		uma.ClaimGrantID:     {rpttest.NewGrantID()},
	}
	if uri := ticketIncomingURI(t, ticket); uri != "" {
		push.Set(uma.ClaimIncomingURI, uri)
	}
	for k, v := range claims {
		if len(v) == 0 {
			delete(push, k)
		} else {
			push[k] = v
		}
	}
	// grant_mac as the claims-token policy would write it, unless the test
	// gave one (or none: a key with no values).
	if _, given := claims[grantmac.Claim]; !given {
		push = grantmac.Attest([]byte(rsSecret), ticketResourceID(t, ticket), push)
	}
	ct, err := push.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := kctest.PostToken(ctxT(t), r.issuer, "rqp-client", rqpSecret, url.Values{
		uma.FormGrantType:        {uma.GrantTypeUMATicket},
		uma.FormTicket:           {ticket},
		uma.FormSubmitRequest:    {"false"},
		uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT},
		uma.FormClaimToken:       {ct},
	})
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// ticketIncomingURI is the incoming_uri the Resource Server put on the
// ticket: Keycloak signs it into the ticket's JWS payload as
// "claims": {"incoming_uri": ["..."]}.
func ticketIncomingURI(t *testing.T, ticket string) string {
	t.Helper()
	c, err := kctest.Claims(ticket)
	if err != nil {
		t.Fatalf("ticket payload: %v", err)
	}
	cl, _ := c["claims"].(map[string]any)
	vals, _ := cl[uma.ClaimIncomingURI].([]any)
	if len(vals) != 1 {
		return ""
	}
	s, _ := vals[0].(string)
	return s
}

// ticketResourceID is the resource id a ticket's one permission names.
func ticketResourceID(t *testing.T, ticket string) string {
	t.Helper()
	c, err := kctest.Claims(ticket)
	if err != nil {
		t.Fatalf("ticket payload: %v", err)
	}
	perms, _ := c["permissions"].([]any)
	if len(perms) != 1 {
		t.Fatalf("ticket with %d permissions", len(perms))
	}
	rsid, _ := perms[0].(map[string]any)["rsid"].(string)
	return rsid
}

func boundClaims(body []byte) uma.PushedClaims {
	return uma.PushedClaims{
		uma.ClaimContentSHA256: {hexSum(body)},
		uma.ClaimContentLength: {fmt.Sprint(len(body))},
	}
}

// protectionAPI is the resource server's protection API (its own PAT), for
// the tests' own look at Keycloak.
func (r *realmEnv) protectionAPI() *kcprotection.Client {
	return kctest.ProtectionAPI(r.issuer, "resource-server", rsSecret)
}

// resourcesNamed lists the protection API's resources with this exact name.
func (r *realmEnv) resourcesNamed(t *testing.T, name string) []string {
	t.Helper()
	found, err := r.protectionAPI().Resources(ctxT(t), name, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, res := range found {
		ids = append(ids, res.ID)
	}
	return ids
}

// rs is a Resource Server wired as main wires it, served in process.
type rs struct {
	url   string
	store store.Store
	prot  *protection.Client
}

// ownerID is owner's user id as the Resource Server resolves it.
func (s *rs) ownerID(t *testing.T, owner string) string {
	t.Helper()
	o, err := s.prot.Owner(ctxT(t), owner)
	if err != nil {
		t.Fatalf("owner %s: %v", owner, err)
	}
	return o.UserID
}

type rsOptions struct {
	keycloakURL string        // default the test Keycloak
	clockSkew   time.Duration // added to the verifier's clock
	st          store.Store   // default a fresh SQLite store
	publicURL   string        // default the URL it is served at
	domain      string        // the organisation's domain (WebFinger); default none
}

func (r *realmEnv) startRS(t *testing.T, o rsOptions) *rs {
	t.Helper()
	if o.keycloakURL == "" {
		o.keycloakURL = r.kc.BaseURL
	}
	if o.st == nil {
		st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "rs.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		o.st = st
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	hc := &http.Client{Timeout: 10 * time.Second}
	keys := jwtverify.NewRemoteKeySet(o.keycloakURL+"/realms/"+r.realm+"/protocol/openid-connect/certs", jwtverify.KeySetOptions{HTTPClient: hc})
	v, err := rpt.New(rpt.Config{Issuer: r.issuer, Audience: "resource-server", Keys: keys, GrantMACKey: []byte(rsSecret),
		Now: func() time.Time { return time.Now().Add(o.clockSkew) }})
	if err != nil {
		t.Fatal(err)
	}
	prot, err := protection.New(protection.Config{KeycloakURL: o.keycloakURL, Realm: r.realm, ClientID: "resource-server",
		ClientSecret: rsSecret, HTTPClient: hc, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	if o.publicURL == "" {
		o.publicURL = "http://" + srv.Listener.Addr().String()
	}
	s, err := server.New(server.Config{
		Realm: r.realm, Domain: o.domain, ASURI: r.issuer, PublicURL: o.publicURL, MaxBody: testMaxBody, ReaderClients: []string{"incoming-app"},
		IsUnknownOwner: func(err error) bool { return errors.Is(err, protection.ErrUnknownOwner) },
		Store:          o.st, Protection: prot, Verifier: v, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = s
	srv.Start()
	t.Cleanup(srv.Close)
	return &rs{url: srv.URL, store: o.st, prot: prot}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errorCode() string {
	var e uma.Error
	_ = json.Unmarshal(r.body, &e)
	return e.Code
}

func call(t *testing.T, method, u, token string, body []byte, hdr map[string]string) response {
	t.Helper()
	h := http.Header{}
	for k, v := range hdr {
		h.Set(k, v)
	}
	a := testhttp.Send(t, ctxT(t), method, u, token, body, h)
	return response{a.Status, a.Header, a.Body}
}

// challenge posts without a token and returns the parsed 401 challenge.
func challenge(t *testing.T, base, owner string) uma.Challenge {
	t.Helper()
	r := call(t, http.MethodPost, base+"/incoming/"+owner, "", []byte("x"), nil)
	if r.status != http.StatusUnauthorized {
		t.Fatalf("POST without token: %d %s", r.status, r.body)
	}
	ch, err := uma.ParseChallenge(r.header)
	if err != nil {
		t.Fatalf("WWW-Authenticate %q: %v", r.header.Get("WWW-Authenticate"), err)
	}
	return ch
}

func must(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}
