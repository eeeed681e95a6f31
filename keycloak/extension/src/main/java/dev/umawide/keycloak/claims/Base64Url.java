package dev.umawide.keycloak.claims;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;

/** BASE64URL helpers: strict no-padding decode for JWS parts, and the ticket digest. */
final class Base64Url {
    private Base64Url() {
    }

    /**
     * Decodes unpadded BASE64URL; null when the input has other characters or a bad length. The
     * JDK's URL decoder refuses every character outside the BASE64URL alphabet but the padding
     * {@code '='}, which is refused here first (cheaper than checking each character ourselves: the
     * policy runs interpreted on a Keycloak that has not compiled it yet, issue 17).
     */
    static byte[] decodeNoPad(String s) {
        if (s.length() % 4 == 1 || s.indexOf('=') >= 0) {
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

    /** Cloned per use: cheaper than a provider lookup per call (never updated itself). */
    private static final MessageDigest SHA256 = newSha256();

    private static MessageDigest newSha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] sha256(byte[] b) {
        MessageDigest md;
        try {
            md = (MessageDigest) SHA256.clone();
        } catch (CloneNotSupportedException e) {
            md = newSha256();
        }
        return md.digest(b);
    }

    /** BASE64URL-NOPAD(SHA-256(ticket)) over the ticket's UTF-8 bytes, as docs/PROTOCOL.md 5.1. */
    static String ticketDigest(String ticket) {
        return encodeNoPad(sha256(ticket.getBytes(StandardCharsets.UTF_8)));
    }
}
