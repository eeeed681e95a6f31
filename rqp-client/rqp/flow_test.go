package rqp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/formlogin"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/rqp-client/internal/umafake"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// config is a client-credentials configuration for the fake stack.
func config(s *umafake.Stack, events *[]rqp.Event) rqp.Config {
	return rqp.Config{
		AuthN:          rqp.AuthN{Issuer: s.Issuer("foo"), ClientID: umafake.ClientID, ClientSecret: umafake.AuthNSecret},
		ClaimsProvider: rqp.ClaimsProvider{URL: s.CP.URL},
		Registrations:  []rqp.Registration{{Issuer: s.Issuer("bar"), ClientID: umafake.ClientID, ClientSecret: umafake.ASSecret}},
		Timeout:        5 * time.Second,
		Progress: func(ev rqp.Event) {
			if events != nil {
				*events = append(*events, ev)
			}
		},
	}
}

func newClient(t *testing.T, cfg rqp.Config) *rqp.Client {
	t.Helper()
	c, err := rqp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hexSHA(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// secretsIn lists the secrets and tokens a message must never contain.
func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{umafake.AuthNSecret, umafake.ASSecret, "eyJ"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains a secret or token (%q): %s", what, secret, s)
		}
	}
}

func TestPushClientCredentials(t *testing.T) {
	s := umafake.New(t)
	var events []rqp.Event
	c := newClient(t, config(s, &events))
	data := []byte("Hello Bob,\nthe minutes of Tuesday.\n")
	res, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent(data, "minutes.txt"), Email: umafake.AliceEmail})
	if err != nil {
		t.Fatal(err)
	}
	stored := s.StoredMessages()
	if len(stored) != 1 || !bytes.Equal(stored[0].Body, data) {
		t.Fatalf("stored %+v", stored)
	}
	if res.Receipt.ID != stored[0].ID || res.Receipt.SHA256 != hexSHA(data) || res.Receipt.SenderEmail != umafake.AliceEmail {
		t.Fatalf("receipt %+v", res.Receipt)
	}
	if want := s.RS.URL + "/incoming/bob/messages/" + stored[0].ID; res.Location != want {
		t.Errorf("Location %q, want %q", res.Location, want)
	}
	if res.Attempts != 1 || res.ASURI != s.Issuer("bar") || res.ClaimsEndpoint != s.CP.URL+"/claims/token" {
		t.Errorf("result %+v", res)
	}
	if res.FirstRequestBodyBytes != 0 {
		t.Errorf("step 1 sent %d content bytes; Expect: 100-continue should have held them back", res.FirstRequestBodyBytes)
	}
	if stored[0].FileName != "minutes.txt" || !strings.HasPrefix(stored[0].ContentType, "text/plain") {
		t.Errorf("stored metadata %q %q", stored[0].FileName, stored[0].ContentType)
	}

	// Step 5: the form the Claims Provider got.
	forms := s.CPForms()
	if len(forms) != 1 {
		t.Fatalf("%d claims requests", len(forms))
	}
	f := forms[0]
	if f.Get(uma.FormEmail) != umafake.AliceEmail || f.Get(uma.FormAudience) != s.Issuer("bar") || !uma.ValidTicketDigest(f.Get(uma.FormTicketDigest)) {
		t.Errorf("claims request form %v", f)
	}
	// Step 7: the grant and the pushed claims.
	as := s.ASForms()
	if len(as) != 1 || uma.TicketDigest(as[0].Get(uma.FormTicket)) != f.Get(uma.FormTicketDigest) {
		t.Fatalf("grant forms %v; the claims token must be bound to the ticket sent", as)
	}
	p := s.Pushed()[0]
	want := map[string]string{
		uma.ClaimContentSHA256: hexSHA(data),
		uma.ClaimContentLength: fmt.Sprint(len(data)),
		uma.ClaimContentType:   res.ContentType,
		uma.ClaimFileName:      "minutes.txt",
		uma.ClaimIncomingURI:   s.IncomingURL(umafake.Owner),
	}
	for k, v := range want {
		if p.Get(k) != v {
			t.Errorf("pushed %s = %q, want %q", k, p.Get(k), v)
		}
	}
	if p.Get(uma.ClaimClaimsToken) == "" || len(p) != 6 {
		t.Errorf("pushed claims %v", p)
	}

	// Progress: steps 1-10 in order, all OK, no tokens or secrets.
	if len(events) != 10 {
		t.Fatalf("%d events: %+v", len(events), events)
	}
	for i, ev := range events {
		if ev.Step != i+1 || !ev.OK || ev.Attempt != 1 || ev.Name != rqp.StepName(i+1) || ev.Status == "" {
			t.Errorf("event %d: %+v", i, ev)
		}
		assertNoSecrets(t, "event detail", ev.Detail)
	}
	if events[0].Status != "401 Unauthorized" || events[8].Status != "201 Created" {
		t.Errorf("statuses %q, %q", events[0].Status, events[8].Status)
	}
}

// browser returns an OpenURL hook that logs in like a browser would.
func browser(user, password string) func(context.Context, string) error {
	return formlogin.OpenURL(user, password, nil)
}

func TestPushLogin(t *testing.T) {
	s := umafake.New(t)
	cfg := config(s, nil)
	cfg.AuthN.ClientSecret = umafake.AuthNSecret
	cfg.AuthN.Login = &rqp.Login{OpenURL: browser("alice", umafake.AlicePassword), Timeout: 10 * time.Second}
	cfg.ClaimsProvider = rqp.ClaimsProvider{DiscoveryBaseURL: s.CP.URL} // the domain comes from the login
	c := newClient(t, cfg)
	res, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("x"), "")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Receipt.SenderEmail != umafake.AliceEmail {
		t.Errorf("receipt %+v", res.Receipt)
	}
	f := s.CPForms()[0]
	if f.Has("email") {
		t.Errorf("with a user token the client sent email %q it was not given", f.Get(uma.FormEmail))
	}
}

func TestPushLoginEmailMismatch(t *testing.T) {
	s := umafake.New(t)
	cfg := config(s, nil)
	cfg.AuthN.Login = &rqp.Login{OpenURL: browser("alice", umafake.AlicePassword), Timeout: 10 * time.Second}
	c := newClient(t, cfg)
	_, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("x"), ""), Email: "mallory@foo.example"})
	var se *rqp.StepError
	if !errors.As(err, &se) || se.Step != rqp.StepAccessToken || !errors.Is(err, rqp.ErrConfig) {
		t.Fatalf("err = %v", err)
	}
	if s.Count("cp.token") != 0 {
		t.Error("the Claims Provider was asked although the login and the email differ")
	}
}

func TestPushLoginWrongPassword(t *testing.T) {
	s := umafake.New(t)
	cfg := config(s, nil)
	cfg.AuthN.Login = &rqp.Login{OpenURL: browser("alice", "wrong"), Timeout: 10 * time.Second}
	c := newClient(t, cfg)
	_, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("x"), "")})
	if !errors.Is(err, rqp.ErrLogin) || !strings.Contains(err.Error(), "Invalid username or password") {
		t.Fatalf("err = %v", err)
	}
	if len(s.StoredMessages()) != 0 {
		t.Fatal("stored")
	}
}

func TestRetryOnceWithFreshTicket(t *testing.T) {
	s := umafake.New(t)
	var events []rqp.Event
	cfg := config(s, &events)
	// The first ticket expires while the client works on it.
	expired := false
	cfg.Progress = func(ev rqp.Event) {
		events = append(events, ev)
		if ev.Step == rqp.StepChallenge && !expired {
			expired = true
			s.ExpireTickets()
		}
	}
	c := newClient(t, cfg)
	res, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("data"), "a.bin"), Email: umafake.AliceEmail})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || len(s.StoredMessages()) != 1 {
		t.Fatalf("attempts %d, stored %d", res.Attempts, len(s.StoredMessages()))
	}
	if n := s.UnauthedPosts(); n != 2 {
		t.Errorf("%d requests without token, want 2 (one per ticket)", n)
	}
	if n := s.Count("kc.token"); n != 1 {
		t.Errorf("the AuthN token was asked %d times; the second attempt should reuse it", n)
	}
	if n := s.Count("cp.token"); n != 2 {
		t.Errorf("%d claims tokens, want 2 (each bound to its ticket)", n)
	}
	var retried bool
	for _, ev := range events {
		if ev.Step == rqp.StepGrant && ev.Attempt == 1 {
			retried = !ev.OK && ev.Retry && strings.Contains(ev.Status, "invalid_ticket")
		}
	}
	if !retried {
		t.Errorf("no failed step 7 with Retry in attempt 1: %+v", events)
	}
	last := events[len(events)-1]
	if last.Step != rqp.StepCreated || last.Attempt != 2 || !last.OK {
		t.Errorf("last event %+v", last)
	}
	// StepTimes: each step's events of both attempts, the failed one too.
	var sum [rqp.NumSteps + 1]time.Duration
	for _, ev := range events {
		sum[ev.Step] += ev.Duration
	}
	sum[0] = res.StepTimes[0]
	if res.StepTimes != sum {
		t.Errorf("StepTimes %v, the events' durations sum to %v", res.StepTimes, sum)
	}
}

// Without a progress callback no event is made, and the step times are
// still there.
func TestStepTimesWithoutProgress(t *testing.T) {
	s := umafake.New(t)
	cfg := config(s, nil)
	cfg.Progress = nil
	c := newClient(t, cfg)
	res, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("data"), "a.bin"), Email: umafake.AliceEmail})
	if err != nil {
		t.Fatal(err)
	}
	// The steps that are HTTP exchanges take time on any clock.
	for _, step := range []int{rqp.StepRequest, rqp.StepClaimsRequest, rqp.StepGrant, rqp.StepPost} {
		if res.StepTimes[step] <= 0 {
			t.Errorf("step %d took %v", step, res.StepTimes[step])
		}
	}
}

func TestRetryOnlyOnce(t *testing.T) {
	s := umafake.New(t)
	s.Hook("as.token", func(w http.ResponseWriter, r *http.Request) bool {
		umafake.Error(w, 403, "invalid_ticket", "Invalid permission ticket.")
		return true
	})
	c := newClient(t, config(s, nil))
	_, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("data"), ""), Email: umafake.AliceEmail})
	var se *rqp.StepError
	if !errors.As(err, &se) || se.Step != rqp.StepGrant || se.Attempt != 2 || !se.Retryable() || !errors.Is(err, rqp.ErrDenied) {
		t.Fatalf("err = %#v", err)
	}
	if n := s.Count("as.token"); n != 2 {
		t.Errorf("the AS was asked %d times, want 2", n)
	}
}

func TestRetryOnUMAInvalidGrant(t *testing.T) {
	s := umafake.New(t)
	first := true
	s.Hook("as.token", func(w http.ResponseWriter, r *http.Request) bool {
		if first {
			first = false
			umafake.Error(w, 400, "invalid_grant", "the permission ticket has expired")
			return true
		}
		return false
	})
	c := newClient(t, config(s, nil))
	res, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("d"), ""), Email: umafake.AliceEmail})
	if err != nil || res.Attempts != 2 {
		t.Fatalf("res %+v, err %v", res, err)
	}
}

func TestNoRetryWhenDenied(t *testing.T) {
	s := umafake.New(t)
	c := newClient(t, config(s, nil))
	// The fake AS trusts foo.example only; a Claims Provider that vouches
	// for another domain is denied.
	s.Hook("cp.token", func(w http.ResponseWriter, r *http.Request) bool {
		_ = r.ParseForm()
		tok := umafake.JWT(map[string]any{"iss": s.CP.URL, "aud": r.PostForm.Get(uma.FormAudience), "ticket_digest": r.PostForm.Get(uma.FormTicketDigest),
			"email": "alice@evil.example", "email_verified": true, "exp": time.Now().Add(time.Minute).Unix()})
		fmt.Fprintf(w, `{"claims_token":%q,"token_type":%q,"expires_in":60}`, tok, uma.TokenTypeClaimsToken)
		return true
	})
	_, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("d"), ""), Email: umafake.AliceEmail})
	var se *rqp.StepError
	if !errors.As(err, &se) || !errors.Is(err, rqp.ErrDenied) || se.Step != rqp.StepGrant || se.StatusCode != 403 ||
		se.Code != "access_denied" || se.Description != "not_authorized" || se.Service != rqp.ServiceAuthZ || se.Retryable() {
		t.Fatalf("err = %#v", err)
	}
	if s.Count("as.token") != 1 || s.UnauthedPosts() != 1 || len(s.StoredMessages()) != 0 {
		t.Errorf("AS asked %d times, %d posts, %d stored", s.Count("as.token"), s.UnauthedPosts(), len(s.StoredMessages()))
	}
	// The authorization server's answer, as the wire's one error type.
	var answer *uma.Error
	if !errors.As(err, &answer) || answer.StatusCode != 403 || answer.Code != "access_denied" ||
		answer.Description != "not_authorized" || !strings.Contains(answer.Body, `"not_authorized"`) {
		t.Errorf("errors.As(*uma.Error) = %+v", answer)
	}
	assertNoSecrets(t, "error", err.Error())
}

// answer is a hook that answers with a status and a JSON body.
func answer(status int, body string, headers ...string) umafake.Hook {
	return func(w http.ResponseWriter, r *http.Request) bool {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
		return true
	}
}

func TestRefusals(t *testing.T) {
	type want struct {
		step    int
		kind    error
		service string
		status  int
		code    string
	}
	closed := func() string { // a URL nobody listens on
		s := umafake.New(t)
		u := s.CP.URL
		s.CP.Close()
		return u
	}
	for _, tc := range []struct {
		name  string
		setup func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request)
		want  want
	}{
		{"unknown owner", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			req.To = s.RS.URL + "/incoming/nobody"
		}, want{1, rqp.ErrRefused, rqp.ServiceResourceServer, 404, "not_found"}},
		{"resource server unreachable", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			req.To = closed() + "/incoming/bob"
		}, want{1, rqp.ErrUnreachable, rqp.ServiceResourceServer, 0, ""}},
		{"too large", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("rs.post", answer(413, `{"error":"request_too_large","error_description":"message larger than 10 bytes"}`))
		}, want{1, rqp.ErrRefused, rqp.ServiceResourceServer, 413, "request_too_large"}},
		{"AS unreachable from the RS", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("rs.post", answer(403, `{"error":"temporarily_unavailable","error_description":"the UMA authorization server cannot be reached"}`))
		}, want{1, rqp.ErrServer, rqp.ServiceResourceServer, 403, "temporarily_unavailable"}},
		{"accepted without a token", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("rs.post", answer(201, `{}`))
		}, want{1, rqp.ErrProtocol, rqp.ServiceResourceServer, 201, ""}},
		{"redirect not followed", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("rs.post", answer(307, `{}`, "Location", s.CP.URL+"/steal"))
		}, want{1, rqp.ErrProtocol, rqp.ServiceResourceServer, 307, ""}},
		{"401 without UMA challenge", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("rs.post", answer(401, `{"error":"unauthorized"}`, "WWW-Authenticate", `Bearer realm="bar"`))
		}, want{2, rqp.ErrProtocol, rqp.ServiceResourceServer, 401, ""}},
		{"malformed challenge", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("rs.post", answer(401, `{}`, "WWW-Authenticate", `UMA as_uri="http://x, ticket="t"`))
		}, want{2, rqp.ErrProtocol, rqp.ServiceResourceServer, 401, ""}},
		{"as_uri without registration", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			cfg.Registrations[0].Issuer = "https://as.elsewhere.example/realms/bar"
		}, want{2, rqp.ErrConfig, rqp.ServiceAuthZ, 0, ""}},
		{"as_uri plain http to a remote host", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("rs.post", answer(401, `{}`, "WWW-Authenticate", `UMA realm="bar", as_uri="http://as.example/realms/bar", ticket="t"`))
		}, want{2, rqp.ErrProtocol, rqp.ServiceResourceServer, 401, ""}},
		{"AuthN client refused", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			cfg.AuthN.ClientSecret = "wrong"
		}, want{3, rqp.ErrConfig, rqp.ServiceAuthN, 401, "unauthorized_client"}},
		{"AuthN unreachable", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			cfg.AuthN.Issuer = closed() + "/realms/foo"
		}, want{3, rqp.ErrUnreachable, rqp.ServiceAuthN, 0, ""}},
		{"AuthN realm unknown", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			cfg.AuthN.Issuer = s.KC.URL + "/realms/nope"
		}, want{3, rqp.ErrConfig, rqp.ServiceAuthN, 404, "not_found"}},
		{"AuthN metadata names another issuer", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("kc.metadata", answer(200, `{"issuer":"https://evil.example","token_endpoint":"https://evil.example/token"}`))
		}, want{3, rqp.ErrProtocol, rqp.ServiceAuthN, 200, ""}},
		{"sender unknown to the Claims Provider", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			req.Email = "carol@foo.example"
		}, want{5, rqp.ErrRefused, rqp.ServiceClaimsProvider, 403, "access_denied"}},
		{"Claims Provider down", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			cfg.ClaimsProvider.URL = closed()
		}, want{5, rqp.ErrUnreachable, rqp.ServiceClaimsProvider, 0, ""}},
		{"Claims Provider unavailable", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("cp.token", answer(503, `{"error":"temporarily_unavailable","error_description":"Keycloak does not answer"}`))
		}, want{5, rqp.ErrServer, rqp.ServiceClaimsProvider, 503, "temporarily_unavailable"}},
		{"Claims Provider answer too long", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("cp.token", answer(200, `{"claims_token":"`+strings.Repeat("a", 2<<20)+`"}`))
		}, want{5, rqp.ErrProtocol, rqp.ServiceClaimsProvider, 200, ""}},
		{"claims token for another ticket", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("cp.token", func(w http.ResponseWriter, r *http.Request) bool {
				_ = r.ParseForm()
				tok := umafake.JWT(map[string]any{"aud": r.PostForm.Get(uma.FormAudience), "ticket_digest": uma.TicketDigest("other")})
				fmt.Fprintf(w, `{"claims_token":%q,"token_type":%q}`, tok, uma.TokenTypeClaimsToken)
				return true
			})
		}, want{6, rqp.ErrProtocol, rqp.ServiceClaimsProvider, 200, ""}},
		{"claims token for another AS", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("cp.token", func(w http.ResponseWriter, r *http.Request) bool {
				_ = r.ParseForm()
				tok := umafake.JWT(map[string]any{"aud": "https://other.example", "ticket_digest": r.PostForm.Get(uma.FormTicketDigest)})
				fmt.Fprintf(w, `{"claims_token":%q,"token_type":%q}`, tok, uma.TokenTypeClaimsToken)
				return true
			})
		}, want{6, rqp.ErrProtocol, rqp.ServiceClaimsProvider, 200, ""}},
		{"wrong token type", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("cp.token", answer(200, `{"claims_token":"a.b.c","token_type":"Bearer"}`))
		}, want{6, rqp.ErrProtocol, rqp.ServiceClaimsProvider, 200, ""}},
		{"AS refuses the client", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			cfg.Registrations[0].ClientSecret = "wrong"
		}, want{7, rqp.ErrConfig, rqp.ServiceAuthZ, 401, "invalid_client"}},
		{"AS malformed request", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("as.token", answer(400, `{"error":"invalid_request","error_description":"Invalid claims"}`))
		}, want{7, rqp.ErrRefused, rqp.ServiceAuthZ, 400, "invalid_request"}},
		{"AS fails", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("as.token", answer(500, `{"error":"server_error","error_description":"Unexpected error while evaluating permissions"}`))
		}, want{7, rqp.ErrServer, rqp.ServiceAuthZ, 500, "server_error"}},
		{"AS answer without a token", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("as.token", answer(200, `{"token_type":"Bearer"}`))
		}, want{7, rqp.ErrProtocol, rqp.ServiceAuthZ, 200, ""}},
		{"RPT refused by the RS", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("rs.post", func(w http.ResponseWriter, r *http.Request) bool {
				if r.Header.Get("Authorization") == "" {
					return false
				}
				s.Challenge(w, "bob", "invalid_token")
				return true
			})
		}, want{9, rqp.ErrRefused, rqp.ServiceResourceServer, 401, "invalid_token"}},
		{"content refused by the RS", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("rs.post", func(w http.ResponseWriter, r *http.Request) bool {
				if r.Header.Get("Authorization") == "" {
					return false
				}
				umafake.Error(w, 403, "insufficient_scope", "the body's SHA-256 differs")
				return true
			})
		}, want{9, rqp.ErrRefused, rqp.ServiceResourceServer, 403, "insufficient_scope"}},
		{"store down", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("rs.post", func(w http.ResponseWriter, r *http.Request) bool {
				if r.Header.Get("Authorization") == "" {
					return false
				}
				umafake.Error(w, 503, "temporarily_unavailable", "the message store is unavailable")
				return true
			})
		}, want{9, rqp.ErrServer, rqp.ServiceResourceServer, 503, "temporarily_unavailable"}},
		{"receipt for other content", func(s *umafake.Stack, cfg *rqp.Config, req *rqp.Request) {
			s.Hook("rs.post", func(w http.ResponseWriter, r *http.Request) bool {
				if r.Header.Get("Authorization") == "" {
					return false
				}
				w.WriteHeader(201)
				fmt.Fprint(w, `{"id":"m1","size":3,"sha256":"00"}`)
				return true
			})
		}, want{10, rqp.ErrProtocol, rqp.ServiceResourceServer, 201, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := umafake.New(t)
			var events []rqp.Event
			cfg := config(s, &events)
			req := rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("some data"), "d.txt"), Email: umafake.AliceEmail}
			tc.setup(s, &cfg, &req)
			c := newClient(t, cfg)
			res, err := c.Push(context.Background(), req)
			if err == nil {
				t.Fatalf("pushed: %+v", res)
			}
			var se *rqp.StepError
			if !errors.As(err, &se) {
				t.Fatalf("%T %v is no StepError", err, err)
			}
			w := tc.want
			if se.Step != w.step || !errors.Is(err, w.kind) || se.Service != w.service || se.StatusCode != w.status || se.Code != w.code {
				t.Fatalf("got step %d kind %v service %q status %d code %q (%v)\nwant step %d %v service %q status %d code %q",
					se.Step, se.Kind, se.Service, se.StatusCode, se.Code, err, w.step, w.kind, w.service, w.status, w.code)
			}
			if se.Attempt != 1 || se.Retryable() {
				t.Errorf("attempt %d, retryable %v", se.Attempt, se.Retryable())
			}
			if n := len(s.StoredMessages()); n != 0 && w.step != 10 {
				t.Errorf("%d messages stored", n)
			}
			if s.Count("as.token") > 1 || s.UnauthedPosts() > 1 {
				t.Errorf("retried: AS %d, posts %d", s.Count("as.token"), s.UnauthedPosts())
			}
			// The progress hook saw the failed step last.
			if len(events) == 0 || events[len(events)-1].OK || events[len(events)-1].Step != w.step || events[len(events)-1].Err == nil {
				t.Errorf("events %+v", events)
			}
			for i, ev := range events[:len(events)-1] {
				if ev.Step != i+1 || !ev.OK {
					t.Errorf("event %d: %+v", i, ev)
				}
			}
			assertNoSecrets(t, "error", err.Error())
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("multi-line error %q", err.Error())
			}
		})
	}
}

func TestDiscoveryOverride(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  umafake.Hook
		kind error
	}{
		{"listed", nil, nil},
		{"domain not listed", answer(200, `{"issuer":"http://127.0.0.1:1","claims_endpoint":"http://127.0.0.1:1/claims/token","domains":["bar.example"]}`), rqp.ErrProtocol},
		{"no document", answer(404, `{"error":"not_found"}`), rqp.ErrConfig},
		{"no claims endpoint", answer(200, `{"issuer":"http://127.0.0.1:1","domains":["foo.example"]}`), rqp.ErrProtocol},
		{"not JSON", answer(200, `<html>`), rqp.ErrProtocol},
		{"too long", answer(200, `{"domains":["`+strings.Repeat("x", 70<<10)+`"]}`), rqp.ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := umafake.New(t)
			if tc.doc != nil {
				s.Hook("cp.discovery", tc.doc)
			}
			cfg := config(s, nil)
			cfg.ClaimsProvider = rqp.ClaimsProvider{DiscoveryBaseURL: s.CP.URL}
			c := newClient(t, cfg)
			_, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("d"), ""), Email: umafake.AliceEmail})
			if tc.kind == nil {
				if err != nil {
					t.Fatal(err)
				}
				if s.Count("cp.discovery") != 1 {
					t.Errorf("discovery asked %d times", s.Count("cp.discovery"))
				}
				return
			}
			var se *rqp.StepError
			if !errors.Is(err, tc.kind) || !errors.As(err, &se) || se.Step != rqp.StepClaimsRequest {
				t.Fatalf("err = %v, want step 5 %v", err, tc.kind)
			}
			if s.Count("cp.token") != 0 {
				t.Error("a claims token was asked for without a valid discovery")
			}
		})
	}
}

func TestPushInputRefusals(t *testing.T) {
	s := umafake.New(t)
	c := newClient(t, config(s, nil))
	good := rqp.BytesContent([]byte("x"), "")
	for name, req := range map[string]rqp.Request{
		"no email":               {To: s.Incoming(), Content: good},
		"email without domain":   {To: s.Incoming(), Content: good, Email: "alice@"},
		"email with IP domain":   {To: s.Incoming(), Content: good, Email: "alice@127.0.0.1"},
		"no content":             {To: s.Incoming(), Email: umafake.AliceEmail},
		"bad file name":          {To: s.Incoming(), Content: rqp.BytesContent([]byte("x"), "a\x00b"), Email: umafake.AliceEmail},
		"bad content type":       {To: s.Incoming(), Content: &rqp.Content{Data: bytes.NewReader(nil), Type: "not a type"}, Email: umafake.AliceEmail},
		"short content":          {To: s.Incoming(), Content: &rqp.Content{Data: bytes.NewReader([]byte("ab")), Size: 5}, Email: umafake.AliceEmail},
		"relative URL":           {To: "/incoming/bob", Content: good, Email: umafake.AliceEmail},
		"plain http remote host": {To: "http://rs.bar.example/incoming/bob", Content: good, Email: umafake.AliceEmail},
		"user info in URL":       {To: "https://u:p@rs.bar.example/incoming/bob", Content: good, Email: umafake.AliceEmail},
		"query in URL":           {To: s.Incoming() + "?x=1", Content: good, Email: umafake.AliceEmail},
		"not an Incoming path":   {To: s.RS.URL + "/incoming/bob/messages", Content: good, Email: umafake.AliceEmail},
		"dot segment owner":      {To: s.RS.URL + "/incoming/%2e%2e", Content: good, Email: umafake.AliceEmail},
	} {
		_, err := c.Push(context.Background(), req)
		var se *rqp.StepError
		if !errors.Is(err, rqp.ErrConfig) || !errors.As(err, &se) || se.Step != 0 {
			t.Errorf("%s: err = %v, want a configuration error before step 1", name, err)
		}
	}
	if s.UnauthedPosts() != 0 {
		t.Error("a refused input reached the Resource Server")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	s := umafake.New(t)
	base := config(s, nil)
	for name, mod := range map[string]func(*rqp.Config){
		"no issuer":             func(c *rqp.Config) { c.AuthN.Issuer = "" },
		"http remote issuer":    func(c *rqp.Config) { c.AuthN.Issuer = "http://sso.foo.example/realms/foo" },
		"no client id":          func(c *rqp.Config) { c.AuthN.ClientID = "" },
		"no secret":             func(c *rqp.Config) { c.AuthN.ClientSecret = "" },
		"login without OpenURL": func(c *rqp.Config) { c.AuthN.Login = &rqp.Login{} },
		"login on a remote address": func(c *rqp.Config) {
			c.AuthN.Login = &rqp.Login{OpenURL: browser("a", "b"), ListenAddr: "0.0.0.0:0"}
		},
		"bad CP URL":         func(c *rqp.Config) { c.ClaimsProvider.URL = "ftp://cp" },
		"no registration":    func(c *rqp.Config) { c.Registrations = nil },
		"registration no id": func(c *rqp.Config) { c.Registrations[0].ClientID = "" },
		"registration bad issuer": func(c *rqp.Config) {
			c.Registrations[0].Issuer = "bar"
		},
	} {
		cfg := base
		cfg.Registrations = append([]rqp.Registration(nil), base.Registrations...)
		mod(&cfg)
		if _, err := rqp.New(cfg); !errors.Is(err, rqp.ErrConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// Plain http to a remote host is allowed when asked for (compose).
	cfg := base
	cfg.AuthN.Issuer = "http://keycloak:8080/realms/foo"
	cfg.AllowInsecureHTTP = true
	if _, err := rqp.New(cfg); err != nil {
		t.Errorf("insecure http allowed: %v", err)
	}
	// A public client may log in without a secret.
	cfg = base
	cfg.AuthN.ClientSecret = ""
	cfg.AuthN.Login = &rqp.Login{OpenURL: browser("a", "b")}
	if _, err := rqp.New(cfg); err != nil {
		t.Errorf("public login client: %v", err)
	}
}

func TestWildcardRegistration(t *testing.T) {
	s := umafake.New(t)
	cfg := config(s, nil)
	cfg.Registrations = []rqp.Registration{
		{Issuer: "https://other.example/realms/x", ClientID: "x", ClientSecret: "y"},
		{Issuer: "*", ClientID: umafake.ClientID, ClientSecret: umafake.ASSecret},
	}
	c := newClient(t, cfg)
	if _, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("d"), ""), Email: umafake.AliceEmail}); err != nil {
		t.Fatal(err)
	}
}

// TestSlowChallengeLargeContent is issue 16's step 1 against a Resource
// Server that takes longer to answer 401 than the transport waits for
// 100 Continue: the content must stay held back (a server that answers 401
// without reading it closes the connection, and the reset lost the 401:
// "connection reset" at step 1), and the push must go on to the challenge.
func TestSlowChallengeLargeContent(t *testing.T) {
	s := umafake.New(t)
	hc := rqp.DefaultHTTPClient()
	// Much shorter than the Resource Server's delay below (the default 2 s
	// was the case; this keeps the test short).
	hc.Transport.(*http.Transport).ExpectContinueTimeout = time.Millisecond
	s.Hook("rs.post", func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "" {
			return false // step 9: the fake reads and stores the content
		}
		time.Sleep(500 * time.Millisecond) // the slow ticket fetch
		s.Challenge(w, umafake.Owner, "")
		return true
	})
	cfg := config(s, nil)
	cfg.HTTPClient = hc
	cfg.Timeout = time.Minute
	c := newClient(t, cfg)
	data := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16) // 8 MiB: more than the sockets buffer
	res, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent(data, "big.bin"), Email: umafake.AliceEmail})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstRequestBodyBytes != 0 {
		t.Errorf("step 1 sent %d content bytes to a server that did not ask for them", res.FirstRequestBodyBytes)
	}
	stored := s.StoredMessages()
	if len(stored) != 1 || !bytes.Equal(stored[0].Body, data) || res.Receipt.SHA256 != hexSHA(data) {
		t.Fatalf("stored %d messages, receipt %+v", len(stored), res.Receipt)
	}
	// An ordinary push right after still succeeds.
	if _, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("small"), "s.txt"), Email: umafake.AliceEmail}); err != nil {
		t.Fatal(err)
	}
}

func TestContextCancelled(t *testing.T) {
	s := umafake.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := config(s, nil)
	cfg.Progress = func(ev rqp.Event) {
		if ev.Step == rqp.StepAccessTokenReturned {
			cancel()
		}
	}
	c := newClient(t, cfg)
	_, err := c.Push(ctx, rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("d"), ""), Email: umafake.AliceEmail})
	var se *rqp.StepError
	if !errors.As(err, &se) || se.Step != rqp.StepClaimsRequest || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if len(s.StoredMessages()) != 0 {
		t.Fatal("stored after cancel")
	}
}

func TestStepErrorMessage(t *testing.T) {
	e := &rqp.StepError{Step: 7, Name: rqp.StepName(7), Service: rqp.ServiceAuthZ, Kind: rqp.KindDenied,
		URL: "http://127.0.0.1:8080/realms/bar/protocol/openid-connect/token", StatusCode: 403, Code: "access_denied", Description: "not_authorized"}
	want := "step 7 (UMA grant): denied by the authorization server at http://127.0.0.1:8080/realms/bar/protocol/openid-connect/token: 403 access_denied: not_authorized"
	if e.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", e.Error(), want)
	}
	if !errors.Is(e, rqp.ErrDenied) || errors.Is(e, rqp.ErrRefused) {
		t.Error("Is does not follow Kind")
	}
	for k := rqp.KindConfig; k <= rqp.KindServer; k++ {
		if strings.HasPrefix(k.String(), "kind(") {
			t.Errorf("kind %d has no name", k)
		}
	}
	_ = url.Values{}
}

// Request.Progress sees only its own push's steps, also when pushes run
// concurrently on one Client, and before Config.Progress.
func TestPerPushProgress(t *testing.T) {
	s := umafake.New(t)
	var mu sync.Mutex
	global := 0
	cfg := config(s, nil)
	cfg.Progress = func(rqp.Event) { mu.Lock(); global++; mu.Unlock() }
	c := newClient(t, cfg)
	const n = 6
	var wg sync.WaitGroup
	events := make([][]rqp.Event, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			data := []byte(fmt.Sprintf("message %d\n", i))
			_, errs[i] = c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent(data, "m.txt"),
				Email: umafake.AliceEmail, Progress: func(ev rqp.Event) { events[i] = append(events[i], ev) }})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("push %d: %v", i, errs[i])
		}
		if len(events[i]) != rqp.NumSteps {
			t.Fatalf("push %d saw %d events, want %d", i, len(events[i]), rqp.NumSteps)
		}
		for j, ev := range events[i] {
			if ev.Step != j+1 || !ev.OK {
				t.Errorf("push %d event %d: %+v", i, j, ev)
			}
		}
	}
	if global != n*rqp.NumSteps {
		t.Errorf("Config.Progress saw %d events, want %d", global, n*rqp.NumSteps)
	}
}

// The AS says the owner's rules refused (uma.RefusalHeader): the client
// says so plainly and names owner and sender; any other header value is a
// plain denial.
func TestOwnerRefusalIsSaidPlainly(t *testing.T) {
	for _, c := range []struct {
		header, reason, want string
	}{
		{uma.RefusalOwnerRefused, rqp.ReasonOwnerRefused, "step 7 (UMA grant): Bob's rules refuse pushes from alice@foo.example (owner_refused)"},
		{uma.RefusalQuotaExceeded, rqp.ReasonQuotaExceeded, "step 7 (UMA grant): Bob's rules refuse more pushes from alice@foo.example today: the daily quota is used up until 00:00 UTC (quota_exceeded)"},
		{"bad_signature", "", "step 7 (UMA grant): denied by the authorization server"},
		{"", "", "step 7 (UMA grant): denied by the authorization server"},
	} {
		s := umafake.New(t)
		c2 := newClient(t, config(s, nil))
		s.Hook("as.token", func(w http.ResponseWriter, r *http.Request) bool {
			if c.header != "" {
				w.Header().Set(uma.RefusalHeader, c.header)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error":"access_denied","error_description":"not_authorized"}`)
			return true
		})
		_, err := c2.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("d"), ""), Email: umafake.AliceEmail})
		var se *rqp.StepError
		if !errors.As(err, &se) || !errors.Is(err, rqp.ErrDenied) || se.Reason != c.reason || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("header %q: err = %v (reason %q)", c.header, err, se.Reason)
		}
		if errors.Is(err, rqp.ErrOwnerRefused) != (c.reason != "") {
			t.Errorf("header %q: errors.Is(ErrOwnerRefused) = %v", c.header, !(c.reason != ""))
		}
		if len(s.StoredMessages()) != 0 {
			t.Errorf("header %q: stored", c.header)
		}
	}
}

// BenchmarkPush1KiB: whole pushes of 1 KiB against the in-process fake
// stack (its servers' work included), without a progress callback, as
// make bench drives the library. For comparing the client's allocations and
// CPU per push before and after a change, not as an absolute figure.
func BenchmarkPush1KiB(b *testing.B) {
	s := umafake.New(b)
	cfg := config(s, nil)
	cfg.Progress = nil
	c, err := rqp.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent(data, "a.bin"), Email: umafake.AliceEmail}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-us/op")
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Step 1 offers no body for content up to SmallContentMax, so the
// Resource Server's 401 keeps the connection: both POSTs of a push, and the
// next push, go over one connection; step 9 sends it without Expect.
// Larger content is offered in step 1, and held back behind Expect:
// 100-continue in both steps.
func TestFirstRequestBody(t *testing.T) {
	s := umafake.New(t)
	type post struct {
		length int64
		expect string
		auth   bool
		conn   string // the client's address: one per connection
	}
	var mu sync.Mutex
	var posts []post
	s.Hook("rs.post", func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		posts = append(posts, post{r.ContentLength, r.Header.Get("Expect"), r.Header.Get("Authorization") != "", r.RemoteAddr})
		mu.Unlock()
		return false // the fake answers
	})
	c := newClient(t, config(s, nil))
	push := func(size int) {
		t.Helper()
		data := bytes.Repeat([]byte("x"), size)
		res, err := c.Push(context.Background(), rqp.Request{To: s.Incoming(), Content: rqp.BytesContent(data, "a.bin"), Email: umafake.AliceEmail})
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstRequestBodyBytes != 0 || res.Receipt.Size != int64(size) {
			t.Fatalf("%d bytes sent in step 1, receipt %+v", res.FirstRequestBodyBytes, res.Receipt)
		}
	}
	push(1024)
	push(rqp.SmallContentMax)
	if len(posts) != 4 {
		t.Fatalf("%d POSTs to the Resource Server, want 4", len(posts))
	}
	for i, p := range posts {
		withRPT := i%2 == 1
		if p.auth != withRPT || (!withRPT && p.length != 0) || p.expect != "" {
			t.Errorf("POST %d: %+v", i, p)
		}
		if p.conn != posts[0].conn {
			t.Errorf("POST %d came on another connection (%s, the first on %s)", i, p.conn, posts[0].conn)
		}
	}
	posts = nil
	push(rqp.SmallContentMax + 1)
	if len(posts) != 2 || posts[0].auth || posts[0].length != rqp.SmallContentMax+1 ||
		!strings.EqualFold(posts[0].expect, "100-continue") || !strings.EqualFold(posts[1].expect, "100-continue") {
		t.Errorf("large content: %+v", posts)
	}
}
