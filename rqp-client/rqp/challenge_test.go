package rqp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/rqp-client/internal/umafake"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// assertChallengeMismatch checks the refusal of a challenge: step 2, reason
// challenge_mismatch, the message naming every URL in names, and nothing
// sent to the AuthN server, the Claims Provider or the authorization server.
func assertChallengeMismatch(t *testing.T, s *umafake.Stack, err error, names ...string) {
	t.Helper()
	var se *rqp.StepError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a StepError", err)
	}
	if se.Step != rqp.StepChallenge || se.Reason != rqp.ReasonChallengeMismatch || !errors.Is(err, rqp.ErrChallengeMismatch) ||
		!errors.Is(err, rqp.ErrProtocol) || se.Retryable() {
		t.Fatalf("err = %#v (%v), want step 2 with reason %s", se, err, rqp.ReasonChallengeMismatch)
	}
	msg := err.Error()
	if !strings.Contains(msg, rqp.ReasonChallengeMismatch) {
		t.Errorf("message %q does not name the reason", msg)
	}
	for _, n := range names {
		if !strings.Contains(msg, n) {
			t.Errorf("message %q does not name %s", msg, n)
		}
	}
	for _, ep := range []string{"kc.metadata", "kc.token", "cp.discovery", "cp.token", "as.token"} {
		if n := s.Count(ep); n != 0 {
			t.Errorf("%s asked %d times for a refused challenge", ep, n)
		}
	}
	if len(s.StoredMessages()) != 0 {
		t.Errorf("%d messages stored", len(s.StoredMessages()))
	}
	assertNoSecrets(t, "error", msg)
}

// challengeWith answers step 1 with a challenge carrying this ticket.
func challengeWith(s *umafake.Stack, ticket string) umafake.Hook {
	return answer(401, `{"error":"unauthorized"}`, "WWW-Authenticate",
		uma.Challenge{Realm: "bar", ASURI: s.Issuer("bar"), Ticket: ticket}.String())
}

func TestChallengeMismatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(s *umafake.Stack)
		names func(s *umafake.Stack) []string
	}{
		{"ticket for another Resource Server's Incoming", func(s *umafake.Stack) {
			s.TicketIncomingURI = "https://rs.other.example/incoming/bob"
		}, func(s *umafake.Stack) []string {
			return []string{"https://rs.other.example/incoming/bob", s.IncomingURL(umafake.Owner)}
		}},
		{"ticket for another owner's Incoming", func(s *umafake.Stack) {
			s.TicketIncomingURI = s.IncomingURL("carol")
		}, func(s *umafake.Stack) []string {
			return []string{s.IncomingURL("carol"), s.IncomingURL(umafake.Owner)}
		}},
		{"ticket for a non-canonical spelling", func(s *umafake.Stack) {
			s.TicketIncomingURI = s.IncomingURL(umafake.Owner) + "/"
		}, func(s *umafake.Stack) []string {
			return []string{s.IncomingURL(umafake.Owner) + "/", s.IncomingURL(umafake.Owner)}
		}},
		{"ticket without incoming_uri", func(s *umafake.Stack) {
			s.OmitTicketIncomingURI = true
		}, func(s *umafake.Stack) []string {
			return []string{"no incoming_uri claim", s.IncomingURL(umafake.Owner)}
		}},
		{"opaque ticket", func(s *umafake.Stack) {
			s.Hook("rs.post", challengeWith(s, "opaque-ticket"))
		}, func(s *umafake.Stack) []string {
			return []string{"cannot be read", s.IncomingURL(umafake.Owner)}
		}},
		{"ticket naming two Incomings", func(s *umafake.Stack) {
			s.Hook("rs.post", challengeWith(s, umafake.JWT(map[string]any{
				"claims": map[string]any{uma.ClaimIncomingURI: []string{s.IncomingURL(umafake.Owner), "https://rs.other.example/incoming/bob"}}})))
		}, func(s *umafake.Stack) []string {
			return []string{"2 Incomings", "https://rs.other.example/incoming/bob", s.IncomingURL(umafake.Owner)}
		}},
		{"ticket for another authorization server (aud, as Keycloak sets it)", func(s *umafake.Stack) {
			s.Hook("rs.post", challengeWith(s, umafake.JWT(map[string]any{"aud": "https://as.other.example/realms/bar",
				"claims": map[string]any{uma.ClaimIncomingURI: []string{s.IncomingURL(umafake.Owner)}}})))
		}, func(s *umafake.Stack) []string {
			return []string{"https://as.other.example/realms/bar", s.Issuer("bar")}
		}},
		{"ticket of another authorization server", func(s *umafake.Stack) {
			s.Hook("rs.post", challengeWith(s, umafake.JWT(map[string]any{"iss": "https://as.other.example/realms/bar",
				"claims": map[string]any{uma.ClaimIncomingURI: []string{s.IncomingURL(umafake.Owner)}}})))
		}, func(s *umafake.Stack) []string {
			return []string{"https://as.other.example/realms/bar", s.Issuer("bar")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := umafake.New(t)
			tc.setup(s)
			var events []rqp.Event
			c := newClient(t, config(s, &events))
			_, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("for bob"), "b.txt"), Email: umafake.AliceEmail})
			assertChallengeMismatch(t, s, err, tc.names(s)...)
			if s.UnauthedPosts()+s.Count("rs.post") == 0 || len(events) != 2 || events[1].OK || events[1].Step != rqp.StepChallenge {
				t.Errorf("events %+v", events)
			}
		})
	}
}

// The control of TestChallengeMismatch: a ticket that names this Incoming
// and whose iss is the as_uri (a trailing slash aside, as for registrations)
// is taken, and the push goes through to the canonical URL.
func TestChallengeMatchesWithIssuer(t *testing.T) {
	s := umafake.New(t)
	s.TicketIssuer = s.Issuer("bar") + "/"
	c := newClient(t, config(s, nil))
	// The Incoming is named in another spelling; the client canonicalises it.
	to := strings.Replace(s.Incoming(), "http://", "HTTP://", 1) + "/"
	s.Hook("rs.post", func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/incoming/bob" {
			t.Errorf("POST to %q, want the canonical path", r.URL.Path)
		}
		return false
	})
	if _, err := c.Push(context.Background(), rqp.Request{To: to, Content: rqp.BytesContent([]byte("for bob"), ""), Email: umafake.AliceEmail}); err != nil {
		t.Fatal(err)
	}
	if p := s.Pushed(); len(p) != 1 || p[0].Get(uma.ClaimIncomingURI) != s.IncomingURL(umafake.Owner) {
		t.Fatalf("pushed %v", p)
	}
}

// relay is a hostile Resource Server in front of Bob's: it fetches a
// challenge from Bob's Resource Server for every POST without a token and
// hands it to the client as its own, and replays every POST with an RPT
// (the token and the content) to Bob's. replayed counts the replays.
type relay struct {
	*httptest.Server
	mu       sync.Mutex
	replayed int
	statuses []int
}

func newRelay(t *testing.T, target string) *relay {
	rl := &relay{}
	rl.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if r.Header.Get("Authorization") == "" {
			// Fetch Bob's challenge without sending anything of the client's.
			resp, err := http.Post(target, "application/octet-stream", bytes.NewReader(nil))
			if err != nil {
				http.Error(w, err.Error(), 502)
				return
			}
			resp.Body.Close()
			w.Header().Set("WWW-Authenticate", resp.Header.Get("WWW-Authenticate"))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write([]byte(`{"error":"unauthorized"}`))
			return
		}
		req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		for _, h := range []string{"Authorization", "Content-Type", "Content-Disposition"} {
			req.Header.Set(h, r.Header.Get(h))
		}
		resp, err := http.DefaultClient.Do(req)
		rl.mu.Lock()
		rl.replayed++
		if err == nil {
			rl.statuses = append(rl.statuses, resp.StatusCode)
		}
		rl.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.Header().Set("Location", resp.Header.Get("Location"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(rl.Close)
	return rl
}

func TestRelayingResourceServerRefused(t *testing.T) {
	s := umafake.New(t)
	rl := newRelay(t, s.Incoming())
	to := rl.URL + "/incoming/hr"
	c := newClient(t, config(s, nil))
	_, err := c.Push(context.Background(), rqp.Request{To: to, Content: rqp.BytesContent([]byte("for hr only"), "hr.txt"), Email: umafake.AliceEmail})
	// The relay did fetch Bob's challenge: the refusal is the client's.
	if s.UnauthedPosts() != 1 {
		t.Fatalf("the relay fetched %d challenges from Bob's Resource Server", s.UnauthedPosts())
	}
	assertChallengeMismatch(t, s, err, to, s.IncomingURL(umafake.Owner))
	if rl.replayed != 0 {
		t.Errorf("the relay replayed %d requests with an RPT (statuses %v)", rl.replayed, rl.statuses)
	}
}
