// Package integration runs the Claims Provider in-process against a real
// Keycloak (internal/kctest: one per package run, or KEYCLOAK_URL): both
// variants of seed step 5 end to end, every refusal of issue 4 with its status
// and JSON body, Keycloak outages, restarts and key rotation. The tests live
// in integration_test.go; this package has no other code.
package integration
