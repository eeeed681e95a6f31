package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.keycloak.authorization.permission.ResourcePermission;

class PermissionClaimsTest {

    static final Sender SENDER = new Sender("alice@foo.example", "https://cp.foo.example", "alice-id");
    static final String SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    private static ResourcePermission permission(Map<String, List<String>> claims) {
        return new ResourcePermission(null, new ArrayList<>(), null, claims);
    }

    @Test
    void keepsGoodMetadataRemovesTokenSetsSender() {
        Map<String, List<String>> pushed = new HashMap<>();
        pushed.put("claims_token", List.of("a.b.c"));
        pushed.put("content_sha256", List.of(SHA));
        pushed.put("content_length", List.of("42"));
        pushed.put("content_type", List.of("text/plain"));
        pushed.put("file_name", List.of("hello.txt"));
        ResourcePermission p = permission(pushed);
        List<String> dropped = PermissionClaims.rewrite(p, SENDER);
        assertEquals(Map.of(
                "content_sha256", Set.of(SHA),
                "content_length", Set.of("42"),
                "content_type", Set.of("text/plain"),
                "file_name", Set.of("hello.txt"),
                "sender_email", Set.of("alice@foo.example"),
                "sender_iss", Set.of("https://cp.foo.example"),
                "sender_sub", Set.of("alice-id")), p.getClaims());
        assertEquals(List.of(), dropped);
    }

    @Test
    void dropsMalformedMetadataAndUnknownClaims() {
        Map<String, List<String>> pushed = new HashMap<>();
        pushed.put("claims_token", List.of("a.b.c"));
        pushed.put("content_sha256", List.of(SHA.toUpperCase()));
        pushed.put("content_length", List.of("42", "43"));
        pushed.put("content_type", List.of("not a type"));
        pushed.put("file_name", List.of("../../etc/passwd"));
        pushed.put("role", List.of("admin"));
        ResourcePermission p = permission(pushed);
        List<String> dropped = PermissionClaims.rewrite(p, SENDER);
        assertEquals(Set.of("sender_email", "sender_iss", "sender_sub"), p.getClaims().keySet());
        assertEquals(Set.of("content_sha256", "content_length", "content_type", "file_name", "role"), Set.copyOf(dropped));
    }

    @Test
    void senderClaimsReplacePushedOnes() {
        Map<String, List<String>> pushed = new HashMap<>();
        pushed.put("claims_token", List.of("a.b.c"));
        pushed.put("sender_email", List.of("mallory@evil.example"));
        pushed.put("sender_iss", List.of("https://evil.example", "https://cp.foo.example"));
        pushed.put("sender_sub", List.of("mallory"));
        ResourcePermission p = permission(pushed);
        PermissionClaims.rewrite(p, SENDER);
        assertEquals(Set.of("alice@foo.example"), p.getClaims().get("sender_email"));
        assertEquals(Set.of("https://cp.foo.example"), p.getClaims().get("sender_iss"));
        assertEquals(Set.of("alice-id"), p.getClaims().get("sender_sub"));
    }

    @Test
    @SuppressWarnings({"unchecked", "rawtypes"})
    void nonStringValuesAreDropped() {
        // Keycloak parses pushed claims into raw maps: a value may not be a String at runtime.
        Map raw = new HashMap();
        raw.put("content_length", new ArrayList<>(List.of(42)));
        ResourcePermission p = permission(raw);
        PermissionClaims.rewrite(p, SENDER);
        assertEquals(Set.of("sender_email", "sender_iss", "sender_sub"), p.getClaims().keySet());
    }

    @Test
    void noClaimsAtAll() {
        ResourcePermission p = new ResourcePermission(null, new ArrayList<>(), null);
        PermissionClaims.rewrite(p, SENDER);
        assertEquals(3, p.getClaims().size());
    }
}
