package e2e

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/e2etest"
	"github.com/umawide/umawide/internal/stack"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// slowChallenge is issue 16's step 1 through the real Resource Server: its
// 401 comes later than the client's transport waits for 100 Continue (the
// Resource Server's requests for a ticket go through a proxy to Keycloak
// that holds them back that long, as a loaded machine did), and a multi-MiB
// push must still go on to the challenge with none of the content sent in
// step 1 (the Resource Server answers 401 without reading it and closes the
// connection; content sent to it was lost in a reset, and the 401 with it).
func (w *world) slowChallenge(t *testing.T) {
	kc, err := url.Parse(w.KC.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	hold := rqp.DefaultHTTPClient().Transport.(*http.Transport).ExpectContinueTimeout + time.Second
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(kc) // Host too: Keycloak's issuer stays its own
		if r.In.Method == http.MethodPost && strings.HasSuffix(r.In.URL.Path, "/authz/protection/permission") {
			time.Sleep(hold)
		}
	}}
	slowKC := httptest.NewServer(proxy)
	t.Cleanup(slowKC.Close)

	rsAddr := e2etest.FreeAddr(t)
	e2etest.StartService(t, stack.ResourceServer{
		Binary: w.Bin["resource-server"], Listen: rsAddr, KeycloakURL: slowKC.URL, Realm: w.Realm,
		DB: filepath.Join(w.Dir, "resource-server-slow.db"), LogPath: stack.LogPath(w.Dir, "resource-server-slow"),
		Extra: []string{"-issuer", w.KC.IssuerURL(w.Realm)},
	}.Spec())

	c, err := rqp.New(rqp.Config{
		AuthN:          rqp.AuthN{Issuer: w.KC.IssuerURL("foo"), ClientID: "rqp-client", ClientSecret: e2etest.RQPSecret},
		ClaimsProvider: rqp.ClaimsProvider{URL: w.CPURL},
		Registrations:  []rqp.Registration{{Issuer: w.KC.IssuerURL(w.Realm), ClientID: "rqp-client", ClientSecret: e2etest.RQPSecret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat(content(t), (8<<20)/len(content(t))+1) // 8 MiB: more than the sockets hold
	res, err := c.Push(e2etest.Timeout(t, 3*time.Minute), rqp.Request{To: "http://" + rsAddr + "/incoming/bob",
		Content: rqp.BytesContent(data, "large.bin"), Email: e2etest.AliceEmail})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstRequestBodyBytes != 0 {
		t.Errorf("step 1 sent %d content bytes to a Resource Server that did not ask for them", res.FirstRequestBodyBytes)
	}
	if res.Receipt.SHA256 != hexSHA(data) || res.Receipt.Size != int64(len(data)) {
		t.Errorf("receipt %+v", res.Receipt)
	}
}
