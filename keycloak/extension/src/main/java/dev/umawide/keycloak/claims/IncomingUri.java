package dev.umawide.keycloak.claims;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;
import java.util.Locale;

/**
 * The Incoming URL an RPT is bound to (issue 12, a resource indicator in the spirit of RFC 8707).
 * The client pushes it as {@code incoming_uri}; the Resource Server put its own into the ticket
 * when it asked for the ticket. Both must be the same string: the client and the Resource Server
 * each canonicalise (scheme and host lower-case, no default port, no trailing slash), so the
 * policy compares exactly and does not canonicalise a third time.
 */
final class IncomingUri {

    static final String CLAIM = "incoming_uri";
    static final int MAX_LENGTH = 2048;

    private IncomingUri() {
    }

    /** The one pushed value, vetted; denies {@code incoming_uri_missing} or {@code incoming_uri_invalid}. */
    static String pushed(PushedClaims pushed) throws Denied {
        List<String> v = pushed.claims().get(CLAIM);
        if (v == null || v.size() != 1 || v.get(0) == null || v.get(0).isEmpty()) {
            throw new Denied(Reason.INCOMING_URI_MISSING);
        }
        String value = v.get(0);
        if (!valid(value)) {
            throw new Denied(Reason.INCOMING_URI_INVALID);
        }
        return value;
    }

    /** At most 2048 characters, absolute http or https URI with a host, no user info, query or fragment. */
    static boolean valid(String value) {
        if (value == null || value.isEmpty() || value.length() > MAX_LENGTH) {
            return false;
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c <= 0x20 || c >= 0x7f) {
                return false; // URIs travel ASCII-only; spaces and controls never belong in one
            }
        }
        URI u;
        try {
            u = new URI(value);
        } catch (URISyntaxException e) {
            return false;
        }
        String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
        if (!u.isAbsolute() || u.isOpaque() || !(scheme.equals("http") || scheme.equals("https"))) {
            return false;
        }
        return u.getHost() != null && !u.getHost().isEmpty() && u.getRawUserInfo() == null && u.getRawQuery() == null
                && u.getRawFragment() == null && value.indexOf('?') < 0 && value.indexOf('#') < 0;
    }

    /** Denies {@code incoming_uri_mismatch} unless the ticket names exactly {@code pushed}. */
    static void requireMatch(String pushed, String ticketUri) throws Denied {
        if (ticketUri == null || !MessageDigest.isEqual(pushed.getBytes(StandardCharsets.UTF_8),
                ticketUri.getBytes(StandardCharsets.UTF_8))) {
            throw new Denied(Reason.INCOMING_URI_MISMATCH, ticketUri == null ? "ticket has no incoming_uri" : null);
        }
    }
}
