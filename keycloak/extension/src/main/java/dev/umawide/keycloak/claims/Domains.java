package dev.umawide.keycloak.claims;

import java.util.Locale;

/** DNS domain names as they appear in email addresses and the trust configuration. */
final class Domains {
    private Domains() {
    }

    /**
     * Lower-cases and checks a domain name: LDH labels of 1..63 characters, not starting or
     * ending with '-', 253 characters at most, no trailing dot. Returns null when invalid.
     */
    static String normalize(String domain) {
        if (domain == null || domain.isEmpty() || domain.length() > 253) {
            return null;
        }
        String d = domain.toLowerCase(Locale.ROOT);
        int labelStart = 0;
        for (int i = 0; i <= d.length(); i++) {
            if (i == d.length() || d.charAt(i) == '.') {
                int len = i - labelStart;
                if (len < 1 || len > 63) {
                    return null;
                }
                if (d.charAt(labelStart) == '-' || d.charAt(i - 1) == '-') {
                    return null;
                }
                labelStart = i + 1;
                continue;
            }
            char c = d.charAt(i);
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
                return null;
            }
        }
        return d;
    }
}
