package resilience

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/kctest"
	"github.com/umawide/umawide/internal/uma"
)

// kidOf is the kid of a compact JWS.
func kidOf(t *testing.T, jws string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(jws, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var header struct{ Kid string }
	if err := json.Unmarshal(h, &header); err != nil {
		t.Fatal(err)
	}
	return header.Kid
}

// published are the kids of the Claims Provider's JWKS.
func published(t *testing.T, w *e2etest.World) []string {
	t.Helper()
	req, _ := http.NewRequestWithContext(e2etest.Timeout(t, time.Minute), http.MethodGet, w.CPURL+"/jwks", nil)
	a := e2etest.Do(t, req)
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal(a.Body, &set); err != nil {
		t.Fatalf("JWKS: %s", a)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// boundTo is the content binding of text, as an honest client pushes it.
func boundTo(text string) map[string]string {
	return map[string]string{uma.ClaimContentSHA256: hexSHA([]byte(text)), uma.ClaimContentLength: fmt.Sprint(len(text)), uma.ClaimContentType: "text/plain"}
}

// postBound grants an RPT for ticket with the claims token and a content's
// metadata, and stores the content with it.
func postBound(t *testing.T, w *e2etest.World, ticket, claimsToken, text string) e2etest.Message {
	t.Helper()
	meta := boundTo(text)
	rpt, te := w.Grant(t, "", e2etest.GrantForm(ticket, w.PushedFor("bob", claimsToken, meta)))
	if te != nil {
		t.Fatalf("grant: %v", te)
	}
	a := w.RSDo(t, http.MethodPost, "/incoming/bob", rpt, []byte(text), http.Header{"Content-Type": {"text/plain"}})
	var m e2etest.Message
	if a.Status != http.StatusCreated || json.Unmarshal(a.Body, &m) != nil {
		t.Fatalf("POST with the RPT: %s", a)
	}
	return m
}

// rotation: the Claims Provider, running with 5-second claims tokens, makes
// a new signing key (`claims-provider rotate`) and reloads it (SIGHUP).
// A token the old key signed still gets an RPT; one that expired does not;
// the new key signs from then on and its tokens get RPTs, the AS fetching
// the new key by itself.
func rotation(t *testing.T, parent testing.TB, ctx context.Context, w *e2etest.World, kept map[string]string) {
	normal := w.CPSpec
	short := w.CPSpec
	short.Extra = append(slices.Clone(short.Extra), "-lifetime", "5s")
	if err := w.CP.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	w.CP = e2etest.StartServiceUntil(t, parent, short.Spec())
	defer func() {
		if err := w.CP.Stop(ctx); err != nil {
			t.Error(err)
		}
		w.CP = e2etest.StartServiceUntil(t, parent, normal.Spec())
	}()

	bearer := w.ClientToken(t)
	ticket1, ticket2 := w.Ticket(t, "bob"), w.Ticket(t, "bob")
	old1 := w.ClaimsToken(t, bearer, ticket1, e2etest.AliceEmail, "")
	old2 := w.ClaimsToken(t, bearer, ticket2, e2etest.AliceEmail, "")
	oldKid := kidOf(t, old1)

	out, err := exec.CommandContext(ctx, w.Bin["claims-provider"], "rotate", "-key-dir", normal.KeyDir).Output()
	if err != nil {
		t.Fatalf("claims-provider rotate: %v", err)
	}
	newKid := strings.TrimSpace(string(out))
	if err := syscall.Kill(w.CP.PID, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	want := []string{oldKid, newKid}
	slices.Sort(want)
	for deadline := time.Now().Add(20 * time.Second); !slices.Equal(published(t, w), want); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("JWKS after rotate + SIGHUP: %v, want %v", published(t, w), want)
		}
	}

	text := "signed by the old key " + e2etest.RandomHex(6)
	m := postBound(t, w, ticket1, old1, text)
	kept[m.ID] = m.SHA256

	// old2 expires; the AS allows 30 s of clock skew beyond exp.
	claims, err := kctest.Claims(old2)
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := claims["exp"].(float64)
	time.Sleep(time.Until(time.Unix(int64(exp), 0).Add(31 * time.Second)))
	mark := kctest.MarkLog(kc.LogPath)
	if rpt, te := w.Grant(t, "", e2etest.GrantForm(ticket2, w.PushedFor("bob", old2, boundTo("expired")))); te == nil || te.StatusCode != http.StatusForbidden {
		t.Fatalf("expired token of the old key: RPT %d characters, %v; want 403", len(rpt), te)
	}
	mark.ExpectDenial(t, 10*time.Second, "expired", "bar")

	ticket3 := w.Ticket(t, "bob")
	fresh := w.ClaimsToken(t, w.ClientToken(t), ticket3, e2etest.AliceEmail, "")
	if kid := kidOf(t, fresh); kid != newKid {
		t.Fatalf("after the rotation the Claims Provider signs with %s, want %s", kid, newKid)
	}
	text = "signed by the new key " + e2etest.RandomHex(6)
	m = postBound(t, w, ticket3, fresh, text)
	kept[m.ID] = m.SHA256
}
