package dev.umawide.keycloak.claims;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The whole decision of docs/PROTOCOL.md step 8 (checks 8.1-8.5) for one request, free of
 * Keycloak types: decode the pushed claims, require the content binding and the Incoming URL the
 * ticket names, verify the claims token against the ticket, then consume its jti and the ticket.
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

    Grant evaluate(String realmId, String ticket, String claimToken, String audience, long nowSeconds) throws Denied {
        Tickets.Payload ticketPayload = Tickets.payload(ticket);
        PushedClaims pushed = PushedClaims.decode(claimToken, config.maxClaimTokenLength());
        String claimsToken = pushed.claimsToken();
        // Cheap checks first, before any signature work or fetch: the binding the RPT will carry.
        Map<String, String> vetted = vetted(pushed);
        String incomingUri = IncomingUri.pushed(pushed);
        // The ticket's own claim (the payload Keycloak verified), never the map Keycloak merges the
        // pushed claims into: a pushed value must not stand in for the Resource Server's.
        IncomingUri.requireMatch(incomingUri, Tickets.incomingUri(ticketPayload));
        vetted.put(IncomingUri.CLAIM, incomingUri);

        // ticket_digest binds the claims token to the exact ticket string the client was given.
        String digest = Base64Url.ticketDigest(ticket);
        VerifiedClaimsToken token = verifier.verify(claimsToken, audience, digest, nowSeconds);

        long jtiLifespan = token.exp() - nowSeconds + config.clockSkewSeconds();
        if (!replay.firstUse(ReplayGuard.jtiKey(realmId, token.issuer(), token.jti()), jtiLifespan)) {
            throw new Denied(Reason.JTI_REPLAYED);
        }
        long ticketLifespan = Tickets.rememberSeconds(ticketPayload, nowSeconds, config.clockSkewSeconds());
        if (!replay.firstUse(ReplayGuard.ticketKey(realmId, Tickets.identity(ticketPayload)), ticketLifespan)) {
            throw new Denied(Reason.TICKET_REUSED);
        }
        return new Grant(new Sender(token.email(), token.issuer(), token.subject()), Collections.unmodifiableMap(vetted));
    }

    /**
     * The content metadata to keep: {@code content_sha256} and {@code content_length} are required
     * (deny {@code content_binding_missing}), {@code content_type} and {@code file_name} are kept
     * only when well-formed.
     */
    static Map<String, String> vetted(PushedClaims pushed) throws Denied {
        Map<String, String> out = new LinkedHashMap<>();
        for (String key : List.of(ContentMetadata.CONTENT_SHA256, ContentMetadata.CONTENT_LENGTH)) {
            String v = one(pushed, key);
            if (v == null || !ContentMetadata.valid(key, v)) {
                throw new Denied(Reason.CONTENT_BINDING_MISSING, key);
            }
            out.put(key, v);
        }
        for (String key : List.of(ContentMetadata.CONTENT_TYPE, ContentMetadata.FILE_NAME)) {
            String v = one(pushed, key);
            if (v != null && ContentMetadata.valid(key, v)) {
                out.put(key, v);
            }
        }
        return out;
    }

    private static String one(PushedClaims pushed, String key) {
        List<String> v = pushed.claims().get(key);
        return v != null && v.size() == 1 ? v.get(0) : null;
    }
}
