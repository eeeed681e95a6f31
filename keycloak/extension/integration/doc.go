// Package integration tests the claims-token policy (the Keycloak extension in
// keycloak/extension) against a real Keycloak with the extension loaded: each
// test signs claims tokens with its own key, served by an httptest JWKS server,
// in a realm derived from keycloak/realms/bar-realm.json under a unique name
// (deleted at the end), so that other packages sharing the Keycloak are not
// disturbed. The benchmark compares the uma-ticket grant with the claims-token
// policy and with the stock client policy.
//
// The JWKS server listens on 127.0.0.1: Keycloak must run on this machine
// (process mode, or KEYCLOAK_URL of a local process such as `make test` starts).
package integration
