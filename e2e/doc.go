// Package e2e holds the end-to-end tests of the whole push flow (seed steps
// 1-10): they build the real binaries (claims-provider, resource-server,
// rqp-client), start the Claims Provider and the Resource Server as
// processes against a real Keycloak with the claims-token extension (one per
// package run, through kctest), and run rqp-client as a subprocess, as a
// person would. The Resource Server serves a private copy of realm bar whose
// claims-token policy trusts this run's Claims Provider; realm foo is used as
// shipped (a test user is added and removed).
//
//	go test ./e2e            # starts its own Keycloak
//	make e2e                 # the same through devstack exec
package e2e
