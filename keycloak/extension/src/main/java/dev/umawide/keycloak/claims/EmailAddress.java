package dev.umawide.keycloak.claims;

import java.util.Locale;

/**
 * An email address as the policy trusts it: lower-cased, exactly one '@', a non-empty local
 * part of printable non-space ASCII, and a valid domain.
 */
record EmailAddress(String address, String domain) {

    static final int MAX_LENGTH = 254;

    /** Parses and normalizes; null when the value is not acceptable. */
    static EmailAddress parse(String raw) {
        if (raw == null || raw.isEmpty() || raw.length() > MAX_LENGTH) {
            return null;
        }
        String lower = raw.toLowerCase(Locale.ROOT);
        int at = lower.indexOf('@');
        if (at <= 0 || at != lower.lastIndexOf('@') || at > 64) {
            return null;
        }
        for (int i = 0; i < at; i++) {
            char c = lower.charAt(i);
            if (c <= 0x20 || c >= 0x7f) {
                return null;
            }
        }
        String domain = Domains.normalize(lower.substring(at + 1));
        if (domain == null) {
            return null;
        }
        return new EmailAddress(lower, domain);
    }
}
