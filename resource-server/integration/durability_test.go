package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/uma"
)

// TestDurabilityAfterSIGKILL builds the binary, runs it as a process, kills
// it with SIGKILL right after a 201, starts it again on the same database and
// finds the message there.
func TestDurabilityAfterSIGKILL(t *testing.T) {
	r := newRealm(t)
	p := newRSProcess(t, r)
	p.start()
	body := []byte("must survive a crash")
	ch := challenge(t, p.base, "bob")
	must(t, ch.ASURI == r.issuer, "as_uri %q, want %q (default derived from -keycloak-url)", ch.ASURI, r.issuer)
	tok := r.rpt(t, ch.Ticket, boundClaims(body))
	resp := call(t, http.MethodPost, p.base+"/incoming/bob", tok, body, nil)
	must(t, resp.status == 201, "POST: %d %s\n%s", resp.status, resp.body, p.logs())
	p.kill()
	var m uma.Message
	must(t, json.Unmarshal(resp.body, &m) == nil, "%s", resp.body)

	p.start()
	bob := r.login(t, "bob", bobPassword)
	resp = call(t, http.MethodGet, p.base+"/incoming/bob/messages/"+m.ID, bob, nil, nil)
	must(t, resp.status == 200 && string(resp.body) == string(body), "after restart: %d %q\n%s", resp.status, resp.body, p.logs())
	// And the RPT stays spent across the restart.
	resp = call(t, http.MethodPost, p.base+"/incoming/bob", tok, body, nil)
	must(t, resp.status == 401, "replay after restart: %d %s", resp.status, resp.body)
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal(fmt.Errorf("resource server at %s not ready: %v", base, err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
