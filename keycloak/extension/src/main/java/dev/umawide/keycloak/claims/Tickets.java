package dev.umawide.keycloak.claims;

import com.fasterxml.jackson.databind.JsonNode;

/** What the policy needs from a permission ticket Keycloak has already verified. */
final class Tickets {
    /** Longer tickets are refused outright. */
    static final int MAX_LENGTH = 16384;
    /** How long a used ticket is remembered when its own exp cannot be read. */
    static final long MAX_REMEMBER_SECONDS = 86400;

    private Tickets() {
    }

    /**
     * Seconds to remember a used ticket: until the ticket's {@code exp} (plus skew), since Keycloak
     * accepts it until then; capped at a day.
     */
    static long rememberSeconds(String ticket, long nowSeconds, int skewSeconds) {
        try {
            JsonNode exp = CompactJws.parse(ticket, MAX_LENGTH).payload().get("exp");
            if (exp != null && exp.isIntegralNumber() && exp.canConvertToLong()) {
                long left = exp.longValue() - nowSeconds + skewSeconds;
                return Math.max(1L, Math.min(MAX_REMEMBER_SECONDS, left));
            }
        } catch (Denied e) {
            // not a JWS we can read: fall through
        }
        return MAX_REMEMBER_SECONDS;
    }
}
