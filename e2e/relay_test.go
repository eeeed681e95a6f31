package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/uma"
)

// exitProtocol is the CLI's exit status for an unexpected answer
// (rqp-client -h), a refused challenge among them.
const exitProtocol = 7

// relayRS is a hostile Resource Server in front of Bob's (issue 12, finding
// 4): Alice pushes to its own Incoming, and it answers her first POST with
// a challenge it fetched from Bob's Resource Server (Bob's ticket, Bob's
// as_uri), ready to replay whatever RPT and content Alice's client then sends
// it to Bob's Incoming.
type relayRS struct {
	*httptest.Server
	mu       sync.Mutex
	tickets  []string // the tickets fetched from Bob's Resource Server
	replayed []string // the statuses of the replays to Bob's Resource Server
}

func newRelayRS(t *testing.T, target string) *relayRS {
	rl := &relayRS{}
	rl.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if r.Header.Get("Authorization") == "" {
			// Bob's challenge, fetched with nothing of Alice's.
			resp, err := http.Post(target, "text/plain", strings.NewReader("x"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			resp.Body.Close()
			if ch, err := uma.ParseChallenge(resp.Header); err == nil {
				rl.mu.Lock()
				rl.tickets = append(rl.tickets, ch.Ticket)
				rl.mu.Unlock()
			}
			w.Header().Set("WWW-Authenticate", resp.Header.Get("WWW-Authenticate"))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(resp.StatusCode)
			_, _ = io.WriteString(w, `{"error":"unauthorized","error_description":"an RPT is required"}`)
			return
		}
		// Replay the RPT and the content to Bob's Incoming.
		req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		for _, h := range []string{"Authorization", "Content-Type", "Content-Disposition"} {
			req.Header.Set(h, r.Header.Get(h))
		}
		resp, err := http.DefaultClient.Do(req)
		status := "unreachable"
		if err == nil {
			status = resp.Status
		}
		rl.mu.Lock()
		rl.replayed = append(rl.replayed, status)
		rl.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(rl.Close)
	return rl
}

func (rl *relayRS) seen() (tickets, replayed []string) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return slices.Clone(rl.tickets), slices.Clone(rl.replayed)
}

// TestRelayingResourceServer: Alice pushes to https://.../incoming/hr at a
// Resource Server that relays Bob's challenge. Her client refuses the
// challenge at step 2 (the ticket names Bob's Incoming, not the one she
// pushes to: challenge_mismatch, both URLs in the reason), asks neither the
// Claims Provider nor the AS for anything, and nothing reaches Bob's
// Incoming. A client that skipped the check would get no RPT either (the
// policy compares the pushed incoming_uri with the ticket's). An honest push
// to Bob still succeeds right after.
//
// It needs the whole of issue 12: a Resource Server that puts its
// incoming_uri on its tickets and a claims-token policy that requires it.
func TestRelayingResourceServer(t *testing.T) {
	w := newWorld(t)
	bob := w.IncomingURI("bob")
	rl := newRelayRS(t, bob)
	to := rl.URL + "/incoming/hr"
	hr, err := uma.CanonicalIncomingURL(to)
	if err != nil {
		t.Fatal(err)
	}
	before := messageIDs(w.BobMessages(t))
	data := []byte("Dear HR, my notice, for your eyes only.\n")
	file := writeFile(t, "notice.txt", data)
	args := w.PushArgs(file, "--email", e2etest.AliceEmail)
	args[slices.Index(args, "--to")+1] = to

	t.Run("the client refuses the relayed challenge", func(t *testing.T) {
		r := w.CLI(t, nil, args...)
		if r.Code != exitProtocol {
			t.Fatalf("exit %d, want %d\n%s", r.Code, exitProtocol, r)
		}
		last := r.LastLine()
		for _, want := range []string{"step 2 (UMA challenge)", "challenge_mismatch", bob, hr} {
			if !strings.Contains(last, want) {
				t.Errorf("reason %q lacks %q", last, want)
			}
		}
		if r.Stdout != "" {
			t.Errorf("stdout on failure: %q", r.Stdout)
		}

		r = w.CLI(t, nil, append(args, "--json")...)
		var res struct {
			OK    bool
			Steps []struct {
				Step int
				OK   bool
			}
			Error *struct {
				Step   int
				Kind   string
				Reason string
			}
		}
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || r.Code != exitProtocol {
			t.Fatalf("%v\n%s", err, r)
		}
		if res.OK || res.Error == nil || res.Error.Step != 2 || res.Error.Reason != "challenge_mismatch" || res.Error.Kind != "protocol" {
			t.Errorf("JSON result %+v", res)
		}
		if len(res.Steps) != 2 || !res.Steps[0].OK || res.Steps[1].OK || res.Steps[1].Step != 2 {
			t.Errorf("steps %+v: want 1 done and 2 failed, nothing after", res.Steps)
		}
	})

	// The relay did its part: it fetched Bob's challenges, each ticket naming
	// Bob's Incoming (the Resource Server's incoming_uri), and got nothing to
	// replay.
	tickets, replayed := rl.seen()
	if len(tickets) != 2 {
		t.Errorf("the relay fetched %d challenges from Bob's Resource Server, want 2", len(tickets))
	}
	for _, tk := range tickets {
		if tc, err := uma.UnverifiedTicketClaims(tk); err != nil || !slices.Equal(tc.IncomingURIs, []string{bob}) {
			t.Errorf("Bob's ticket names %+v (%v), want incoming_uri %s", tc, err, bob)
		}
	}
	if len(replayed) != 0 {
		t.Errorf("the relay replayed %d RPTs to Bob's Resource Server: %v", len(replayed), replayed)
	}
	if after := messageIDs(w.BobMessages(t)); !slices.Equal(after, before) {
		t.Errorf("Bob's Incoming changed: %v, was %v", after, before)
	}

	t.Run("a client that skipped the check gets no RPT", func(t *testing.T) {
		// Bob's ticket as the relay hands it on, the honest claims for the
		// content, and the Incoming Alice meant: incoming_uri of the relay.
		mark := kctest.MarkLog(kctest.KeycloakLog(w.KC))
		ticket := w.Ticket(t, "bob")
		ct := w.ClaimsToken(t, w.ClientToken(t), ticket, e2etest.AliceEmail, "")
		form := e2etest.GrantForm(ticket, w.PushedFor("bob", ct, map[string]string{
			uma.ClaimIncomingURI:   hr,
			uma.ClaimContentSHA256: hexSHA(data),
			uma.ClaimContentLength: fmt.Sprint(len(data)),
			uma.ClaimContentType:   "text/plain; charset=utf-8",
		}))
		rpt, te := w.Grant(t, "", form)
		if te == nil {
			t.Fatalf("got an RPT (%d characters) for a grant pushing incoming_uri %s with Bob's ticket", len(rpt), hr)
		}
		if te.StatusCode != http.StatusForbidden {
			t.Fatalf("grant answered %v, want 403", te)
		}
		if mark.Path != "" {
			needle := "claims-token policy denied: reason=incoming_uri_mismatch realm=" + w.Realm + " "
			if n := mark.WaitLines(10*time.Second, 1, needle); n != 1 {
				t.Errorf("Keycloak's log has %d lines %q, want 1: %q", n, needle, mark.Lines("claims-token policy denied", "realm="+w.Realm+" "))
			}
		}
	})
	if after := messageIDs(w.BobMessages(t)); !slices.Equal(after, before) {
		t.Errorf("Bob's Incoming changed: %v, was %v", after, before)
	}

	t.Run("an honest push to Bob right after", func(t *testing.T) {
		honest := content(t)
		r := w.CLI(t, nil, append(w.PushArgs(writeFile(t, "honest.txt", honest), "--email", e2etest.AliceEmail), "--json")...)
		var res pushResult
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || r.Code != 0 || !res.OK {
			t.Fatalf("%v\n%s", err, r)
		}
		w.assertStored(t, res.Message.ID, honest, e2etest.AliceEmail)
	})
}

func messageIDs(ms []e2etest.Message) []string {
	ids := make([]string, 0, len(ms))
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}
