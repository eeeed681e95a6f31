package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/umawide/umawide/internal/uma"
)

// TestWebFinger: the Resource Server answers WebFinger (issue 14) for the
// users of its realm on the real Keycloak, and the links it gives are the
// ones a push then meets: the challenge's as_uri is the uma-as link and the
// ticket's incoming_uri the incoming link. Unknown, disabled and service
// account users, and other domains, get 404; an honest query after each
// refusal still succeeds.
func TestWebFinger(t *testing.T) {
	r := newRealm(t)
	r.createUser(t, "carol")
	r.createUser(t, "dave")
	s := r.startRS(t, rsOptions{domain: "bar.example"})

	query := func(resource string) response {
		return call(t, http.MethodGet, s.url+uma.WebFingerPath+"?resource="+url.QueryEscape(resource), "", nil, nil)
	}
	jrdOf := func(resource string) uma.JRD {
		t.Helper()
		a := query(resource)
		if a.status != http.StatusOK || a.header.Get("Content-Type") != uma.ContentTypeJRD || a.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("WebFinger %s: %d %v %s", resource, a.status, a.header, a.body)
		}
		var j uma.JRD
		if err := json.Unmarshal(a.body, &j); err != nil {
			t.Fatal(err)
		}
		return j
	}

	for _, owner := range []string{"bob", "carol"} {
		j := jrdOf("acct:" + owner + "@bar.example")
		if j.Subject != "acct:"+owner+"@bar.example" || len(j.Links) != 2 {
			t.Fatalf("JRD %+v", j)
		}
		if got := j.Link(uma.RelUMAAS); got != r.issuer {
			t.Fatalf("uma-as link %q, want %q", got, r.issuer)
		}
		incoming := j.Link(uma.RelIncoming)
		if incoming != s.url+"/incoming/"+owner {
			t.Fatalf("incoming link %q", incoming)
		}
		ch := challenge(t, s.url, owner)
		if ch.ASURI != j.Link(uma.RelUMAAS) {
			t.Fatalf("challenge as_uri %q, WebFinger says %q", ch.ASURI, j.Link(uma.RelUMAAS))
		}
		if got := ticketIncomingURI(t, ch.Ticket); got != incoming {
			t.Fatalf("ticket incoming_uri %q, WebFinger says %q", got, incoming)
		}
	}

	// dave is disabled: no account to push to.
	id := r.userID(t, "dave")
	if err := r.kc.Admin(ctxT(t), http.MethodPut, "/"+r.realm+"/users/"+id, map[string]any{"enabled": false}, nil); err != nil {
		t.Fatal(err)
	}
	for _, resource := range []string{
		"acct:nobody@bar.example",
		"acct:dave@bar.example",
		"acct:service-account-resource-server@bar.example",
		"acct:bob@foo.example",
		"acct:bob@sub.bar.example",
	} {
		if a := query(resource); a.status != http.StatusNotFound || a.errorCode() != uma.ErrNotFound {
			t.Fatalf("WebFinger %s: %d %s", resource, a.status, a.body)
		}
		if j := jrdOf("acct:bob@bar.example"); j.Link(uma.RelIncoming) == "" {
			t.Fatal("honest query after a refusal")
		}
	}
}
