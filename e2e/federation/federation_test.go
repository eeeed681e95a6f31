package federation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/ecosystem"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/testclaimsprovider"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

// The Keycloak versions of the three organisations: the oldest Keycloak 26
// release the extension supports (keycloak/extension/README.md), the pinned
// one and the newest Maven Central serves.
const (
	OldestKeycloak = "26.4.0"
	NewestKeycloak = "26.7.3"
)

// failedDiscoveryRemembered is how long an AS remembers that a domain's
// discovery failed (the claims-token policy's negative cache), plus a second.
const failedDiscoveryRemembered = 11 * time.Second

// The people: one per organisation.
var people = map[string]ecosystem.Person{
	"foo.example": {Username: "alice", Password: "alice-" + e2etest.RandomHex(6)},
	"bar.example": {Username: "bob", Password: "bob-" + e2etest.RandomHex(6)},
	"baz.example": {Username: "carol", Password: "carol-" + e2etest.RandomHex(6)},
}

var domains = []string{"foo.example", "bar.example", "baz.example"}

type world struct {
	e     *ecosystem.Ecosystem
	bin   map[string]string
	dir   string
	rogue *testclaimsprovider.Provider
}

func TestFederation(t *testing.T) {
	if err := ecosystem.Available(); err != nil {
		t.Skip(err.Error())
	}
	started := time.Now()
	dir := t.TempDir()
	w := &world{dir: dir, bin: e2etest.Build(t, dir), rogue: testclaimsprovider.New(t)}
	backend, err := url.Parse(w.rogue.Server.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	w.e, err = ecosystem.New(ctx, ecosystem.Options{Dir: dir, Bin: w.bin},
		ecosystem.OrgSpec{Domain: "foo.example", KeycloakVersion: OldestKeycloak, People: []ecosystem.Person{people["foo.example"]}},
		ecosystem.OrgSpec{Domain: "bar.example", KeycloakVersion: launcher.Version, People: []ecosystem.Person{people["bar.example"]}},
		ecosystem.OrgSpec{Domain: "baz.example", KeycloakVersion: NewestKeycloak, People: []ecosystem.Person{people["baz.example"]}},
		ecosystem.OrgSpec{Domain: "evil.example", Backend: backend},
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, o := range w.e.Orgs {
				for _, name := range []string{"keycloak", "claims-provider", "resource-server"} {
					e2etest.ShowLog(t, o.Domain+" "+name, filepath.Join(o.Dir, name+".log"))
				}
			}
		}
		w.e.Close()
	})
	t.Logf("four organisations up in %s", time.Since(started).Round(time.Second))
	evil := w.e.Orgs["evil.example"]
	w.rogue.Issuer = evil.CPURL()
	w.rogue.SetDiscovery(map[string]any{
		"issuer": evil.CPURL(), "claims_endpoint": evil.CPURL() + uma.ClaimsTokenPath, "jwks_uri": evil.CPURL() + "/jwks",
		"domains": []string{"evil.example", "foo.example"}, "signing_alg_values_supported": []string{"ES256"},
	})

	// First, while no AS has met baz.example: its discovery down.
	t.Run("sender discovery down", w.discoveryDown)
	t.Run("every pair by address", w.pairs)
	t.Run("unknown recipient", w.unknownRecipient)
	t.Run("rogue organisation", w.rogueOrg)
	t.Logf("federation test: %s in all", time.Since(started).Round(time.Second))
}

// push is the person of from pushing a new file to an address.
func (w *world) push(t *testing.T, from, to string, extra ...string) (e2etest.CLIResult, string) {
	t.Helper()
	o := w.e.Orgs[from]
	body := fmt.Sprintf("from %s to %s at %s\n", o.Address(people[from].Username), to, time.Now().Format(time.RFC3339Nano))
	file := filepath.Join(w.dir, "msg-"+e2etest.RandomHex(4)+".txt")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := w.e.PushCommand(e2etest.Timeout(t, 3*time.Minute), from, people[from].Username, to, file, append([]string{"--json"}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e2etest.RunCLI(t, cmd), body
}

type pushJSON struct {
	OK       bool        `json:"ok"`
	Location string      `json:"location"`
	ASURI    string      `json:"as_uri"`
	Message  uma.Message `json:"message"`
	Error    *struct {
		Kind, Code, Reason, Message string
		Status                      int
	} `json:"error"`
}

func decode(t *testing.T, r e2etest.CLIResult) pushJSON {
	t.Helper()
	var p pushJSON
	if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
		t.Fatalf("push output: %v\n%s", err, r)
	}
	return p
}

// inbox lists a person's Incoming as that person sees it: logged in at
// their own realm.
func (w *world) inbox(t *testing.T, domain string) []uma.Message {
	t.Helper()
	o := w.e.Orgs[domain]
	p := people[domain]
	r := e2etest.RunCLI(t, w.e.InboxCommand(e2etest.Timeout(t, 3*time.Minute), domain, p, "--json"))
	if r.Code != 0 {
		t.Fatalf("%s's inbox: %s", o.Address(p.Username), r)
	}
	var list uma.MessageList
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
		t.Fatalf("%s's inbox: %v\n%s", o.Address(p.Username), err, r)
	}
	return list.Messages
}

func (w *world) counts(t *testing.T) map[string]int {
	n := map[string]int{}
	for _, d := range domains {
		n[d] = len(w.inbox(t, d))
	}
	return n
}

func (w *world) discoveryDown(t *testing.T) {
	baz, foo := w.e.Orgs["baz.example"], w.e.Orgs["foo.example"]
	before := w.counts(t)
	mark := kctest.MarkLog(foo.KC.LogPath)
	baz.SetDiscoveryDown(true)
	// The client knows its own Claims Provider: only foo's AS needs
	// baz.example's discovery, and finds it down.
	r, _ := w.push(t, "baz.example", foo.Address("alice"), "--claims-provider", baz.CPURL())
	failedAt := time.Now()
	baz.SetDiscoveryDown(false)
	if r.Code == 0 {
		t.Fatalf("pushed while the sender's discovery was down: %s", r)
	}
	p := decode(t, r)
	if p.Error == nil || p.Error.Kind != "denied" {
		t.Errorf("want a denial by foo's AS: %s", r)
	}
	if lines := mark.Lines("baz.example"); len(lines) == 0 {
		t.Errorf("foo's Keycloak log does not name baz.example:\n%s", kctest.KeycloakLog(foo.KC))
	}
	if after := w.counts(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("stored something: %v, before %v", after, before)
	}
	// Back up: the same push succeeds once foo's AS stops remembering the
	// failure (keycloak/extension/README.md: at least 10 s, and at least
	// jwksMinRefreshSeconds, 10 in the bundle).
	time.Sleep(time.Until(failedAt.Add(failedDiscoveryRemembered)))
	r, _ = w.push(t, "baz.example", foo.Address("alice"), "--claims-provider", baz.CPURL())
	if r.Code != 0 {
		t.Fatalf("push after discovery came back: %s", r)
	}
}

func (w *world) pairs(t *testing.T) {
	for _, from := range domains {
		for _, to := range domains {
			if from == to {
				continue
			}
			t.Run(from+" to "+to, func(t *testing.T) {
				sender, recipient := w.e.Orgs[from], w.e.Orgs[to]
				r, body := w.push(t, from, recipient.Address(people[to].Username))
				if r.Code != 0 {
					t.Fatalf("push: %s", r)
				}
				p := decode(t, r)
				m := p.Message
				if !p.OK || m.SenderEmail != sender.Address(people[from].Username) || m.SenderIss != sender.CPURL() ||
					m.Size != int64(len(body)) || p.ASURI != recipient.Issuer() {
					t.Errorf("receipt %+v (as_uri %s): want sender %s verified by %s at %s",
						m, p.ASURI, sender.Address(people[from].Username), sender.CPURL(), recipient.Issuer())
				}
				if !strings.Contains(r.Stderr, "WebFinger") {
					t.Errorf("the push does not show the WebFinger look-up:\n%s", r.Stderr)
				}
				found := false
				for _, x := range w.inbox(t, to) {
					found = found || x.ID == m.ID && x.SenderIss == sender.CPURL()
				}
				if !found {
					t.Errorf("message %s not in %s's Incoming", m.ID, recipient.Address(people[to].Username))
				}
			})
		}
	}
}

func (w *world) unknownRecipient(t *testing.T) {
	before := w.counts(t)
	r, _ := w.push(t, "foo.example", "nobody@bar.example")
	if r.Code == 0 || !strings.Contains(r.Stderr, "no such recipient") || !strings.Contains(r.Stderr, "nobody@bar.example") {
		t.Fatalf("want a clear error for an unknown recipient: %s", r)
	}
	if p := decode(t, r); p.Error == nil || p.Error.Reason != "unknown_recipient" {
		t.Errorf("reason: %s", r)
	}
	if after := w.counts(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("stored something: %v, before %v", after, before)
	}
	// An honest push right after.
	if r, _ := w.push(t, "foo.example", "bob@bar.example"); r.Code != 0 {
		t.Fatalf("honest push after the refusal: %s", r)
	}
}

// rogueOrg: evil.example's Claims Provider vouches for alice@foo.example.
// Everything else is honest: a real ticket of Bob's Resource Server, a
// dynamic registration at bar's AS, a well-formed claims token bound to the
// ticket and addressed to bar's AS, signed by evil's published key.
func (w *world) rogueOrg(t *testing.T) {
	bar := w.e.Orgs["bar.example"]
	hc := w.e.Client("evil.example")
	before := len(w.inbox(t, "bar.example"))
	incoming := bar.Incoming("bob")
	content := []byte("a message from mallory pretending to be alice")

	// 1-2: the challenge.
	resp, err := hc.Post(incoming, "text/plain", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ch, err := uma.ParseChallenge(resp.Header)
	if err != nil || ch.ASURI != bar.Issuer() {
		t.Fatalf("challenge %+v: %v", ch, err)
	}
	// A registration of its own at bar's AS (anyone may register).
	var meta struct {
		TokenEndpoint        string `json:"token_endpoint"`
		RegistrationEndpoint string `json:"registration_endpoint"`
	}
	getJSON(t, hc, ch.ASURI+"/.well-known/uma2-configuration", &meta)
	regBody, _ := json.Marshal(uma.ClientRegistrationRequest{ClientName: "evil", GrantTypes: []string{uma.GrantTypeUMATicket},
		ResponseTypes: []string{"none"}, TokenEndpointAuthMethod: uma.TokenEndpointAuthClientSecretBasic})
	resp, err = hc.Post(meta.RegistrationEndpoint, "application/json", bytes.NewReader(regBody))
	if err != nil {
		t.Fatal(err)
	}
	var reg uma.ClientRegistrationResponse
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &reg) != nil || reg.ClientID == "" {
		t.Fatalf("registration at bar: %s %s", resp.Status, b)
	}
	// The rogue claims token.
	now := time.Now().Unix()
	claims := map[string]any{
		"iss": w.rogue.Issuer, "sub": "mallory", "aud": ch.ASURI, "iat": now, "exp": now + 120,
		"jti": e2etest.RandomHex(16), "ticket_digest": uma.TicketDigest(ch.Ticket),
		"email": "alice@foo.example", "email_verified": true,
	}
	ct := w.rogue.SignES256(testclaimsprovider.Header("ES256", testclaimsprovider.ECKID), claims)
	pushed := uma.PushedClaims{}
	pushed.Set(uma.ClaimClaimsToken, ct)
	pushed.Set(uma.ClaimContentSHA256, sha256Hex(content))
	pushed.Set(uma.ClaimContentLength, fmt.Sprint(len(content)))
	pushed.Set(uma.ClaimContentType, "text/plain")
	pushed.Set(uma.ClaimIncomingURI, incoming)
	enc, err := pushed.Encode()
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{uma.FormGrantType: {uma.GrantTypeUMATicket}, uma.FormTicket: {ch.Ticket},
		uma.FormSubmitRequest: {"false"}, uma.FormClaimTokenFormat: {uma.ClaimTokenFormatJWT}, uma.FormClaimToken: {enc}}
	req, _ := http.NewRequest(http.MethodPost, meta.TokenEndpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(reg.ClientID), url.QueryEscape(reg.ClientSecret))
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bar's AS answered the rogue claims token with %s %s, want 403", resp.Status, b)
	}
	if n := len(w.inbox(t, "bar.example")); n != before {
		t.Errorf("Bob's Incoming has %d messages, had %d", n, before)
	}
	// The honest alice right after.
	if r, _ := w.push(t, "foo.example", "bob@bar.example"); r.Code != 0 {
		t.Fatalf("honest push after the rogue one: %s", r)
	}
}

func getJSON(t *testing.T, hc *http.Client, u string, out any) {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != 200 || json.Unmarshal(b, out) != nil {
		t.Fatalf("GET %s: %s %s", u, resp.Status, b)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
