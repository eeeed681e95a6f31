package kctest

import (
	"context"
	"testing"
	"time"

	"github.com/umawide/umawide/internal/keycloak/protection"
	"github.com/umawide/umawide/internal/keycloak/token"
	"github.com/umawide/umawide/internal/tokensource"
	"github.com/umawide/umawide/internal/uma"
)

// ProtectionAPI is the protection API of the realm at issuer with the PAT of
// the resource server client clientID (client credentials, cached and
// renewed as the Resource Server does).
func ProtectionAPI(issuer, clientID, secret string) *protection.Client {
	pat := tokensource.New(token.ClientCredentialsFetch(nil, token.Endpoint(issuer), clientID, secret), tokensource.Options{})
	return protection.New(protection.Config{Issuer: issuer, PAT: pat})
}

// RegisterIncoming registers a resource of type Incoming named name for
// owner (scope create, uri /incoming/{owner}, owner-managed or not) and
// returns it as Keycloak answered.
func RegisterIncoming(t testing.TB, api *protection.Client, name, owner string, ownerManaged bool) protection.Resource {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := api.CreateResource(ctx, protection.NewResource{
		Name:               name,
		Type:               uma.ResourceTypeIncoming,
		Owner:              owner,
		OwnerManagedAccess: ownerManaged,
		Scopes:             []string{uma.ScopeCreate},
		URIs:               []string{uma.IncomingPath(owner)},
	})
	if err != nil {
		t.Fatalf("register %s for %s: %v", name, owner, err)
	}
	return r
}

// Ticket is a permission ticket for scopes (default create) of resourceID, as
// the Resource Server asks for one in seed step 2 (without its claims).
func Ticket(t testing.TB, api *protection.Client, resourceID string, scopes ...string) string {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{uma.ScopeCreate}
	}
	return TicketFor(t, api, protection.Permission{ResourceID: resourceID, Scopes: scopes})
}

// TicketFor is a permission ticket for perm (with its claims).
func TicketFor(t testing.TB, api *protection.Client, perm protection.Permission) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tk, err := api.Ticket(ctx, perm)
	if err != nil {
		t.Fatalf("permission ticket: %v", err)
	}
	return tk
}
