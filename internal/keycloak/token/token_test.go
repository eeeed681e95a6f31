package token

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/keycloak"
)

func TestClientCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if r.FormValue("grant_type") != "client_credentials" || !ok || id != "rs" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"unauthorized_client","error_description":"bad"}`)
			return
		}
		fmt.Fprint(w, `{"access_token":"abc","expires_in":60}`)
	}))
	defer srv.Close()
	ctx := context.Background()
	tok, life, err := ClientCredentialsFetch(nil, srv.URL, "rs", "s3cret")(ctx)
	if err != nil || tok != "abc" || life != time.Minute {
		t.Fatalf("got %q %v %v", tok, life, err)
	}
	_, _, err = ClientCredentialsFetch(nil, srv.URL, "rs", "wrong")(ctx)
	var e *keycloak.Error
	if !errors.As(err, &e) || e.StatusCode != 401 || e.Code != "unauthorized_client" {
		t.Fatalf("refusal = %v", err)
	}
	srv.Close()
	_, _, err = ClientCredentialsFetch(nil, srv.URL, "rs", "s3cret")(ctx)
	if !errors.Is(err, keycloak.ErrUnreachable) {
		t.Fatalf("closed server: %v, want ErrUnreachable", err)
	}
}
