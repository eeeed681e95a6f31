package dev.umawide.keycloak.claims;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.List;
import java.util.Map;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The policy's attestation of a granted permission: {@code grant_mac}, an HMAC-SHA256 keyed with
 * the Resource Server's client secret over the resource id and the claims this policy wrote.
 *
 * <p>Why: Keycloak signs an RPT whatever road produced it, and on a road that skips policies (an
 * owner-managed resource's shares, the owner's own token) it copies the pushed claims verbatim,
 * {@code sender_email} and {@code grant_id} included. The Resource Server can therefore not tell
 * from the claims alone that this policy verified them. The MAC it can check: only this policy,
 * inside Keycloak, and the Resource Server itself know the key.
 *
 * <p>The MAC input is unambiguous: a version line, then for each field in {@link #FIELDS}
 * order its UTF-8 byte length in decimal, a colon, the value and a newline (an absent optional
 * field is the empty value). {@code internal/grantmac} in the Go tree computes the same; both
 * test the same vector.
 */
final class GrantMac {

    static final String CLAIM = "grant_mac";
    static final String VERSION = "umawide-grant-mac-v1";

    /** The permission claims covered, in MAC order (the resource id comes first). */
    static final List<String> FIELDS = List.of(PermissionClaims.GRANT_ID, PermissionClaims.SENDER_EMAIL,
            PermissionClaims.SENDER_ISS, PermissionClaims.SENDER_SUB, ContentMetadata.CONTENT_SHA256,
            ContentMetadata.CONTENT_LENGTH, IncomingUri.CLAIM, ContentMetadata.CONTENT_TYPE, ContentMetadata.FILE_NAME);

    private GrantMac() {
    }

    /** BASE64URL without padding of the MAC (43 characters). */
    static String compute(String key, String resourceId, Map<String, String> claims) {
        StringBuilder in = new StringBuilder(512).append(VERSION).append('\n');
        field(in, resourceId);
        for (String name : FIELDS) {
            field(in, claims.getOrDefault(name, ""));
        }
        try {
            Mac mac = newMac();
            mac.init(new SecretKeySpec(key.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            return Base64Url.encodeNoPad(mac.doFinal(in.toString().getBytes(StandardCharsets.UTF_8)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }

    /**
     * A Mac whose provider is chosen already (JCA picks it on the first init, by creating
     * candidates reflectively): each grant clones it and sets its own key, instead of a provider
     * search per grant. The throwaway key is zeros; no secret is kept here.
     */
    private static final Mac PROTOTYPE = prototype();

    private static Mac prototype() {
        try {
            Mac m = Mac.getInstance("HmacSHA256");
            m.init(new SecretKeySpec(new byte[32], "HmacSHA256"));
            return m;
        } catch (GeneralSecurityException | RuntimeException e) {
            return null;
        }
    }

    private static Mac newMac() throws GeneralSecurityException {
        if (PROTOTYPE != null) {
            try {
                return (Mac) PROTOTYPE.clone();
            } catch (CloneNotSupportedException e) {
                // that provider's Mac cannot be cloned: a new one per call
            }
        }
        return Mac.getInstance("HmacSHA256");
    }

    private static void field(StringBuilder in, String value) {
        String v = value == null ? "" : value;
        in.append(v.getBytes(StandardCharsets.UTF_8).length).append(':').append(v).append('\n');
    }
}
