package rqp_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/umawide/umawide/rqp-client/rqp"
)

// A service that pushes on a user's behalf with its own client credentials
// (the user is not involved): the Claims Provider is discovered from the
// email's domain.
func Example() {
	client, err := rqp.New(rqp.Config{
		AuthN: rqp.AuthN{
			Issuer:       "https://sso.foo.example/realms/foo",
			ClientID:     "rqp-client",
			ClientSecret: "…", // from a secret store
		},
		Registrations: []rqp.Registration{{
			Issuer:       "https://sso.bar.example/realms/bar",
			ClientID:     "rqp-client",
			ClientSecret: "…",
		}},
		Progress: func(ev rqp.Event) {
			log.Printf("%2d/10 %-22s %s %s", ev.Step, ev.Name, ev.Status, ev.Duration)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	content, f, err := rqp.FileContent("report.pdf")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	res, err := client.Push(context.Background(), rqp.Request{
		To:      "https://rs.bar.example/incoming/bob",
		Content: content,
		Email:   "alice@foo.example",
	})
	var se *rqp.StepError
	switch {
	case errors.Is(err, rqp.ErrDenied):
		log.Printf("Bob's authorization server said no: %v", err)
	case errors.As(err, &se):
		log.Printf("step %d failed at the %s (%s): %v", se.Step, se.Service, se.Kind, err)
	case err == nil:
		fmt.Println("stored as", res.Location, "sha256", res.Receipt.SHA256)
	}
}

// The person logs in (authorization code + PKCE, loopback redirect): show
// the URL, the client waits for the browser to come back.
func ExampleLogin() {
	login := &rqp.Login{OpenURL: func(ctx context.Context, url string) error {
		fmt.Println("Log in at", url)
		return nil
	}}
	_, _ = rqp.New(rqp.Config{
		AuthN:          rqp.AuthN{Issuer: "https://sso.foo.example/realms/foo", ClientID: "rqp-client", ClientSecret: "…", Login: login},
		ClaimsProvider: rqp.ClaimsProvider{URL: "https://cp.foo.example"},
		Registrations:  []rqp.Registration{{Issuer: "https://sso.bar.example/realms/bar", ClientID: "rqp-client", ClientSecret: "…"}},
	})
}
