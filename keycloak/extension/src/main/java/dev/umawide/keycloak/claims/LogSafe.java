package dev.umawide.keycloak.claims;

/** Makes outside strings safe for one log line: printable ASCII only, bounded. */
final class LogSafe {
    static final int MAX = 128;

    private LogSafe() {
    }

    static String clip(String s) {
        if (s == null) {
            return null;
        }
        StringBuilder b = new StringBuilder(Math.min(s.length(), MAX) + 3);
        for (int i = 0; i < s.length() && b.length() < MAX; i++) {
            char c = s.charAt(i);
            b.append(c >= 0x20 && c < 0x7f ? c : '?');
        }
        if (s.length() > MAX) {
            b.append("...");
        }
        return b.toString();
    }
}
