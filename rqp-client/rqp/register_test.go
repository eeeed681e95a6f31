package rqp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/rqp-client/internal/umafake"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// dynamicConfig has no registration at Bob's AS: the client registers there.
func dynamicConfig(s *umafake.Stack, dir string) rqp.Config {
	cfg := config(s, nil)
	cfg.Registrations = nil
	cfg.Register = &rqp.DynamicRegistration{Dir: dir}
	return cfg
}

func pushOnce(t *testing.T, cfg rqp.Config, req rqp.Request) (*rqp.Result, error) {
	t.Helper()
	return newClient(t, cfg).Push(context.Background(), req)
}

func TestDynamicRegistration(t *testing.T) {
	s := umafake.New(t)
	s.Registration = true
	dir := filepath.Join(t.TempDir(), "registrations")
	req := rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("hello"), "a.txt"), Email: umafake.AliceEmail}

	// First push: registers, bounded to the uma-ticket grant.
	if _, err := pushOnce(t, dynamicConfig(s, dir), req); err != nil {
		t.Fatal(err)
	}
	regs := s.Registered()
	if len(regs) != 1 || len(regs[0].GrantTypes) != 1 || regs[0].GrantTypes[0] != uma.GrantTypeUMATicket ||
		regs[0].TokenEndpointAuthMethod != uma.TokenEndpointAuthClientSecretBasic {
		t.Fatalf("registrations %+v", regs)
	}
	d := rqp.DynamicRegistration{Dir: dir}
	file := d.RegistrationFile(s.Issuer("bar"))
	for path, want := range map[string]os.FileMode{dir: 0o700, file: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	var stored map[string]any
	data, _ := os.ReadFile(file)
	if err := json.Unmarshal(data, &stored); err != nil || stored["issuer"] != s.Issuer("bar") {
		t.Fatalf("stored %s (%v)", data, err)
	}

	// A new client (another run of the command) reuses it.
	if _, err := pushOnce(t, dynamicConfig(s, dir), req); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Registered()); n != 1 {
		t.Errorf("%d registrations after the second push, want 1", n)
	}

	// The AS forgot it: invalid_client, one new registration, pushed.
	s.ForgetRegistrations()
	events := pushRecording(t, s, dir, req)
	if n := len(s.Registered()); n != 2 {
		t.Errorf("%d registrations after the AS forgot the first, want 2", n)
	}
	if d := grantDetail(events); !strings.Contains(d, "invalid_client") || !strings.Contains(d, "registered dynamically") {
		t.Errorf("step 7 detail %q does not say it registered again", d)
	}
	if got := len(s.StoredMessages()); got != 3 {
		t.Errorf("%d messages stored, want 3", got)
	}
}

// A registration whose secret expired (Keycloak: 401 unauthorized_client)
// is renewed too.
func TestDynamicRegistrationExpired(t *testing.T) {
	s := umafake.New(t)
	s.Registration = true
	dir := t.TempDir()
	req := rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("x"), ""), Email: umafake.AliceEmail}
	if _, err := pushOnce(t, dynamicConfig(s, dir), req); err != nil {
		t.Fatal(err)
	}
	refused := false
	s.Hook("as.token", func(w http.ResponseWriter, r *http.Request) bool {
		if refused {
			return false
		}
		refused = true
		umafake.Error(w, 401, "unauthorized_client", "Client secret has expired")
		return true
	})
	events := pushRecording(t, s, dir, req)
	if n := len(s.Registered()); n != 2 {
		t.Errorf("%d registrations, want 2", n)
	}
	if d := grantDetail(events); !strings.Contains(d, "refused (unauthorized_client)") {
		t.Errorf("step 7 detail %q", d)
	}
}

func grantDetail(events []rqp.Event) string {
	for _, ev := range events {
		if ev.Step == rqp.StepGrant {
			return ev.Detail
		}
	}
	return ""
}

// A registration refused again right after it was made is not renewed in a
// loop: one registration per push at most.
func TestDynamicRegistrationRenewedOnce(t *testing.T) {
	s := umafake.New(t)
	s.Registration = true
	dir := t.TempDir()
	req := rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("x"), ""), Email: umafake.AliceEmail}
	if _, err := pushOnce(t, dynamicConfig(s, dir), req); err != nil {
		t.Fatal(err)
	}
	s.Hook("as.token", answer(401, `{"error":"invalid_client","error_description":"Invalid client or Invalid client credentials"}`))
	_, err := pushOnce(t, dynamicConfig(s, dir), req)
	var se *rqp.StepError
	if !errors.As(err, &se) || se.Code != "invalid_client" || se.Step != rqp.StepGrant {
		t.Fatalf("got %v", err)
	}
	if n := len(s.Registered()); n != 2 {
		t.Errorf("%d registrations, want 2 (the first and one renewal)", n)
	}
}

// One AS's credentials never go to another: a stored registration is for
// its issuer only, and the client refuses endpoints outside the issuer.
func TestDynamicRegistrationPerAS(t *testing.T) {
	a, b := umafake.New(t), umafake.New(t)
	a.Registration, b.Registration = true, true
	dir := t.TempDir()
	for _, s := range []*umafake.Stack{a, b, a} {
		req := rqp.Request{To: s.Incoming(), Content: rqp.BytesContent([]byte("x"), ""), Email: umafake.AliceEmail}
		if _, err := pushOnce(t, dynamicConfig(s, dir), req); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.Registered()) != 1 || len(b.Registered()) != 1 {
		t.Errorf("registrations: %d at A, %d at B; want one each", len(a.Registered()), len(b.Registered()))
	}
	// A file for A copied over B's name is not used at B.
	d := rqp.DynamicRegistration{Dir: dir}
	data, _ := os.ReadFile(d.RegistrationFile(a.Issuer("bar")))
	if err := os.WriteFile(d.RegistrationFile(b.Issuer("bar")), data, 0o600); err != nil {
		t.Fatal(err)
	}
	req := rqp.Request{To: b.Incoming(), Content: rqp.BytesContent([]byte("x"), ""), Email: umafake.AliceEmail}
	if _, err := pushOnce(t, dynamicConfig(b, dir), req); err != nil {
		t.Fatal(err)
	}
	if len(b.Registered()) != 2 {
		t.Errorf("B: %d registrations, want a new one instead of A's", len(b.Registered()))
	}

	for name, meta := range map[string]func(s *umafake.Stack) map[string]string{
		"token endpoint elsewhere": func(s *umafake.Stack) map[string]string {
			return map[string]string{"issuer": s.Issuer("bar"), "token_endpoint": a.Issuer("bar") + "/token", "registration_endpoint": s.Issuer("bar") + umafake.RegistrationPath}
		},
		"registration endpoint elsewhere": func(s *umafake.Stack) map[string]string {
			return map[string]string{"issuer": s.Issuer("bar"), "token_endpoint": s.Issuer("bar") + "/token", "registration_endpoint": a.Issuer("bar") + umafake.RegistrationPath}
		},
		"token endpoint in another realm": func(s *umafake.Stack) map[string]string {
			return map[string]string{"issuer": s.Issuer("bar"), "token_endpoint": s.Issuer("foo") + "/token", "registration_endpoint": s.Issuer("bar") + umafake.RegistrationPath}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := umafake.New(t)
			c.Registration = true
			c.Hook("kc.metadata", func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.HasSuffix(r.URL.Path, "uma2-configuration") {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(meta(c))
				return true
			})
			before := len(a.Registered()) + a.Count("as.token")
			req := rqp.Request{To: c.Incoming(), Content: rqp.BytesContent([]byte("x"), ""), Email: umafake.AliceEmail}
			_, err := pushOnce(t, dynamicConfig(c, t.TempDir()), req)
			if !errors.Is(err, rqp.ErrProtocol) || !strings.Contains(err.Error(), "is not a URL of the authorization server") {
				t.Fatalf("got %v", err)
			}
			if after := len(a.Registered()) + a.Count("as.token"); after != before || len(c.Registered()) != 0 || len(c.StoredMessages()) != 0 {
				t.Errorf("something was sent or stored")
			}
		})
	}
}

// An addressed push accepts only the AS the recipient's domain named.
func TestChallengeNamesAnotherAS(t *testing.T) {
	s := umafake.New(t)
	s.Registration = true
	dir := t.TempDir()
	want := "https://sso.bar.example/realms/bar"
	req := rqp.Request{To: s.Incoming(), AS: want, Content: rqp.BytesContent([]byte("x"), ""), Email: umafake.AliceEmail}
	_, err := pushOnce(t, dynamicConfig(s, dir), req)
	var se *rqp.StepError
	if !errors.As(err, &se) || se.Reason != rqp.ReasonChallengeMismatch || se.Step != rqp.StepChallenge || !errors.Is(err, rqp.ErrChallengeMismatch) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), s.Issuer("bar")) {
		t.Errorf("the message does not name both servers: %v", err)
	}
	if len(s.CPForms()) != 0 || len(s.Registered()) != 0 || len(s.ASForms()) != 0 || len(s.StoredMessages()) != 0 {
		t.Errorf("something was sent or stored after the mismatch")
	}
	// The honest push right after.
	req.AS = s.Issuer("bar") + "/"
	if _, err := pushOnce(t, dynamicConfig(s, dir), req); err != nil {
		t.Fatal(err)
	}
}

// pushRecording pushes once with the registrations in dir and returns the
// progress events, for the tests that read what step 7 said.
func pushRecording(t *testing.T, s *umafake.Stack, dir string, req rqp.Request) []rqp.Event {
	t.Helper()
	var events []rqp.Event
	cfg := dynamicConfig(s, dir)
	cfg.Progress = func(ev rqp.Event) { events = append(events, ev) }
	if _, err := pushOnce(t, cfg, req); err != nil {
		t.Fatal(err)
	}
	return events
}
