package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/rpt/rpttest"
	"github.com/umawide/umawide/resource-server/internal/store"
)

// lookupCounter counts the single-use look-ups before the body is read.
type lookupCounter struct {
	store.Store
	lookups atomic.Int64
}

func (c *lookupCounter) GrantUsed(ctx context.Context, grantID string) (bool, error) {
	c.lookups.Add(1)
	return c.Store.GrantUsed(ctx, grantID)
}

// An RPT of a spent grant is refused with the same answer whatever the
// size; only a body larger than PrecheckBytes is looked up first, and
// then not read at all (Expect: 100-continue: no byte of it is sent).
func TestReplayPrecheckOnlyForLargeBodies(t *testing.T) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "rs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	counted := &lookupCounter{Store: st}
	signer := rpttest.New(asURI)
	v, _ := rpt.New(rpt.Config{Issuer: asURI, Audience: "resource-server", Keys: signer.Keys(), GrantMACKey: rpttest.MACKey})
	s, err := New(Config{
		Realm: "bar", ASURI: asURI, PublicURL: publicURL, IsUnknownOwner: func(error) bool { return false },
		Store: counted, Protection: &fakeProt{}, Verifier: v, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = 5 * time.Second
	client := &http.Client{Transport: tr}

	post := func(tok string, body []byte) (int, string, int64) {
		t.Helper()
		cb := &countingBody{r: bytes.NewReader(body)}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/incoming/bob", cb)
		req.ContentLength = int64(len(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Expect", "100-continue")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(data), cb.n.Load()
	}
	for _, tc := range []struct {
		name    string
		size    int
		lookups int64 // per request
	}{
		{"small", 1024, 0},
		{"at the bound", PrecheckBytes, 0},
		{"large", PrecheckBytes + 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("x"), tc.size)
			tok := signer.RPT(bound("rid-bob", body, nil), nil)
			before := counted.lookups.Load()
			if status, out, _ := post(tok, body); status != http.StatusCreated {
				t.Fatalf("first use: %d %s", status, out)
			}
			status, out, sent := post(tok, body)
			if status != http.StatusUnauthorized || !strings.Contains(out, "already used") {
				t.Fatalf("second use: %d %s", status, out)
			}
			if n := counted.lookups.Load() - before; n != 2*tc.lookups {
				t.Fatalf("%d look-ups for two requests, want %d", n, 2*tc.lookups)
			}
			if tc.lookups > 0 && sent != 0 {
				t.Fatalf("the spent RPT's %d-byte body was sent (%d bytes): it should be refused unread", tc.size, sent)
			}
		})
	}
	list, _ := st.List(context.Background(), rpttest.UserID("bob"), 0)
	if len(list) != 3 {
		t.Fatalf("%d messages stored, want 3 (one per RPT)", len(list))
	}
}
