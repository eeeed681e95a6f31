package dev.umawide.keycloak.claims;

import java.io.IOException;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * What the policy needs from a permission ticket Keycloak has already verified (signature and
 * expiry) before any policy runs. Keycloak's decoder accepts several spellings of one ticket (a
 * trailing {@code .}, {@code =} padding, the {@code +}/{@code /} alphabet), so everything here
 * reads the decoded payload, never the string.
 */
final class Tickets {
    /** Longer tickets are refused outright. */
    static final int MAX_LENGTH = 16384;
    /** How long a used ticket is remembered when its own exp cannot be read. */
    static final long MAX_REMEMBER_SECONDS = 86400;

    /** A ticket's decoded payload: its bytes (its identity) and the JSON object. */
    record Payload(byte[] bytes, ObjectNode json) {
    }

    private Tickets() {
    }

    /**
     * Decodes the payload as Keycloak's decoder does: the part between the first and second dot,
     * either BASE64 alphabet, padding optional. Denies {@code no_ticket} when that fails (Keycloak
     * would have refused such a ticket before the policy ran).
     */
    static Payload payload(String ticket) throws Denied {
        if (ticket == null || ticket.isEmpty() || ticket.length() > MAX_LENGTH) {
            throw new Denied(Reason.NO_TICKET);
        }
        int dot1 = ticket.indexOf('.');
        int dot2 = dot1 < 0 ? -1 : ticket.indexOf('.', dot1 + 1);
        if (dot1 < 0 || dot2 < 0) {
            throw new Denied(Reason.NO_TICKET, "ticket not a JWS");
        }
        String part = ticket.substring(dot1 + 1, dot2).replace('+', '-').replace('/', '_');
        byte[] bytes = Base64Url.decodeLenient(part);
        if (bytes == null || bytes.length == 0) {
            throw new Denied(Reason.NO_TICKET, "ticket payload not base64");
        }
        try {
            return new Payload(bytes, Json.object(bytes));
        } catch (IOException | RuntimeException e) {
            throw new Denied(Reason.NO_TICKET, "ticket payload not a JSON object");
        }
    }

    /** The ticket's identity for single use: BASE64URL(SHA-256(decoded payload bytes)), whatever the spelling. */
    static String identity(Payload p) {
        return Base64Url.encodeNoPad(Base64Url.sha256(p.bytes()));
    }

    /**
     * The {@code incoming_uri} the Resource Server pushed when it asked for the ticket: Keycloak
     * carries a permission request's {@code claims} in the ticket payload's {@code claims} member
     * (one map for the whole ticket). Null unless it holds exactly one string.
     */
    static String incomingUri(Payload p) {
        JsonNode claims = p.json().get("claims");
        if (claims == null || !claims.isObject()) {
            return null;
        }
        JsonNode v = claims.get(IncomingUri.CLAIM);
        if (v != null && v.isArray() && v.size() == 1 && v.get(0).isTextual()) {
            return v.get(0).textValue();
        }
        return null;
    }

    /**
     * Seconds to remember a used ticket: until the ticket's {@code exp} (plus skew), since Keycloak
     * accepts it until then; capped at a day.
     */
    static long rememberSeconds(Payload p, long nowSeconds, int skewSeconds) {
        JsonNode exp = p.json().get("exp");
        if (exp != null && exp.isIntegralNumber() && exp.canConvertToLong()) {
            long left = exp.longValue() - nowSeconds + skewSeconds;
            return Math.max(1L, Math.min(MAX_REMEMBER_SECONDS, left));
        }
        return MAX_REMEMBER_SECONDS;
    }
}
