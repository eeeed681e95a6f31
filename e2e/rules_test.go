package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/uma"
)

// Issue 15: Bob's rules, kept by the Resource Server as his Incoming's
// attributes in Keycloak and enforced by the claims-token policy at the AS
// after the sender is verified. Through the real stack: each rule kind
// refuses and admits as stated, the client says so plainly, Keycloak's log
// names the owner's reason, nothing is stored by a refusal and an honest
// push right after succeeds.
func TestOwnerRules(t *testing.T) {
	const carolPassword = "carol-password"
	w := &world{e2etest.New(t, e2etest.Options{RealmPrefix: "bar-rules-", MutateRealm: func(rep map[string]any) {
		users, _ := rep["users"].([]any)
		rep["users"] = append(users, map[string]any{
			"username": "carol", "email": "carol@bar.example", "emailVerified": true, "enabled": true,
			"firstName": "Carol", "lastName": "Other",
			"credentials": []any{map[string]any{"type": "password", "value": carolPassword, "temporary": false}},
		})
	}})}
	// A second verified sender of foo.example.
	erin := e2etest.AddUser(t, w.KC, "foo", "e2e-erin-"+e2etest.RandomHex(4), "foo.example", true)
	alice := e2etest.AliceEmail
	kcLog := kctest.KeycloakLog(w.KC)
	if kcLog == "" {
		t.Log("Keycloak's log is not readable here: the policy's reason codes are not checked")
	}
	w.Ticket(t, "bob") // registers Bob's Incoming

	bob := w.BobToken(t)
	carol := w.login(t, "carol", carolPassword)

	stored := func() int { return len(w.BobMessages(t)) }

	// push runs the CLI as sender; want 0 (201) or exitDenied with the
	// owner's reason, which Keycloak's log must name too.
	push := func(t *testing.T, sender string, size int, reason string) {
		t.Helper()
		data := []byte(fmt.Sprintf("%s to Bob, %s, %s\n", sender, t.Name(), time.Now().Format(time.RFC3339Nano)))
		if size > 0 {
			data = append(data, bytes.Repeat([]byte("."), size-len(data))...)
		}
		before := stored()
		mark := kctest.MarkLog(kcLog)
		r := w.CLI(t, nil, w.PushArgs(writeFile(t, "note.txt", data), "--email", sender)...)
		if reason == "" {
			if r.Code != 0 || !strings.HasPrefix(r.Stdout, "201 Created ") {
				t.Fatalf("%s: want 201\n%s", sender, r)
			}
			if n := stored(); n != before+1 {
				t.Fatalf("%s: %d messages after a 201, %d before", sender, n, before)
			}
			return
		}
		if r.Code != exitDenied {
			t.Fatalf("%s: want exit %d (%s)\n%s", sender, exitDenied, reason, r)
		}
		var want string
		switch reason {
		case uma.RefusalOwnerRefused:
			want = "Bob's rules refuse pushes from " + sender + " (owner_refused)"
		case uma.RefusalQuotaExceeded:
			want = "Bob's rules refuse more pushes from " + sender + " today"
		}
		if !strings.Contains(r.LastLine(), want) || !strings.Contains(r.LastLine(), reason) {
			t.Errorf("%s: the client says %q, want %q", sender, r.LastLine(), want)
		}
		mark.ExpectDenial(t, 10*time.Second, reason, w.Realm)
		if n := stored(); n != before {
			t.Fatalf("%s: a refused push changed Bob's Incoming: %d messages, %d before", sender, n, before)
		}
	}
	set := func(t *testing.T, body string) uma.OwnerRules {
		t.Helper()
		a := w.RSDo(t, http.MethodPut, uma.RulesPath("bob"), bob, []byte(body), http.Header{"Content-Type": {"application/json"}})
		var r uma.OwnerRules
		if a.Status != http.StatusOK || json.Unmarshal(a.Body, &r) != nil {
			t.Fatalf("PUT rules %s: %s", body, a)
		}
		return r
	}

	t.Run("no rules admit every verified sender", func(t *testing.T) {
		a := w.RSDo(t, http.MethodGet, uma.RulesPath("bob"), bob, nil, nil)
		if a.Status != 200 || !strings.Contains(string(a.Body), `"default":"anyone"`) {
			t.Fatalf("GET rules: %s", a)
		}
		push(t, alice, 0, "")
	})
	t.Run("deny an address", func(t *testing.T) {
		set(t, `{"default":"anyone","deny":["ALICE@foo.example"]}`)
		push(t, alice, 0, uma.RefusalOwnerRefused)
		push(t, erin, 0, "")
	})
	t.Run("deny a domain", func(t *testing.T) {
		set(t, `{"default":"anyone","deny":["foo.example"]}`)
		push(t, alice, 0, uma.RefusalOwnerRefused)
		push(t, erin, 0, uma.RefusalOwnerRefused)
	})
	t.Run("default listed with an allow entry", func(t *testing.T) {
		set(t, `{"default":"listed","allow":["`+erin+`"]}`)
		push(t, alice, 0, uma.RefusalOwnerRefused)
		push(t, erin, 0, "")
	})
	t.Run("default nobody", func(t *testing.T) {
		set(t, `{"default":"nobody","allow":["foo.example"]}`)
		push(t, erin, 0, uma.RefusalOwnerRefused)
	})
	t.Run("deny wins over allow", func(t *testing.T) {
		set(t, `{"default":"listed","allow":["foo.example","alice@foo.example"],"deny":["alice@foo.example"]}`)
		push(t, alice, 0, uma.RefusalOwnerRefused)
		push(t, erin, 0, "")
	})
	t.Run("a change takes effect on the next push", func(t *testing.T) {
		set(t, `{"default":"anyone"}`)
		push(t, alice, 0, "")
	})

	t.Run("a forged token is never told the owner's reason", func(t *testing.T) {
		set(t, `{"default":"nobody"}`)
		defer set(t, `{"default":"anyone"}`)
		clientTok := w.ClientToken(t)
		// Honest sender, refused by the rules: the header names the reason.
		ticket := w.Ticket(t, "bob")
		honest := w.ClaimsToken(t, clientTok, ticket, alice, "")
		a := w.grantRaw(t, ticket, w.PushedFor("bob", honest, map[string]string{uma.ClaimContentSHA256: hexSHA(nil), uma.ClaimContentLength: "0"}))
		if a.Status != 403 || a.Header.Get(uma.RefusalHeader) != uma.RefusalOwnerRefused {
			t.Fatalf("owner's refusal: %s, %s=%q", a, uma.RefusalHeader, a.Header.Get(uma.RefusalHeader))
		}
		// A claims token for another audience: refused before the rules,
		// and the answer says nothing but Keycloak's generic denial.
		ticket = w.Ticket(t, "bob")
		forged := w.ClaimsToken(t, clientTok, ticket, alice, "https://elsewhere.example/realms/bar")
		mark := kctest.MarkLog(kcLog)
		a = w.grantRaw(t, ticket, w.PushedFor("bob", forged, map[string]string{uma.ClaimContentSHA256: hexSHA(nil), uma.ClaimContentLength: "0"}))
		if a.Status != 403 || a.Header.Get(uma.RefusalHeader) != "" {
			t.Fatalf("forged: %s, %s=%q", a, uma.RefusalHeader, a.Header.Get(uma.RefusalHeader))
		}
		mark.ExpectDenial(t, 10*time.Second, "audience_mismatch", w.Realm)
	})

	t.Run("quota", func(t *testing.T) {
		if !w.KC.TestClock {
			t.Skip("this Keycloak runs without the test clock (-Dumawide.test-clock=enabled; KEYCLOAK_TEST_CLOCK=enabled for an external one): the next day cannot be simulated")
		}
		w.setClock(t, 0)
		set(t, `{"default":"anyone","quota":{"messages_per_day":2}}`)
		push(t, alice, 0, "")
		push(t, alice, 0, "")
		push(t, alice, 0, uma.RefusalQuotaExceeded)
		push(t, erin, 0, "") // per sender
		w.setClock(t, 86400)
		push(t, alice, 0, "") // the next UTC day

		w.setClock(t, 3*86400)
		set(t, `{"default":"anyone","quota":{"bytes_per_day":3000}}`)
		push(t, alice, 2000, "")
		push(t, alice, 1001, uma.RefusalQuotaExceeded)
		push(t, alice, 1000, "") // exactly the limit
		push(t, alice, 200, uma.RefusalQuotaExceeded)
		w.setClock(t, 4*86400)
		push(t, alice, 2000, "")
		set(t, `{"default":"anyone"}`)
		w.setClock(t, 0)
	})

	t.Run("only Bob reads and changes his rules", func(t *testing.T) {
		before := w.RSDo(t, http.MethodGet, uma.RulesPath("bob"), bob, nil, nil)
		if a := w.RSDo(t, http.MethodGet, uma.RulesPath("bob"), carol, nil, nil); a.Status != http.StatusForbidden {
			t.Errorf("Carol reads Bob's rules: %s", a)
		}
		a := w.RSDo(t, http.MethodPut, uma.RulesPath("bob"), carol, []byte(`{"default":"nobody"}`), http.Header{"Content-Type": {"application/json"}})
		if a.Status != http.StatusForbidden {
			t.Errorf("Carol changes Bob's rules: %s", a)
		}
		if a := w.RSDo(t, http.MethodGet, uma.RulesPath("bob"), bob, nil, nil); string(a.Body) != string(before.Body) {
			t.Errorf("Bob's rules changed: %s, before %s", a.Body, before.Body)
		}
		if a := w.RSDo(t, http.MethodGet, uma.RulesPath("carol"), carol, nil, nil); a.Status != http.StatusOK {
			t.Errorf("Carol reads her own rules: %s", a)
		}
		// Invalid input names the field and changes nothing.
		a = w.RSDo(t, http.MethodPut, uma.RulesPath("bob"), bob, []byte(`{"default":"anyone","deny":["foo.example","not a domain"]}`), http.Header{"Content-Type": {"application/json"}})
		if a.Status != http.StatusBadRequest || !strings.Contains(a.Err.Description, "deny[1]") {
			t.Errorf("invalid rules: %s", a)
		}
		push(t, alice, 0, "")
	})

	t.Run("bounds Keycloak accepts", func(t *testing.T) {
		// The longest entries (254 characters) and full lists: each is one
		// attribute value in a 255-character column.
		long := func(i int) string {
			return fmt.Sprintf("%03d@%s.%s.%s.%s", i, strings.Repeat("a", 63), strings.Repeat("b", 63), strings.Repeat("c", 63), strings.Repeat("d", 58))
		}
		allow, deny := make([]string, 200), make([]string, 200)
		for i := range allow {
			allow[i] = long(i)
			deny[i] = "d" + strconv.Itoa(i) + ".example"
		}
		allow[0] = alice
		body, _ := json.Marshal(uma.OwnerRules{Default: uma.RulesListed, Allow: allow[:100], Deny: deny})
		got := set(t, string(body))
		if len(got.Allow) != 100 || len(got.Deny) != 200 || len(got.Allow[1]) != 254 {
			t.Fatalf("stored %d allow, %d deny entries", len(got.Allow), len(got.Deny))
		}
		a := w.RSDo(t, http.MethodGet, uma.RulesPath("bob"), bob, nil, nil)
		var read uma.OwnerRules
		if json.Unmarshal(a.Body, &read) != nil || len(read.Allow) != 100 || len(read.Deny) != 200 {
			t.Fatalf("read back: %.300s", a.Body)
		}
		push(t, alice, 0, "")
		push(t, erin, 0, uma.RefusalOwnerRefused)
		set(t, `{"default":"anyone"}`)
	})
}

// login logs a user of the realm copy in at incoming-app, as BobToken does.
func (w *world) login(t *testing.T, user, password string) string {
	t.Helper()
	tok, err := kctest.LoginForTokens(e2etest.Timeout(t, time.Minute), kctest.CodeFlow{
		Issuer: w.KC.IssuerURL(w.Realm), ClientID: "incoming-app",
		RedirectURI: "http://127.0.0.1:43210/callback", Scope: "openid",
	}, user, password)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// grantRaw is step 7 as rqp-client, with the whole answer (headers too).
func (w *world) grantRaw(t *testing.T, ticket, claimToken string) e2etest.Answer {
	t.Helper()
	req, err := http.NewRequestWithContext(e2etest.Timeout(t, time.Minute), http.MethodPost,
		w.KC.IssuerURL(w.Realm)+"/protocol/openid-connect/token", strings.NewReader(e2etest.GrantForm(ticket, claimToken).Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rqp-client", url.QueryEscape(e2etest.RQPSecret))
	return e2etest.Do(t, req)
}

// setClock moves the quota clock of this world's realm (QuotaClock.java):
// a realm attribute the policy honours only on a Keycloak started with the
// test clock.
func (w *world) setClock(t *testing.T, offsetSeconds int64) {
	t.Helper()
	rep := map[string]any{"attributes": map[string]string{"umawide.testClockOffsetSeconds": strconv.FormatInt(offsetSeconds, 10)}}
	if err := w.KC.Admin(e2etest.Timeout(t, time.Minute), http.MethodPut, "/"+w.Realm, rep, nil); err != nil {
		t.Fatal(err)
	}
}
