// Package integration runs the Resource Server against a real Keycloak (kctest):
// the UMA challenge and its ticket, RPTs issued by Keycloak, each refusal,
// registration under concurrent first requests, the owner's reading, and
// durability of the built binary across SIGKILL.
package integration
