package dev.umawide.keycloak.claims;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.keycloak.authorization.permission.ResourcePermission;

/**
 * Rewrites the claims of a granted permission, which Keycloak filled with the ticket's and the
 * pushed claims and copies into the RPT. Afterwards it holds exactly {@code sender_email},
 * {@code sender_iss}, {@code sender_sub} (from the verified claims token), the vetted
 * {@code content_sha256}, {@code content_length}, {@code incoming_uri}, where well-formed
 * {@code content_type} and {@code file_name}, a fresh {@code grant_id}, and {@code grant_mac}
 * ({@link GrantMac}) over all of them: one value each. Nothing
 * else that was pushed survives, a pushed {@code grant_id} or {@code sender_*} included.
 */
final class PermissionClaims {

    static final String SENDER_EMAIL = "sender_email";
    static final String SENDER_ISS = "sender_iss";
    static final String SENDER_SUB = "sender_sub";
    static final String GRANT_ID = "grant_id";

    private static final SecureRandom RANDOM = new SecureRandom();

    private PermissionClaims() {
    }

    /** Rewrites in place; returns the names of claims that were present and are not kept (for the debug log). */
    static List<String> rewrite(ResourcePermission permission, Grant grant, String macKey) {
        List<String> dropped = new ArrayList<>();
        for (String name : new ArrayList<>(permission.getClaims().keySet())) {
            permission.removeClaim(name);
            if (!grant.vetted().containsKey(name) && !name.equals(PushedClaims.CLAIMS_TOKEN) && !name.startsWith("sender_")) {
                dropped.add(name);
            }
        }
        Map<String, String> out = new LinkedHashMap<>(grant.vetted());
        out.put(SENDER_EMAIL, grant.sender().email());
        out.put(SENDER_ISS, grant.sender().issuer());
        out.put(SENDER_SUB, grant.sender().subject());
        out.put(GRANT_ID, newGrantId());
        String resourceId = permission.getResource() == null ? "" : permission.getResource().getId();
        out.put(GrantMac.CLAIM, GrantMac.compute(macKey, resourceId, out));
        for (Map.Entry<String, String> e : out.entrySet()) {
            permission.addClaim(e.getKey(), e.getValue());
        }
        return dropped;
    }

    /** 22 characters: BASE64URL without padding of 16 random bytes. */
    static String newGrantId() {
        byte[] b = new byte[16];
        RANDOM.nextBytes(b);
        return Base64Url.encodeNoPad(b);
    }

    /** The keys a granted permission carries at most. */
    static final Set<String> KEYS = Set.of(SENDER_EMAIL, SENDER_ISS, SENDER_SUB, GRANT_ID, GrantMac.CLAIM, IncomingUri.CLAIM,
            ContentMetadata.CONTENT_SHA256, ContentMetadata.CONTENT_LENGTH, ContentMetadata.CONTENT_TYPE,
            ContentMetadata.FILE_NAME);
}
