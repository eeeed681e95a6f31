package formlogin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// fakeIdP serves a login page whose form posts to action (relative to the
// server when it starts with "/") and answers the post with a redirect to
// the client's receiver.
func fakeIdP(t *testing.T, page func(srv *httptest.Server) string, onPost func(w http.ResponseWriter, r *http.Request, redirect string)) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	var redirect string
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			redirect = r.URL.Query().Get("redirect_uri")
			fmt.Fprint(w, page(srv))
		case http.MethodPost:
			onPost(w, r, redirect)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func receiver(t *testing.T, status int) (*httptest.Server, *url.Values) {
	t.Helper()
	got := &url.Values{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*got = r.URL.Query()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func loginPage(action string) func(*httptest.Server) string {
	return func(srv *httptest.Server) string {
		if strings.HasPrefix(action, "/") {
			action = srv.URL + action
		}
		return `<html><form id="kc-form-login" class="x" action="` + action + `&amp;tab_id=1" method="post"></form></html>`
	}
}

func TestLogin(t *testing.T) {
	recv, got := receiver(t, 200)
	var form url.Values
	idp := fakeIdP(t, loginPage("/login?session=1"), func(w http.ResponseWriter, r *http.Request, redirect string) {
		_ = r.ParseForm()
		form = r.PostForm
		if r.URL.Query().Get("tab_id") != "1" {
			t.Errorf("form action not unescaped: %s", r.URL)
		}
		http.Redirect(w, r, redirect+"?code=c1&state=s1", http.StatusFound)
	})
	authURL := idp.URL + "/auth?redirect_uri=" + url.QueryEscape(recv.URL+"/callback")
	if err := OpenURL("alice", "pw", nil)(context.Background(), authURL); err != nil {
		t.Fatal(err)
	}
	if form.Get("username") != "alice" || form.Get("password") != "pw" || got.Get("code") != "c1" {
		t.Errorf("form %v, receiver got %v", form, *got)
	}
}

func TestLoginRefusals(t *testing.T) {
	okRecv, _ := receiver(t, 200)
	badRecv, _ := receiver(t, 400)
	redirectTo := func(target string) func(http.ResponseWriter, *http.Request, string) {
		return func(w http.ResponseWriter, r *http.Request, redirect string) {
			if target == "" {
				target = redirect
			}
			http.Redirect(w, r, target+"?code=c", http.StatusFound)
		}
	}
	for _, tc := range []struct {
		name   string
		page   func(*httptest.Server) string
		post   func(http.ResponseWriter, *http.Request, string)
		recv   string
		reason string
	}{
		{"no form", func(*httptest.Server) string { return "<html>maintenance</html>" }, redirectTo(""), okRecv.URL, "no Keycloak login form"},
		{"form posts elsewhere", loginPage("http://evil.example/steal?x=1"), redirectTo(""), okRecv.URL, "posts elsewhere"},
		{"wrong password", loginPage("/login?s=1"), func(w http.ResponseWriter, r *http.Request, _ string) {
			fmt.Fprint(w, `<span id="input-error" class="pf">Invalid username or password.</span>`)
		}, okRecv.URL, "Invalid username or password."},
		{"redirect somewhere else", loginPage("/login?s=1"), redirectTo("http://127.0.0.1:1/other"), okRecv.URL, "no redirect back to the client"},
		{"receiver refuses", loginPage("/login?s=1"), redirectTo(""), badRecv.URL, "receiver answered 400"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp := fakeIdP(t, tc.page, tc.post)
			authURL := idp.URL + "/auth?redirect_uri=" + url.QueryEscape(tc.recv+"/callback")
			err := OpenURL("alice", "pw", nil)(context.Background(), authURL)
			if !errors.Is(err, ErrLogin) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want %q", err, tc.reason)
			}
			if strings.Contains(err.Error(), "pw") && !strings.Contains(tc.reason, "pw") {
				t.Errorf("the password shows in %v", err)
			}
		})
	}
	if err := OpenURL("a", "b", nil)(context.Background(), "http://127.0.0.1:1/auth"); !errors.Is(err, ErrLogin) {
		t.Errorf("no redirect_uri: %v", err)
	}
}
