package dev.umawide.keycloak.claims;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;

/** BASE64URL helpers: strict no-padding decode for JWS parts, and the ticket digest. */
final class Base64Url {
    private Base64Url() {
    }

    /** Decodes unpadded BASE64URL; null when the input has other characters or a bad length. */
    static byte[] decodeNoPad(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
            if (!ok) {
                return null;
            }
        }
        if (s.length() % 4 == 1) {
            return null;
        }
        try {
            return Base64.getUrlDecoder().decode(s);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** Decodes BASE64URL with or without trailing '=' padding; null when malformed. */
    static byte[] decodeLenient(String s) {
        String t = s;
        int end = t.length();
        while (end > 0 && t.charAt(end - 1) == '=' && t.length() - end < 2) {
            end--;
        }
        t = t.substring(0, end);
        return decodeNoPad(t);
    }

    static String encodeNoPad(byte[] b) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    static byte[] sha256(byte[] b) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(b);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** BASE64URL-NOPAD(SHA-256(ticket)) over the ticket's UTF-8 bytes, as docs/PROTOCOL.md 5.1. */
    static String ticketDigest(String ticket) {
        return encodeNoPad(sha256(ticket.getBytes(StandardCharsets.UTF_8)));
    }
}
