package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/rpt"
	"github.com/umawide/umawide/resource-server/internal/rpt/rpttest"
	"github.com/umawide/umawide/resource-server/internal/store"
)

// Placeholders in the Authorization input of FuzzIncomingRequest, replaced
// by freshly signed tokens of the realm (the fuzzer cannot forge them): an
// RPT for bob's Incoming without content binding, one bound to the request's
// body, and Bob's own access token for reading.
const (
	rptPlaceholder    = "$RPT"
	boundPlaceholder  = "$BOUND"
	readerPlaceholder = "$READER"
)

// FuzzIncomingRequest sends arbitrary requests (method, request-target and
// headers as on the wire) to the Resource Server's handlers, with bob's
// Incoming the only one a valid token opens. Whatever comes in: no panic and
// no 500; every refusal is JSON with an error code and a known status, a 401
// carries a challenge; a message is stored (201) only by POST to exactly
// bob's Incoming with one of his valid RPTs, and then it is the body that
// was sent; a 200 only for Bob reading his own Incoming (or the health,
// readiness and metrics endpoints); nothing is stored by any other answer. Seed corpus: testdata/fuzz/FuzzIncomingRequest.
func FuzzIncomingRequest(f *testing.F) {
	f.Add("POST", "/incoming/bob", "Bearer "+rptPlaceholder, "text/plain", `attachment; filename="a.txt"`, []byte("hello"))
	f.Add("POST", "/incoming/bob", "Bearer "+boundPlaceholder, "text/plain; charset=utf-8", "", []byte("bound"))
	f.Add("POST", "/incoming/Bob", "Bearer "+rptPlaceholder, "", "", []byte("x"))
	f.Add("POST", "/incoming/b%6fb", "Bearer "+rptPlaceholder, "", "", []byte("x"))
	f.Add("POST", "/incoming/carol", "Bearer "+rptPlaceholder, "", "", []byte("x"))
	f.Add("GET", "/incoming/bob/messages?limit=5", "Bearer "+readerPlaceholder, "", "", []byte(nil))
	f.Add("POST", "/incoming/bob", "", "", "", []byte("no token"))
	f.Add("POST", "/incoming/bob", "Bearer "+rptPlaceholder, "text/html", `attachment; filename="..\\..\\x"`, []byte("<script>"))
	st, err := store.OpenSQLite(context.Background(), filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	signer := rpttest.New(asURI)
	v, err := rpt.New(rpt.Config{Issuer: asURI, Audience: "resource-server", Keys: signer.Keys(), GrantMACKey: rpttest.MACKey})
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{
		Realm: "bar", ASURI: asURI, PublicURL: publicURL, MaxBody: 1 << 16, ReaderClients: []string{"incoming-app"},
		IsUnknownOwner: func(err error) bool { return errors.Is(err, errUnknown) },
		Store:          st, Protection: &fakeProt{}, Verifier: v,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	sender := map[string][]string{"sender_email": {"alice@foo.example"}, "sender_iss": {"https://cp.foo.example"}}
	newest := func(t *testing.T) string {
		list, err := st.List(context.Background(), rpttest.UserID("bob"), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			return ""
		}
		return list[0].ID
	}
	f.Fuzz(func(t *testing.T, method, target, auth, contentType, disposition string, body []byte) {
		// rptPlaceholder: a sender without binding, URL or grant (refused).
		valid := strings.Contains(auth, boundPlaceholder)
		reader := strings.Contains(auth, readerPlaceholder)
		auth = strings.ReplaceAll(auth, rptPlaceholder, signer.RPT([]rpttest.Perm{{RSID: "rid-bob", Claims: sender}}, nil))
		auth = strings.ReplaceAll(auth, boundPlaceholder, signer.RPT(bound("rid-bob", body, nil), nil))
		auth = strings.ReplaceAll(auth, readerPlaceholder, signer.Reader("bob", "incoming-app", nil))
		var b strings.Builder
		b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: rs.test\r\n")
		for k, v := range map[string]string{"Authorization": auth, "Content-Type": contentType, "Content-Disposition": disposition} {
			if v != "" {
				b.WriteString(k + ": " + v + "\r\n")
			}
		}
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
		b.Write(body)
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(b.String())))
		if err != nil {
			return // Go's server answers 400 itself
		}
		req.RemoteAddr = "192.0.2.1:1234"
		before := newest(t)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		after := newest(t)

		var e struct{ Error string }
		switch rec.Code {
		case http.StatusCreated:
			var m uma.Message
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if !valid || req.Method != http.MethodPost || req.URL.Path != "/incoming/bob" || req.URL.RawPath != "" {
				t.Fatalf("201 for %s %q with Authorization %q", req.Method, target, auth)
			}
			if m.Owner != "bob" || m.SHA256 != hexSum(body) || m.Size != int64(len(body)) || m.ID != after || after == before {
				t.Fatalf("stored %+v for a body of %d bytes (newest %s, before %s)", m, len(body), after, before)
			}
			return
		case http.StatusOK:
			public := req.Method == http.MethodGet && (req.URL.Path == "/healthz" || req.URL.Path == "/readyz" || req.URL.Path == "/metrics")
			if !public && (!reader || req.Method != http.MethodGet || !strings.HasPrefix(req.URL.Path, "/incoming/bob/messages")) {
				t.Fatalf("200 for %s %q with Authorization %q", req.Method, target, auth)
			}
		case http.StatusUnauthorized:
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("401 without a challenge for %s %q", req.Method, target)
			}
			if strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "UMA ") {
				if _, err := uma.ParseChallenge(rec.Header()); err != nil {
					t.Fatalf("challenge %q: %v", rec.Header().Get("WWW-Authenticate"), err)
				}
			}
			fallthrough
		case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%d with body %q", rec.Code, rec.Body.Bytes())
			}
		default:
			t.Fatalf("status %d for %s %q: %s", rec.Code, req.Method, target, rec.Body.Bytes())
		}
		if after != before {
			t.Fatalf("%d, yet a message was stored (%s %q)", rec.Code, req.Method, target)
		}
	})
}

// FuzzSafeFileName: a name it keeps is one path element, printable, of
// bounded length, never "." or "..".
func FuzzSafeFileName(f *testing.F) {
	for _, s := range []string{"report.pdf", "../../etc/passwd", `C:\x\y.txt`, "a\u202eb.txt", " . ", "..", "x\x00y", "ｆｕｌｌ.txt"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := SafeFileName(in)
		if !ok {
			return
		}
		if out == "" || out == "." || out == ".." || len(out) > store.MaxFileNameLen || strings.ContainsAny(out, `/\`) ||
			out != strings.TrimSpace(out) || !strings.Contains(in, out) || !utf8.ValidString(out) {
			t.Fatalf("SafeFileName(%q) = %q", in, out)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
				t.Fatalf("SafeFileName(%q) = %q keeps %U", in, out, r)
			}
		}
	})
}
