package resilience

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// Load: loadPushes pushes at loadConcurrency through the real stack (the rqp
// library in-process: one client, as an application would use it; 500 CLI
// processes would mostly measure process start-up on two cores).
const (
	loadPushes      = 500
	loadConcurrency = 16
)

// TestLoad: every push answered 201, exactly loadPushes messages stored,
// none lost or duplicated, each with the content pushed; no ERROR or WARN in
// the services' logs and no ERROR in Keycloak's while it ran. The figures
// are logged (go test -v).
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("500 pushes through the real stack")
	}
	showKeycloakLog(t)
	w := newWorld(t)
	warmUp(t, w)
	marks := map[string]kctest.LogMark{
		"claims-provider": kctest.MarkLog(w.CPSpec.LogPath),
		"resource-server": kctest.MarkLog(w.RSSpec.LogPath),
		"keycloak":        kctest.MarkLog(kc.LogPath),
	}
	ctx := e2etest.Timeout(t, 15*time.Minute)
	c := client(t, w, nil)

	type result struct {
		text    string
		res     *rqp.Result
		err     error
		elapsed time.Duration
	}
	jobs := make(chan int)
	results := make([]result, loadPushes)
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < loadConcurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				text := fmt.Sprintf("load message %03d of %d, %s\n", i, loadPushes, e2etest.RandomHex(8))
				t0 := time.Now()
				res, err := push(ctx, c, w, text)
				results[i] = result{text, res, err, time.Since(t0)}
			}
		}()
	}
	for i := 0; i < loadPushes; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	total := time.Since(start)

	want := map[string]string{} // sha256 -> text
	ids := map[string]bool{}
	var lat []time.Duration
	retried, failed := 0, 0
	for i, r := range results {
		if r.err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("push %d: %v", i, r.err)
			}
			continue
		}
		if ids[r.res.Receipt.ID] {
			t.Errorf("push %d: message id %s given twice", i, r.res.Receipt.ID)
		}
		ids[r.res.Receipt.ID] = true
		want[hexSHA([]byte(r.text))] = r.text
		if r.res.Receipt.SHA256 != hexSHA([]byte(r.text)) {
			t.Errorf("push %d: receipt sha256 %s", i, r.res.Receipt.SHA256)
		}
		if r.res.Attempts > 1 {
			retried++
		}
		lat = append(lat, r.elapsed)
	}
	if failed > 0 {
		t.Fatalf("%d of %d pushes failed", failed, loadPushes)
	}

	msgs := w.BobMessages(t)
	if len(msgs) != loadPushes {
		t.Errorf("Bob's Incoming holds %d messages, want exactly %d", len(msgs), loadPushes)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if !ids[m.ID] || seen[m.ID] {
			t.Errorf("stored message %s: acknowledged %v, listed twice %v", m.ID, ids[m.ID], seen[m.ID])
		}
		seen[m.ID] = true
		if _, ok := want[m.SHA256]; !ok || m.SenderEmail != e2etest.AliceEmail {
			t.Errorf("stored message %s: sha256 %s, sender %s", m.ID, m.SHA256, m.SenderEmail)
		}
		delete(want, m.SHA256)
	}
	if len(want) != 0 {
		t.Errorf("%d pushed contents are not in Bob's Incoming", len(want))
	}
	// Spot-check the stored bodies.
	token := w.CachedBobToken(t)
	for _, m := range msgs[:min(len(msgs), 20)] {
		if body, _ := w.BobGet(t, token, "/messages/"+m.ID); hexSHA(body) != m.SHA256 {
			t.Errorf("message %s: body hashes to %s", m.ID, hexSHA(body))
		}
	}

	for name, mark := range marks {
		var bad []string
		if name == "keycloak" {
			bad = append(mark.Lines(" ERROR "), mark.Lines("claims-token policy denied")...)
		} else {
			bad = append(mark.Lines("level=ERROR"), mark.Lines("level=WARN")...)
		}
		for i, l := range bad {
			if i < 5 {
				t.Errorf("%s log: %s", name, strings.TrimSpace(l))
			}
		}
		if len(bad) > 5 {
			t.Errorf("%s log: %d such lines", name, len(bad))
		}
	}

	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(time.Millisecond) }
	t.Logf("%d pushes at concurrency %d in %s: %.1f pushes/s; per push p50 %s, p95 %s, max %s; %d started over once",
		loadPushes, loadConcurrency, total.Round(time.Millisecond), float64(loadPushes)/total.Seconds(), pct(0.5), pct(0.95), pct(1), retried)
}

// warmUp waits until the AS grants for this world's Claims Provider (one
// grant, nothing stored). Each world's Claims Provider has a fresh key at the
// same address, and the AS refetches a JWKS at most every
// jwksMinRefreshSeconds (10 s): right after the previous test's grants it
// refuses the new key's tokens for up to that long.
func warmUp(t *testing.T, w *e2etest.World) {
	start := time.Now()
	for {
		ticket := w.Ticket(t, "bob")
		ct := w.ClaimsToken(t, w.ClientToken(t), ticket, e2etest.AliceEmail, "")
		_, te := w.Grant(t, "", e2etest.GrantForm(ticket, w.PushedFor("bob", ct, boundTo("warm-up"))))
		if te == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the AS still refuses this Claims Provider's tokens: %v", te)
		}
		time.Sleep(time.Second)
	}
	t.Logf("the AS granted for this Claims Provider after %s", time.Since(start).Round(time.Millisecond))
}
