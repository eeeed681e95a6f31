package dev.umawide.keycloak.claims;

/** What the policy learned from a claims token that passed every check. */
record VerifiedClaimsToken(String issuer, String subject, String email, String jti, long exp) {
}
