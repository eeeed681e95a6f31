package dev.umawide.keycloak.claims;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.keycloak.authorization.permission.ResourcePermission;

/**
 * Rewrites the claims of a granted permission (which Keycloak filled with the pushed claims and
 * copies into the RPT): only well-formed content metadata is kept, the raw claims token and every
 * other pushed claim are removed, and {@code sender_email}, {@code sender_iss}, {@code sender_sub}
 * are set from the verified token, replacing anything pushed under those names.
 */
final class PermissionClaims {

    static final String SENDER_EMAIL = "sender_email";
    static final String SENDER_ISS = "sender_iss";
    static final String SENDER_SUB = "sender_sub";

    private PermissionClaims() {
    }

    /** Rewrites in place; returns the names of the pushed claims that were dropped (for the debug log). */
    static List<String> rewrite(ResourcePermission permission, Sender sender) {
        Map<String, Collection<?>> before = new LinkedHashMap<>();
        for (Map.Entry<String, Set<String>> e : permission.getClaims().entrySet()) {
            before.put(e.getKey(), new ArrayList<Object>(e.getValue()));
        }
        for (String name : before.keySet()) {
            permission.removeClaim(name);
        }
        List<String> dropped = new ArrayList<>();
        for (Map.Entry<String, Collection<?>> e : before.entrySet()) {
            String name = e.getKey();
            Collection<?> values = e.getValue();
            Object only = values.size() == 1 ? values.iterator().next() : null;
            if (ContentMetadata.isMetadataKey(name) && only instanceof String && ContentMetadata.valid(name, (String) only)) {
                permission.addClaim(name, (String) only);
            } else if (!name.equals(PushedClaims.CLAIMS_TOKEN) && !name.startsWith("sender_")) {
                dropped.add(name);
            }
        }
        permission.addClaim(SENDER_EMAIL, sender.email());
        permission.addClaim(SENDER_ISS, sender.issuer());
        permission.addClaim(SENDER_SUB, sender.subject());
        return dropped;
    }
}
