package server

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/umawide/umawide/internal/uma"
)

// fakeProt keeps resource attributes in memory (rules.Resources): the
// handlers' checks are what is tested here; the protection API itself in
// resource-server/integration and e2e.
var attrs = struct {
	sync.Mutex
	m map[*fakeProt]map[string]map[string][]string
}{m: map[*fakeProt]map[string]map[string][]string{}}

func (f *fakeProt) ResourceAttributes(_ context.Context, id string) (map[string][]string, error) {
	if f.down.Load() {
		return nil, errDown
	}
	attrs.Lock()
	defer attrs.Unlock()
	return maps.Clone(attrs.m[f][id]), nil
}

func (f *fakeProt) ReplaceResourceAttributes(_ context.Context, id, prefix string, a map[string][]string) error {
	if f.down.Load() {
		return errDown
	}
	attrs.Lock()
	defer attrs.Unlock()
	if attrs.m[f] == nil {
		attrs.m[f] = map[string]map[string][]string{}
	}
	cur := attrs.m[f][id]
	if cur == nil {
		cur = map[string][]string{}
	}
	maps.DeleteFunc(cur, func(k string, _ []string) bool { return strings.HasPrefix(k, prefix) })
	maps.Copy(cur, a)
	attrs.m[f][id] = cur
	return nil
}

func TestRulesAPI(t *testing.T) {
	e := newEnv(t, 0)
	bob := e.signer.Reader("bob", "incoming-app", nil)
	carol := e.signer.Reader("carol", "incoming-app", nil)
	jsonHdr := map[string]string{"Content-Type": "application/json"}

	r := e.do(http.MethodGet, "/incoming/bob/rules", bob, nil, nil)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"default":"anyone","allow":[],"deny":[],"quota":{"messages_per_day":0,"bytes_per_day":0}}` {
		t.Fatalf("GET before any PUT: %d %s", r.status, r.body)
	}
	put := []byte(`{"default":"listed","allow":["Alice@Foo.Example"],"deny":["evil.example"],"quota":{"messages_per_day":5,"bytes_per_day":1000}}`)
	r = e.do(http.MethodPut, "/incoming/bob/rules", bob, put, jsonHdr)
	var got uma.OwnerRules
	if r.status != 200 || json.Unmarshal(r.body, &got) != nil || got.Allow[0] != "alice@foo.example" || got.Quota.BytesPerDay != 1000 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodGet, "/incoming/bob/rules", bob, nil, nil)
	var read uma.OwnerRules
	if r.status != 200 || json.Unmarshal(r.body, &read) != nil || read.Default != "listed" || read.Deny[0] != "evil.example" {
		t.Fatalf("GET after PUT: %d %s", r.status, r.body)
	}

	for _, c := range []struct {
		name, method, path, token string
		body                      []byte
		hdr                       map[string]string
		status                    int
		want                      string
	}{
		{"carol reads bob's rules", http.MethodGet, "/incoming/bob/rules", carol, nil, nil, 403, "access_denied"},
		{"carol changes bob's rules", http.MethodPut, "/incoming/bob/rules", carol, []byte(`{"default":"anyone"}`), jsonHdr, 403, "access_denied"},
		{"no token", http.MethodGet, "/incoming/bob/rules", "", nil, nil, 401, "unauthorized"},
		{"other client", http.MethodPut, "/incoming/bob/rules", e.signer.Reader("bob", "rqp-client", nil), []byte(`{"default":"anyone"}`), jsonHdr, 403, "access_denied"},
		{"unknown owner", http.MethodGet, "/incoming/nobody/rules", bob, nil, nil, 404, "not_found"},
		{"not JSON", http.MethodPut, "/incoming/bob/rules", bob, []byte(`default=anyone`), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "invalid_request"},
		{"bad entry", http.MethodPut, "/incoming/bob/rules", bob, []byte(`{"default":"anyone","deny":["ok.example","not valid"]}`), jsonHdr, 400, "deny[1]"},
		{"bad default", http.MethodPut, "/incoming/bob/rules", bob, []byte(`{"default":"everyone"}`), jsonHdr, 400, "default"},
		{"bad quota", http.MethodPut, "/incoming/bob/rules", bob, []byte(`{"default":"anyone","quota":{"bytes_per_day":-1}}`), jsonHdr, 400, "quota.bytes_per_day"},
	} {
		r := e.do(c.method, c.path, c.token, c.body, c.hdr)
		if r.status != c.status || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.status, c.want)
		}
	}
	// No refusal changed anything; Carol's own rules are hers.
	r = e.do(http.MethodGet, "/incoming/bob/rules", bob, nil, nil)
	if !strings.Contains(string(r.body), `"default":"listed"`) {
		t.Fatalf("rules changed by a refusal: %s", r.body)
	}
	if r = e.do(http.MethodPut, "/incoming/carol/rules", carol, []byte(`{"default":"nobody"}`), jsonHdr); r.status != 200 {
		t.Fatalf("carol's own: %d %s", r.status, r.body)
	}
	e.prot.down.Store(true)
	if r = e.do(http.MethodGet, "/incoming/bob/rules", bob, nil, nil); r.status == 200 || r.err().Code != uma.ErrUnavailable {
		t.Fatalf("Keycloak down: %d %s", r.status, r.body)
	}
}
