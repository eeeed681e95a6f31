package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.keycloak.authorization.permission.ResourcePermission;

class PermissionClaimsTest {

    static final Sender SENDER = new Sender("alice@foo.example", "https://cp.foo.example", "alice-id");
    static final String SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    static final String URI = "https://rs.bar.example/incoming/bob";

    private static ResourcePermission permission(Map<String, List<String>> claims) {
        return new ResourcePermission(null, new ArrayList<>(), null, claims);
    }

    private static Grant grant(String... more) {
        Map<String, String> v = new LinkedHashMap<>();
        v.put("content_sha256", SHA);
        v.put("content_length", "42");
        v.put("incoming_uri", URI);
        for (int i = 0; i < more.length; i += 2) {
            v.put(more[i], more[i + 1]);
        }
        return new Grant(SENDER, v);
    }

    /** What Keycloak hands the policy: the ticket's claims and the pushed ones, merged. */
    private static Map<String, List<String>> keycloakMerged() {
        Map<String, List<String>> m = new HashMap<>();
        m.put("claims_token", List.of("a.b.c"));
        m.put("content_sha256", List.of(SHA.toUpperCase()));
        m.put("content_length", List.of("42", "43"));
        m.put("incoming_uri", List.of(URI, "https://other.example/incoming/hr"));
        m.put("file_name", List.of("../../etc/passwd"));
        m.put("role", List.of("admin"));
        m.put("grant_id", List.of("chosen-by-the-client"));
        m.put("sender_email", List.of("mallory@evil.example"));
        m.put("sender_iss", List.of("https://evil.example", "https://cp.foo.example"));
        return m;
    }

    @Test
    void exactlyTheVettedClaimsSenderAndAGrantId() {
        ResourcePermission p = permission(keycloakMerged());
        List<String> dropped = PermissionClaims.rewrite(p, grant("content_type", "text/plain"), "k");
        Map<String, Set<String>> c = p.getClaims();
        assertEquals(Set.of("sender_email", "sender_iss", "sender_sub", "content_sha256", "content_length", "content_type",
                "incoming_uri", "grant_id", "grant_mac"), c.keySet());
        assertEquals(Set.of(SHA), c.get("content_sha256"));
        assertEquals(Set.of("42"), c.get("content_length"));
        assertEquals(Set.of("text/plain"), c.get("content_type"));
        assertEquals(Set.of(URI), c.get("incoming_uri"));
        assertEquals(Set.of("alice@foo.example"), c.get("sender_email"));
        assertEquals(Set.of("https://cp.foo.example"), c.get("sender_iss"));
        assertEquals(Set.of("alice-id"), c.get("sender_sub"));
        assertEquals(1, c.get("grant_id").size());
        String id = c.get("grant_id").iterator().next();
        assertNotEquals("chosen-by-the-client", id);
        assertTrue(id.matches("[A-Za-z0-9_-]{22}"), id);
        assertTrue(PermissionClaims.KEYS.containsAll(c.keySet()));
        assertEquals(Set.of("file_name", "role", "grant_id"), Set.copyOf(dropped));
    }

    @Test
    void grantIdsAreFreshEachTime() {
        Set<String> seen = new java.util.HashSet<>();
        for (int i = 0; i < 100; i++) {
            ResourcePermission p = permission(new HashMap<>());
            PermissionClaims.rewrite(p, grant(), "k");
            seen.add(p.getClaims().get("grant_id").iterator().next());
        }
        assertEquals(100, seen.size());
        assertEquals(22, PermissionClaims.newGrantId().length());
    }

    @Test
    @SuppressWarnings({"unchecked", "rawtypes"})
    void nonStringValuesInKeycloaksMapAreRemoved() {
        // Keycloak parses pushed claims into raw maps: a value may not be a String at runtime.
        Map raw = new HashMap();
        raw.put("content_length", new ArrayList<>(List.of(42)));
        ResourcePermission p = permission(raw);
        PermissionClaims.rewrite(p, grant(), "k");
        assertEquals(Set.of("42"), p.getClaims().get("content_length"));
    }
}
