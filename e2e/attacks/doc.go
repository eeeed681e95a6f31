// Package attacks is the adversarial suite: attacks run through the real
// Keycloak (with the claims-token extension), the real Claims Provider and
// Resource Server processes, and assert for each the refusal (status, error
// code and, where Keycloak's log is readable, the policy's reason code) and
// that Bob's Incoming is unchanged. The attackers are test Claims Providers
// with their own keys (internal/testclaimsprovider) and hand-made requests at every step
// of the flow; docs/SECURITY.md lists the cases.
//
//	go test ./e2e/attacks      # starts its own Keycloak (two for the discovery cases)
//	make test                  # one shared Keycloak; the discovery cases start their own
package attacks
