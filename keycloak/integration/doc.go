// Package integration proves, against a real Keycloak, that the realm files in
// keycloak/realms do what the other parts need (see realm_test.go). The same
// suite runs on every launcher path: the Maven distribution as a process (or
// KEYCLOAK_URL) and testcontainers where a Docker engine runs.
package integration
