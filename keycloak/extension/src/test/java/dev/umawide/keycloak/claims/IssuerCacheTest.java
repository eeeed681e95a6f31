package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;

class IssuerCacheTest {

    private final AtomicInteger computed = new AtomicInteger();
    private final IssuerCache cache = new IssuerCache((base, realm) -> {
        computed.incrementAndGet();
        return base.toString() + "realms/" + realm;
    }, 4);

    @Test
    void computesOncePerBaseUriAndRealm() {
        URI a = URI.create("https://kc.bar.example/");
        assertEquals("https://kc.bar.example/realms/bar", cache.issuer(a, "bar"));
        assertEquals("https://kc.bar.example/realms/bar", cache.issuer(URI.create("https://kc.bar.example/"), "bar"));
        assertEquals(1, computed.get());
    }

    @Test
    void keyedByTheRequestsBaseUriAndTheRealm() {
        // Without a fixed hostname, Keycloak's issuer follows the request's host: never mix them up.
        assertEquals("https://kc.bar.example/realms/bar", cache.issuer(URI.create("https://kc.bar.example/"), "bar"));
        assertEquals("http://127.0.0.1:8080/realms/bar", cache.issuer(URI.create("http://127.0.0.1:8080/"), "bar"));
        assertEquals("https://kc.bar.example/realms/baz", cache.issuer(URI.create("https://kc.bar.example/"), "baz"));
        assertEquals("https://kc.bar.example/realms/bar", cache.issuer(URI.create("https://kc.bar.example/"), "bar"));
        assertEquals(3, computed.get());
    }

    @Test
    void boundedAndStillRightWhenFull() {
        for (int i = 0; i < 20; i++) {
            URI base = URI.create("https://h" + i + ".example/");
            assertEquals("https://h" + i + ".example/realms/bar", cache.issuer(base, "bar"));
            assertTrue(cache.size() <= 4, "size " + cache.size());
        }
        assertEquals(20, computed.get());
        assertEquals("https://h19.example/realms/bar", cache.issuer(URI.create("https://h19.example/"), "bar"));
        assertEquals(20, computed.get());
    }
}
