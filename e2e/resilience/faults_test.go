package resilience

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/rqp-client/rqp"
)

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// client is Alice's RqP client (client credentials) for world w.
func client(t testing.TB, w *e2etest.World, progress func(rqp.Event)) *rqp.Client {
	t.Helper()
	c, err := rqp.New(rqp.Config{
		AuthN:          rqp.AuthN{Issuer: w.KC.IssuerURL("foo"), ClientID: "rqp-client", ClientSecret: e2etest.RQPSecret},
		ClaimsProvider: rqp.ClaimsProvider{URL: w.CPURL},
		Registrations:  []rqp.Registration{{Issuer: w.KC.IssuerURL(w.Realm), ClientID: "rqp-client", ClientSecret: e2etest.RQPSecret}},
		Progress:       progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// push sends text to Bob's Incoming.
func push(ctx context.Context, c *rqp.Client, w *e2etest.World, text string) (*rqp.Result, error) {
	return c.Push(ctx, rqp.Request{To: w.RSURL + "/incoming/bob", Content: rqp.BytesContent([]byte(text), "note.txt"), Email: e2etest.AliceEmail})
}

// stored is Bob's Incoming by message id.
func stored(t *testing.T, w *e2etest.World) map[string]e2etest.Message {
	t.Helper()
	out := map[string]e2etest.Message{}
	for _, m := range w.BobMessages(t) {
		out[m.ID] = m
	}
	return out
}

// showKeycloakLog logs the tail of the current Keycloak log when t failed.
func showKeycloakLog(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			e2etest.ShowLog(t, "keycloak", kc.LogPath)
		}
	})
}

// TestFaults breaks one part at a time while Alice pushes to Bob: nothing
// the client was told is stored may be lost, every refusal is clear, and the
// system recovers without restarting the parts that did not fail.
func TestFaults(t *testing.T) {
	showKeycloakLog(t)
	w := newWorld(t)
	parent := t // services restarted in a subtest live on
	ctx := e2etest.Timeout(t, 15*time.Minute)
	c := client(t, w, nil)
	kept := map[string]string{} // message id -> sha256 of every 201 so far

	t.Run("Resource Server killed right after a 201: the message is kept", func(t *testing.T) {
		text := "kept across a crash " + e2etest.RandomHex(8)
		res, err := push(ctx, c, w, text)
		if err != nil {
			t.Fatal(err)
		}
		kept[res.Receipt.ID] = res.Receipt.SHA256
		w.RS.Kill() // SIGKILL: no shutdown, no flush beyond what the commit did
		w.RS = e2etest.StartServiceUntil(t, parent, w.RSSpec.Spec())
		m, ok := stored(t, w)[res.Receipt.ID]
		if !ok || m.SHA256 != hexSHA([]byte(text)) || m.SenderEmail != e2etest.AliceEmail {
			t.Fatalf("after the restart Bob has %+v (found %v)", m, ok)
		}
		body, _ := w.BobGet(t, w.CachedBobToken(t), "/messages/"+res.Receipt.ID)
		if string(body) != text {
			t.Errorf("Bob reads %q", body)
		}
	})

	t.Run("Resource Server killed in the middle of pushes: every 201 is kept, each stored message intact", func(t *testing.T) {
		var mu sync.Mutex
		got := map[string]string{}
		var wg sync.WaitGroup
		killAt := make(chan struct{})
		var once sync.Once
		for g := 0; g < 6; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					res, err := push(ctx, c, w, fmt.Sprintf("worker %d message %d %s", g, i, e2etest.RandomHex(8)))
					if err != nil {
						select {
						case <-killAt: // the Resource Server is gone
						default:
							t.Errorf("push before the kill: %v", err)
						}
						return
					}
					mu.Lock()
					got[res.Receipt.ID] = res.Receipt.SHA256
					if len(got) >= 8 {
						once.Do(func() { close(killAt) })
					}
					mu.Unlock()
				}
			}()
		}
		select {
		case <-killAt:
		case <-time.After(3 * time.Minute):
			t.Fatal("no 8 pushes within 3 minutes")
		}
		w.RS.Kill()
		wg.Wait()
		w.RS = e2etest.StartServiceUntil(t, parent, w.RSSpec.Spec())
		all := stored(t, w)
		token := w.CachedBobToken(t)
		for id, sum := range got {
			if m, ok := all[id]; !ok || m.SHA256 != sum {
				t.Errorf("201 for %s, after the restart Bob has %+v (found %v)", id, m, ok)
			}
			kept[id] = sum
		}
		// Every stored message, acknowledged or caught by the kill between
		// commit and answer, is whole: its body hashes to its sha256.
		for id, m := range all {
			if body, _ := w.BobGet(t, token, "/messages/"+id); hexSHA(body) != m.SHA256 || int64(len(body)) != m.Size {
				t.Errorf("message %s: %d bytes hashing to %s, recorded %d bytes %s", id, len(body), hexSHA(body), m.Size, m.SHA256)
			}
		}
		t.Logf("%d pushes answered 201 before the kill; Bob's Incoming holds %d messages, all whole", len(got), len(all))
	})

	t.Run("Claims Provider down: a clear error, nothing stored; back up: pushes work", func(t *testing.T) {
		if err := w.CP.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		before := len(stored(t, w))
		file := filepath.Join(t.TempDir(), "cp-down.txt")
		if err := os.WriteFile(file, []byte("must not arrive"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := w.CLI(t, nil, w.PushArgs(file, "--email", e2etest.AliceEmail)...)
		if r.Code != 5 || !strings.Contains(r.LastLine(), "step 5 (claims token request): the claims provider at "+w.CPURL) || !strings.Contains(r.LastLine(), "is unreachable") {
			t.Errorf("CLI with the Claims Provider down:\n%s", r)
		}
		if after := len(stored(t, w)); after != before {
			t.Errorf("Bob's Incoming went from %d to %d", before, after)
		}
		w.CP = e2etest.StartServiceUntil(t, parent, w.CPSpec.Spec())
		res, err := push(ctx, c, w, "after the Claims Provider came back")
		if err != nil {
			t.Fatal(err)
		}
		kept[res.Receipt.ID] = res.Receipt.SHA256
	})

	t.Run("signing key rotation at the Claims Provider: old tokens until they expire, new ones after", func(t *testing.T) {
		rotation(t, parent, ctx, w, kept)
	})

	t.Run("Keycloak restarted during a push: the services recover, the client starts over once", func(t *testing.T) {
		var events []rqp.Event
		restarted := false
		var downAnswer e2etest.Answer
		rc := client(t, w, func(ev rqp.Event) {
			events = append(events, ev)
			if ev.Attempt != 1 || ev.Step != rqp.StepChallenge || restarted {
				return
			}
			// The ticket is in hand; Keycloak goes away and comes back
			// with new keys and without anything created at run time.
			restarted = true
			if err := kc.Stop(context.Background()); err != nil {
				t.Errorf("stopping Keycloak: %v", err)
			}
			downAnswer = w.RSDo(t, http.MethodPost, "/incoming/bob", "", []byte("x"), nil)
			start := time.Now()
			if err := startKeycloak(); err != nil {
				t.Errorf("starting Keycloak again: %v", err)
			}
			t.Logf("Keycloak restarted in %s", time.Since(start).Round(time.Second))
		})
		text := "across a Keycloak restart " + e2etest.RandomHex(8)
		res, err := push(ctx, rc, w, text)
		if err != nil {
			t.Fatalf("%v\nevents %+v", err, events)
		}
		// While Keycloak was down the Resource Server said so (UMA Grant 3.2.2).
		if downAnswer.Status != http.StatusForbidden || downAnswer.Err.Code != uma.ErrUnavailable ||
			downAnswer.Header.Get("Warning") != `199 - "UMA Authorization Server Unreachable"` {
			t.Errorf("with Keycloak down the Resource Server answered %s, Warning %q", downAnswer, downAnswer.Header.Get("Warning"))
		}
		if res.Attempts != 2 {
			t.Fatalf("attempts %d, want 2 (events %+v)", res.Attempts, events)
		}
		var refusal *rqp.StepError
		for _, ev := range events {
			if ev.Attempt == 1 && !ev.OK && !errors.As(ev.Err, &refusal) {
				t.Fatalf("attempt 1 failed with %+v", ev)
			}
		}
		if refusal == nil || refusal.Step != rqp.StepGrant || refusal.StatusCode != http.StatusForbidden || refusal.Code != "invalid_ticket" {
			t.Fatalf("attempt 1 ended with %+v, want Keycloak's 403 invalid_ticket for the old ticket at step 7", refusal)
		}
		kept[res.Receipt.ID] = res.Receipt.SHA256
		// The long-lived client too: its cached token of the old Keycloak is
		// refused once and renewed.
		res, err = push(ctx, c, w, "the long-lived client after the restart")
		if err != nil {
			t.Fatalf("the client of the earlier pushes: %v", err)
		}
		kept[res.Receipt.ID] = res.Receipt.SHA256
		// Nothing stored before the restart is lost; Bob logs in anew.
		w.ForgetBobToken()
		all := stored(t, w)
		for id, sum := range kept {
			if m, ok := all[id]; !ok || m.SHA256 != sum {
				t.Errorf("message %s (sha256 %s) after the restart: %+v %v", id, sum, m, ok)
			}
		}
		body, _ := w.BobGet(t, w.CachedBobToken(t), "/messages/"+res.Receipt.ID)
		if string(body) != "the long-lived client after the restart" {
			t.Errorf("Bob reads %q", body)
		}
	})
}
