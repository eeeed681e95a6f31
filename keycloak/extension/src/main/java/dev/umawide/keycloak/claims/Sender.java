package dev.umawide.keycloak.claims;

/** The requesting party as the claims token proves it: what goes into the RPT as sender_*. */
record Sender(String email, String issuer, String subject) {
}
