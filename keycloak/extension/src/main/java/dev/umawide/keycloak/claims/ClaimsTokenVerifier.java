package dev.umawide.keycloak.claims;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Checks 8.2 to 8.5 of docs/PROTOCOL.md on one claims token: structure and size, {@code alg}
 * allowlist, trusted issuer (static list, else discovery), key by {@code kid} and key type,
 * signature, then {@code aud}, {@code exp}, {@code iat}, {@code nbf}, lifetime, {@code jti},
 * {@code sub}, {@code ticket_digest}, {@code email}, {@code email_verified} and the email domain.
 * Replay (jti, ticket) is the caller's job, after everything here has passed.
 */
final class ClaimsTokenVerifier {

    static final int MAX_ID_LENGTH = 256;

    /** Finds the key of a trusted issuer. */
    interface KeyLookup {
        Jwk find(URI jwksUri, String kid, JwsAlgorithm alg) throws Denied;
    }

    /** Fetches (cached) the discovery document of an email domain. */
    interface DiscoveryLookup {
        DiscoveryDocument get(String domain) throws Denied;
    }

    private record Trust(URI jwksUri, Set<String> domains) {
    }

    private final PolicyConfig config;
    private final KeyLookup keys;
    private final DiscoveryLookup discovery;

    ClaimsTokenVerifier(PolicyConfig config, KeyLookup keys, DiscoveryLookup discovery) {
        this.config = config;
        this.keys = keys;
        this.discovery = discovery;
    }

    VerifiedClaimsToken verify(String jws, String expectedAudience, String expectedTicketDigest, long nowSeconds) throws Denied {
        CompactJws token = CompactJws.parse(jws, config.maxClaimsTokenLength());
        JwsAlgorithm alg = JwsAlgorithm.byName(token.alg());
        if (alg == null || !config.algorithms().contains(alg)) {
            throw new Denied(Reason.ALG_NOT_ALLOWED, "alg=" + token.alg());
        }
        String kid = token.kid();
        if (kid == null || kid.isEmpty() || kid.length() > MAX_ID_LENGTH) {
            throw new Denied(Reason.KID_MISSING);
        }
        ObjectNode claims = token.payload();
        String iss = Json.text(claims, "iss");
        if (iss == null || iss.isEmpty()) {
            throw new Denied(Reason.UNTRUSTED_ISSUER, "no iss");
        }
        Trust trust = trust(iss, claims);
        Jwk key = keys.find(trust.jwksUri(), kid, alg);
        if (!alg.verify(key, token.signingInput(), token.signature())) {
            throw new Denied(Reason.BAD_SIGNATURE);
        }

        // From here on the claims are the issuer's own.
        checkAudience(claims.get("aud"), expectedAudience);
        long exp = numericDate(claims.get("exp"), Reason.EXP_MISSING);
        long iat = numericDate(claims.get("iat"), Reason.IAT_MISSING);
        int skew = config.clockSkewSeconds();
        if (exp + skew <= nowSeconds) {
            throw new Denied(Reason.EXPIRED);
        }
        if (iat > nowSeconds + skew) {
            throw new Denied(Reason.IAT_IN_FUTURE);
        }
        JsonNode nbf = claims.get("nbf");
        if (nbf != null && numericDate(nbf, Reason.NOT_YET_VALID) > nowSeconds + skew) {
            throw new Denied(Reason.NOT_YET_VALID);
        }
        if (exp < iat || exp - iat > config.maxTokenLifetimeSeconds()) {
            throw new Denied(Reason.LIFETIME_TOO_LONG);
        }
        String jti = Json.text(claims, "jti");
        if (jti == null || jti.isEmpty() || jti.length() > MAX_ID_LENGTH) {
            throw new Denied(Reason.JTI_MISSING);
        }
        String sub = Json.text(claims, "sub");
        if (sub == null || sub.isEmpty() || sub.length() > MAX_ID_LENGTH) {
            throw new Denied(Reason.SUB_MISSING);
        }
        String digest = Json.text(claims, "ticket_digest");
        if (digest == null || !MessageDigest.isEqual(digest.getBytes(StandardCharsets.UTF_8),
                expectedTicketDigest.getBytes(StandardCharsets.UTF_8))) {
            throw new Denied(Reason.TICKET_DIGEST_MISMATCH);
        }
        EmailAddress email = email(claims);
        JsonNode verified = claims.get("email_verified");
        if (verified == null || !verified.isBoolean() || !verified.booleanValue()) {
            throw new Denied(Reason.EMAIL_NOT_VERIFIED);
        }
        if (!trust.domains().contains(email.domain())) {
            throw new Denied(Reason.EMAIL_DOMAIN_NOT_TRUSTED, "domain=" + email.domain());
        }
        return new VerifiedClaimsToken(iss, sub, email.address(), jti, exp);
    }

    /**
     * The static entry for the issuer; otherwise, with discovery on and the email's domain neither
     * pinned to a static issuer nor blocked, the email domain's document naming it. A blocked domain
     * is refused before anything is fetched, whoever signed.
     */
    private Trust trust(String iss, ObjectNode unverifiedClaims) throws Denied {
        if (!config.blockedDomains().isEmpty()) {
            // Only a refusal comes from the not yet verified token.
            EmailAddress email = email(unverifiedClaims);
            if (config.blockedDomains().contains(email.domain())) {
                throw new Denied(Reason.EMAIL_DOMAIN_BLOCKED, "domain=" + email.domain());
            }
        }
        ClaimsProviderEntry entry = config.providers().get(iss);
        if (entry != null) {
            return new Trust(entry.jwksUri(), entry.domains());
        }
        if (!config.discoveryEnabled()) {
            throw new Denied(Reason.UNTRUSTED_ISSUER, "iss=" + iss);
        }
        // Only the domain to look up comes from the not yet verified token; the document decides.
        EmailAddress email = email(unverifiedClaims);
        if (config.pinnedDomains().contains(email.domain())) {
            throw new Denied(Reason.DOMAIN_PINNED, "domain=" + email.domain() + " iss=" + iss);
        }
        DiscoveryDocument doc = discovery.get(email.domain());
        if (!doc.issuer().equals(iss)) {
            throw new Denied(Reason.UNTRUSTED_ISSUER, "iss=" + iss + " not the issuer discovered for " + email.domain());
        }
        if (!doc.domains().contains(email.domain())) {
            throw new Denied(Reason.EMAIL_DOMAIN_NOT_TRUSTED, "domain=" + email.domain());
        }
        return new Trust(doc.jwksUri(), doc.domains());
    }

    private static EmailAddress email(ObjectNode claims) throws Denied {
        JsonNode e = claims.get("email");
        if (e == null || e.isNull()) {
            throw new Denied(Reason.EMAIL_MISSING);
        }
        EmailAddress email = e.isTextual() ? EmailAddress.parse(e.textValue()) : null;
        if (email == null) {
            throw new Denied(Reason.EMAIL_INVALID);
        }
        return email;
    }

    private static void checkAudience(JsonNode aud, String expected) throws Denied {
        if (aud != null && aud.isTextual() && aud.textValue().equals(expected)) {
            return;
        }
        if (aud != null && aud.isArray() && aud.size() == 1 && aud.get(0).isTextual() && aud.get(0).textValue().equals(expected)) {
            return;
        }
        throw new Denied(Reason.AUDIENCE_MISMATCH);
    }

    /** A NumericDate (seconds, possibly fractional) as whole seconds; denies with {@code missing} otherwise. */
    static long numericDate(JsonNode n, Reason missing) throws Denied {
        if (n == null || !n.isNumber()) {
            throw new Denied(missing);
        }
        if (n.isIntegralNumber()) {
            if (!n.canConvertToLong()) {
                throw new Denied(missing);
            }
            long v = n.longValue();
            if (v < 0 || v > 1L << 40) {
                throw new Denied(missing);
            }
            return v;
        }
        double d = n.doubleValue();
        if (!Double.isFinite(d) || d < 0 || d > (double) (1L << 40)) {
            throw new Denied(missing);
        }
        return (long) Math.floor(d);
    }
}
