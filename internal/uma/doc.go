// Package uma holds the wire format of umawide's UMA 2.0 flow, one
// implementation used by the Resource Server, the RqP client and the tests:
// the names of grants, token types and pushed claims, the ticket digest, the
// pushed-claims encoding, the `WWW-Authenticate: UMA` challenge, the
// canonical Incoming URL (incoming_uri) and the unverified reading of a
// permission ticket's claims, the bodies and form fields that travel
// between the parts (wire.go: the claims token response, the Claims
// Provider's discovery document, the message receipt and list), and Error,
// the JSON error body every service answers with and the one error type for
// a refusal.
package uma
