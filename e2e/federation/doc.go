// Package federation is the wide ecosystem's test: organisations that never
// met push to each other by email address, each with its own Keycloak (three
// Keycloak 26 versions), Claims Provider and Resource Server on its own host
// names, HTTPS everywhere (internal/ecosystem). It runs as root (network
// namespaces) and skips, saying why, elsewhere.
package federation
