package attacks

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/testclaimsprovider"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

func TestMain(m *testing.M) { kctest.Main(m) }

const (
	// partnerDomain is the one domain the partner Claims Provider is trusted for.
	partnerDomain = "partner.example"
	// shortClient is a copy of rqp-client whose RPTs live shortLife seconds.
	shortClient = "rqp-short"
	shortLife   = 5
)

// suite is the attacked ecosystem: the world of internal/e2etest (Keycloak,
// the real Claims Provider for foo.example and evil.example, the Resource
// Server of a realm copy trusting it for foo.example), plus
//   - partner: a test Claims Provider the realm trusts for partner.example only;
//   - attacker: a test Claims Provider nobody trusts (its own keys and issuer);
//   - carol: a second owner in the realm copy;
//   - rqp-short: a registration whose RPTs expire within seconds.
type suite struct {
	*e2etest.World
	partner, attacker *testclaimsprovider.Provider
	asURI             string // the realm copy's issuer: as_uri and claims token aud
	kcLog             string // Keycloak's log, "" where unreadable

	mu        sync.Mutex
	alice     string
	aliceExp  time.Time
	carolPass string
}

func newSuite(t *testing.T) *suite { return newSuiteWith(t, nil, nil) }

// newSuiteWith builds the suite on kc (default: the package's Keycloak);
// policy, when set, replaces the claims-token policy's config of the realm
// copy (which otherwise also trusts the partner for partner.example).
func newSuiteWith(t *testing.T, kc *launcher.Keycloak, policy func(conf map[string]any)) *suite {
	partner, attacker := testclaimsprovider.New(t), testclaimsprovider.New(t)
	s := &suite{partner: partner, attacker: attacker, carolPass: "carol-" + e2etest.RandomHex(6)}
	s.World = e2etest.New(t, e2etest.Options{KC: kc, RealmPrefix: "bar-atk-", MutateRealm: func(rep map[string]any) {
		conf := launcher.Policy(rep, "claims-token")["config"].(map[string]any)
		if policy != nil {
			policy(conf)
		} else {
			var providers []map[string]any
			if err := json.Unmarshal([]byte(conf["claimsProviders"].(string)), &providers); err != nil {
				t.Fatal(err)
			}
			providers = append(providers, map[string]any{"issuer": partner.Issuer, "jwks_uri": partner.JWKSURI(), "domains": []string{partnerDomain}})
			data, _ := json.Marshal(providers)
			conf["claimsProviders"] = string(data)
		}

		users, _ := rep["users"].([]any)
		rep["users"] = append(users, map[string]any{
			"username": "carol", "enabled": true, "email": "carol@bar.example", "emailVerified": true,
			"firstName": "Carol", "lastName": "Example", // else Keycloak's login asks her to complete her profile
			"credentials": []any{map[string]any{"type": "password", "value": s.carolPass, "temporary": false}},
		})
		short := maps.Clone(launcher.Client(rep, "rqp-client"))
		short["clientId"] = shortClient
		short["attributes"] = map[string]any{"access.token.lifespan": fmt.Sprint(shortLife)}
		rep["clients"] = append(rep["clients"].([]any), short)
	}})
	s.asURI = s.KC.IssuerURL(s.Realm)
	s.kcLog = kctest.KeycloakLog(s.KC)
	if s.kcLog == "" {
		t.Log("Keycloak's log is not readable here (set KEYCLOAK_LOG next to KEYCLOAK_URL): denial reasons are not checked")
	}
	return s
}

// --- Bob's Incoming ---

func ids(ms []e2etest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// unchanged runs attack and fails t if Bob's Incoming differs afterwards.
func (s *suite) unchanged(t *testing.T, attack func()) {
	t.Helper()
	before := ids(s.BobMessages(t))
	attack()
	if after := ids(s.BobMessages(t)); !slices.Equal(before, after) {
		t.Errorf("Bob's Incoming changed: %d messages before, %d after", len(before), len(after))
	}
}

// answer is an HTTP answer with its JSON error.
type answer = e2etest.Answer

// expectChallenge asserts a 401 UMA challenge with a fresh ticket and the
// given RFC 6750 error ("" for none).
func expectChallenge(t *testing.T, a answer, code string) {
	t.Helper()
	if a.Status != http.StatusUnauthorized {
		t.Fatalf("got %s, want 401 %s", a, code)
	}
	if _, err := uma.ParseChallenge(a.Header); err != nil {
		t.Errorf("401 without a parseable UMA challenge: %v (%q)", err, a.Header.Values("WWW-Authenticate"))
	}
	h := strings.Join(a.Header.Values("WWW-Authenticate"), " ")
	if code != "" && !strings.Contains(h, `error="`+code+`"`) {
		t.Errorf("WWW-Authenticate %q lacks error=%q", h, code)
	}
	want := code
	if want == "" {
		want = "unauthorized"
	}
	if a.Err.Code != want {
		t.Errorf("error %q, want %q (%s)", a.Err.Code, want, a)
	}
}

// expectError asserts an HTTP status and JSON error code.
func expectError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.Status != status || a.Err.Code != code {
		t.Fatalf("got %s, want %d %s", a, status, code)
	}
}

// --- steps 3-4: access tokens at realm foo ---

// aliceClientToken is rqp-client's own client-credentials token at foo with
// the Claims Provider in aud (the "Alice not involved" variant), cached.
func (s *suite) aliceClientToken(t *testing.T) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.alice == "" || time.Until(s.aliceExp) < time.Minute {
		tok, err := kctest.ClientCredentials(e2etest.Timeout(t, time.Minute), s.KC.IssuerURL("foo"), "rqp-client", e2etest.RQPSecret, uma.ClaimsProviderScope)
		if err != nil {
			t.Fatal(err)
		}
		s.alice, s.aliceExp = tok.AccessToken, time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second)
	}
	return s.alice
}

// aliceLogin is Alice's own login at foo (code + PKCE through Keycloak's
// form) with the given scope.
func (s *suite) aliceLogin(t *testing.T, scope string) *kctest.TokenResponse {
	t.Helper()
	tok, err := kctest.LoginForTokens(e2etest.Timeout(t, time.Minute), kctest.CodeFlow{
		Issuer: s.KC.IssuerURL("foo"), ClientID: "rqp-client", ClientSecret: e2etest.RQPSecret,
		RedirectURI: "http://127.0.0.1:43211/callback", Scope: scope,
	}, "alice", e2etest.AlicePassword)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// --- step 5: the real Claims Provider ---

// claimsToken is a real claims token for email (asked for with
// rqp-client's cached token), bound to ticket, for audience (default this AS).
func (s *suite) claimsToken(t *testing.T, ticket, email, audience string) string {
	t.Helper()
	return s.ClaimsToken(t, s.aliceClientToken(t), ticket, email, audience)
}

// expectDenied asserts the claims-token policy's denial: 403 access_denied
// not_authorized, no token, and (where Keycloak's log is readable) exactly
// one denial line with reason for this realm.
func (s *suite) expectDenied(t *testing.T, reason string, form url.Values) {
	t.Helper()
	mark := kctest.MarkLog(s.kcLog)
	rpt, te := s.Grant(t, "", form)
	if te == nil {
		t.Fatalf("got an RPT (%d characters), want 403 access_denied (%s)", len(rpt), reason)
	}
	if te.StatusCode != http.StatusForbidden || !strings.Contains(te.Body, `"access_denied"`) || !strings.Contains(te.Body, "not_authorized") {
		t.Fatalf("grant answered %d %s, want 403 access_denied not_authorized (%s)", te.StatusCode, te.Body, reason)
	}
	s.expectReason(t, mark, reason)
}

// expectShapeRefused checks that an uma-ticket grant whose form is not that
// of step 7 (exactly one ticket; no audience, permission, scope or rpt) is
// refused by the extension's uma-ticket grant type before Keycloak
// evaluates anything: 400 invalid_request, and no denial of the policy.
func (s *suite) expectShapeRefused(t *testing.T, form url.Values) {
	t.Helper()
	mark := kctest.MarkLog(s.kcLog)
	rpt, te := s.Grant(t, "", form)
	if te == nil {
		t.Fatalf("got an RPT (%d characters), want 400 invalid_request", len(rpt))
	}
	if te.StatusCode != http.StatusBadRequest || !strings.Contains(te.Body, `"invalid_request"`) || !strings.Contains(te.Body, "exactly one ticket") {
		t.Fatalf("grant answered %d %s, want 400 invalid_request naming the form of step 7", te.StatusCode, te.Body)
	}
	// The refusal comes before any evaluation, within the request: a denial
	// would have been logged before the answer.
	if lines := mark.Lines(kctest.DenialNeedles("", s.Realm)...); len(lines) != 0 {
		t.Fatalf("the policy ran for a refused form: %q", lines)
	}
}

// expectReason checks, where Keycloak's log is readable, that the policy
// logged exactly one denial with reason for this realm since mark.
func (s *suite) expectReason(t *testing.T, mark kctest.LogMark, reason string) {
	t.Helper()
	mark.ExpectDenial(t, 10*time.Second, reason, s.Realm)
}

// --- steps 9-10 ---

// content is a message and its metadata as the client pushes it.
type content struct {
	body     []byte
	typ      string
	fileName string
}

func newContent(text string) content {
	return content{body: []byte(text), typ: "text/plain; charset=utf-8", fileName: "note.txt"}
}

func (c content) sha256() string {
	sum := sha256.Sum256(c.body)
	return hex.EncodeToString(sum[:])
}

// meta is the content metadata pushed with the claims token.
func (c content) meta() map[string]string {
	return map[string]string{
		uma.ClaimContentSHA256: c.sha256(),
		uma.ClaimContentLength: fmt.Sprint(len(c.body)),
		uma.ClaimContentType:   c.typ,
		uma.ClaimFileName:      c.fileName,
	}
}

func (c content) header() http.Header {
	h := http.Header{"Content-Type": {c.typ}}
	if c.fileName != "" {
		h.Set("Content-Disposition", `attachment; filename="`+c.fileName+`"`)
	}
	return h
}

// rptFor runs steps 1-8 honestly for owner, content c and the sender email
// (client credentials) and returns the RPT and the ticket.
func (s *suite) rptFor(t *testing.T, owner string, c content, email string) (rpt, ticket string) {
	t.Helper()
	ticket = s.Ticket(t, owner)
	rpt, te := s.Grant(t, "", e2etest.GrantForm(ticket, s.PushedFor(owner, s.claimsToken(t, ticket, email, ""), c.meta())))
	if te != nil {
		t.Fatalf("honest grant refused: %v", te)
	}
	return rpt, ticket
}

// pushedBound is a claim_token for Bob's Incoming carrying claimsToken, a
// well-formed content binding and the Incoming URL: the policy checks those
// first, so its verdict on such a push is about the claims token itself.
func (s *suite) pushedBound(claimsToken string) string {
	return s.PushedFor("bob", claimsToken, newContent("bound").meta())
}

// post is step 9: the content with an RPT.
func (s *suite) post(t *testing.T, owner, rpt string, c content) answer {
	t.Helper()
	return s.RSDo(t, http.MethodPost, "/incoming/"+owner, rpt, c.body, c.header())
}

// created asserts a 201 and returns the stored message.
func created(t *testing.T, a answer) e2etest.Message {
	t.Helper()
	var m e2etest.Message
	if a.Status != http.StatusCreated || json.Unmarshal(a.Body, &m) != nil || m.ID == "" {
		t.Fatalf("got %s, want 201", a)
	}
	return m
}

// permissionClaims decodes (without verifying) the claims of the RPT's one
// permission.
func permissionClaims(t *testing.T, rpt string) map[string][]string {
	t.Helper()
	parts := strings.Split(rpt, ".")
	if len(parts) != 3 {
		t.Fatal("RPT is not a JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Authorization struct {
			Permissions []struct {
				Claims map[string][]string `json:"claims"`
			} `json:"permissions"`
		} `json:"authorization"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Authorization.Permissions) != 1 {
		t.Fatalf("RPT has %d permissions, want 1", len(c.Authorization.Permissions))
	}
	return c.Authorization.Permissions[0].Claims
}

// claims is a well-formed claims token payload as a Claims Provider issues
// it, for ticket and this AS.
func (s *suite) claims(iss, email, ticket string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss": iss, "sub": "user-" + e2etest.RandomHex(4), "aud": s.asURI, "iat": now, "exp": now + 120,
		"jti": e2etest.RandomHex(16), "ticket_digest": uma.TicketDigest(ticket),
		"email": email, "email_verified": true,
	}
}
