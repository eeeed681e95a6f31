// Package rqp is the requesting party's client of the UMA wide ecosystem
// (docs/PROTOCOL.md): it pushes data from a sender (Alice, foo.example)
// into an owner's Incoming (Bob, bar.example) through the ten steps of the
// UMA 2.0 grant with a Claims Provider in the sender's own domain.
//
//  1. POST the data to the Incoming without a token, with
//     Expect: 100-continue, so the Resource Server's 401 arrives before any
//     of the data is sent;
//  2. read the UMA challenge (as_uri, permission ticket), and refuse it
//     (ReasonChallengeMismatch) unless the ticket's incoming_uri is the
//     canonical URL of the Incoming pushed to (uma.CanonicalIncomingURL) and
//     its iss, if any, is as_uri: a Resource Server relaying another one's
//     challenge gets no RPT and no content to replay;
//  3. ask for an access token for the Claims Provider at the sender's AuthN
//     server: client credentials (the sender is not involved), or
//     authorization code + PKCE with a loopback redirect (the sender logs in);
//  4. receive the access token (or keep using the client's own);
//  5. compute ticket_digest = BASE64URL(SHA-256(ticket)) (5.1) and ask the
//     Claims Provider (configured, or discovered from the email's
//     domain) for a claims token bound to the ticket and the AS;
//  6. check the claims token's shape and binding;
//  7. ask the owner's AS for an RPT (uma-ticket grant) with the claims token
//     and the content's metadata (content_sha256, content_length,
//     content_type, file_name) and incoming_uri as pushed claims;
//  8. receive the RPT;
//  9. POST the data again with the RPT;
//  10. read the 201 receipt and check it against what was sent.
//
// Every error is a *StepError that says which step failed, at which
// service, how (Kind: configuration, unreachable, refused, denied by the AS,
// login, protocol, server) and with which OAuth error; errors.Is works with
// the Err* sentinels. When the AS refuses the permission ticket itself
// (Keycloak answers 403 invalid_ticket for an expired ticket; a ticket
// expires with the Resource Server's PAT), Push starts over once with a
// fresh ticket; no other step is retried. Reads are bounded, every exchange
// has a timeout, redirects are never followed, and tokens and secrets never
// appear in errors, events or logs.
package rqp
