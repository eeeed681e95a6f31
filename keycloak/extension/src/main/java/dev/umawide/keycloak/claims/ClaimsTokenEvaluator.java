package dev.umawide.keycloak.claims;

/**
 * The whole decision of docs/PROTOCOL.md step 8 (checks 8.1-8.5) for one request, free of
 * Keycloak types: decode the pushed claims, verify the claims token against the ticket, then
 * consume its jti and the ticket.
 */
final class ClaimsTokenEvaluator {

    private final PolicyConfig config;
    private final ClaimsTokenVerifier verifier;
    private final ReplayGuard replay;

    ClaimsTokenEvaluator(PolicyConfig config, ClaimsTokenVerifier verifier, ReplayGuard replay) {
        this.config = config;
        this.verifier = verifier;
        this.replay = replay;
    }

    Sender evaluate(String realmId, String ticket, String claimToken, String audience, long nowSeconds) throws Denied {
        if (ticket == null || ticket.isEmpty() || ticket.length() > Tickets.MAX_LENGTH) {
            throw new Denied(Reason.NO_TICKET);
        }
        PushedClaims pushed = PushedClaims.decode(claimToken, config.maxClaimTokenLength());
        String digest = Base64Url.ticketDigest(ticket);
        VerifiedClaimsToken token = verifier.verify(pushed.claimsToken(), audience, digest, nowSeconds);

        long jtiLifespan = token.exp() - nowSeconds + config.clockSkewSeconds();
        if (!replay.firstUse(ReplayGuard.jtiKey(realmId, token.issuer(), token.jti()), jtiLifespan)) {
            throw new Denied(Reason.JTI_REPLAYED);
        }
        long ticketLifespan = Tickets.rememberSeconds(ticket, nowSeconds, config.clockSkewSeconds());
        if (!replay.firstUse(ReplayGuard.ticketKey(realmId, digest), ticketLifespan)) {
            throw new Denied(Reason.TICKET_REUSED);
        }
        return new Sender(token.email(), token.issuer(), token.subject());
    }
}
