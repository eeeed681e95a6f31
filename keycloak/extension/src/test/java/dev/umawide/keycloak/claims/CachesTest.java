package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.jupiter.api.Test;

/** JWKS cache (TTL, refetch on unknown kid, rate limit, stale-on-error) and discovery cache. */
class CachesTest {

    static final String JWKS = "https://cp.foo.example/jwks";
    static final TrustScope STRICT = new TrustScope("realm-1", "policy-1", false);
    final AtomicLong now = new AtomicLong(1_000_000L);
    final FakeFetcher fetcher = new FakeFetcher();
    final JwksCache cache = new JwksCache(now::get, 4);
    final JwksCache.Settings settings = new JwksCache.Settings(STRICT, 600_000L, 10_000L);

    private Jwk find(String kid) throws Denied {
        return cache.find(URI.create(JWKS), kid, JwsAlgorithm.ES256, fetcher, settings);
    }

    @Test
    void cachesKeys() throws Exception {
        fetcher.put(JWKS, TestKeys.jwks(TestKeys.jwk(TestKeys.ec256(), "k1")));
        Jwk first = find("k1");
        now.addAndGet(599_000L);
        assertSame(first, find("k1"));
        assertEquals(1, fetcher.count(JWKS));
    }

    /** Finding 5: what one realm, policy or lax setting fetched is never what another trusts. */
    @Test
    void keysArePerTrustScope() throws Exception {
        fetcher.put(JWKS, TestKeys.jwks(TestKeys.jwk(TestKeys.ec256(), "k1")));
        TrustScope lax = new TrustScope("realm-1", "policy-1", true);
        cache.find(URI.create(JWKS), "k1", JwsAlgorithm.ES256, fetcher, new JwksCache.Settings(lax, 600_000L, 10_000L));
        FakeFetcher unreachable = new FakeFetcher();
        for (TrustScope other : List.of(STRICT, new TrustScope("realm-2", "policy-1", true), new TrustScope("realm-1", "policy-2", true))) {
            JwksCache.Settings s = new JwksCache.Settings(other, 600_000L, 10_000L);
            assertEquals(Reason.JWKS_UNAVAILABLE, assertThrows(Denied.class,
                    () -> cache.find(URI.create(JWKS), "k1", JwsAlgorithm.ES256, unreachable, s)).reason(), other.toString());
        }
        assertEquals(3, unreachable.count(JWKS), "each scope fetched for itself");
    }

    @Test
    void discoveryIsPerTrustScope() throws Exception {
        fetcher.put(WK, doc("{\"issuer\":\"https://cp.foo.example\",\"jwks_uri\":\"https://cp.foo.example/jwks\",\"domains\":[\"foo.example\"]}"));
        discovery.get("foo.example", fetcher, new DiscoveryCache.Settings(new TrustScope("realm-1", "policy-1", true), 3_600_000L, 10_000L));
        FakeFetcher unreachable = new FakeFetcher();
        assertEquals(Reason.DISCOVERY_FAILED, assertThrows(Denied.class, () -> discovery.get("foo.example", unreachable, dset)).reason());
        assertEquals(1, unreachable.count(WK));
    }

    @Test
    void refetchesAfterTtl() throws Exception {
        fetcher.put(JWKS, TestKeys.jwks(TestKeys.jwk(TestKeys.ec256(), "k1")));
        find("k1");
        now.addAndGet(600_000L);
        find("k1");
        assertEquals(2, fetcher.count(JWKS));
    }

    @Test
    void unknownKidRefetchesRateLimited() throws Exception {
        fetcher.put(JWKS, TestKeys.jwks(TestKeys.jwk(TestKeys.ec256(), "k1")));
        find("k1");
        now.addAndGet(10_000L);
        assertEquals(Reason.UNKNOWN_KID, assertThrows(Denied.class, () -> find("k2")).reason());
        assertEquals(2, fetcher.count(JWKS), "unknown kid refetches");
        assertEquals(Reason.UNKNOWN_KID, assertThrows(Denied.class, () -> find("k3")).reason());
        assertEquals(Reason.UNKNOWN_KID, assertThrows(Denied.class, () -> find("k4")).reason());
        assertEquals(2, fetcher.count(JWKS), "but not more often than the minimum refresh interval");
        // The provider rotates: after the interval the new kid is found.
        fetcher.put(JWKS, TestKeys.jwks(TestKeys.jwk(TestKeys.ec256(), "k1"), TestKeys.jwk(TestKeys.ec256(), "k2")));
        now.addAndGet(10_000L);
        assertEquals("k2", find("k2").kid());
        assertEquals(3, fetcher.count(JWKS));
    }

    @Test
    void failedRefetchKeepsLastGoodKeys() throws Exception {
        fetcher.put(JWKS, TestKeys.jwks(TestKeys.jwk(TestKeys.ec256(), "k1")));
        find("k1");
        fetcher.put(JWKS, "not json".getBytes(StandardCharsets.UTF_8));
        now.addAndGet(700_000L);
        assertEquals("k1", find("k1").kid());
        assertEquals(2, fetcher.count(JWKS));
    }

    @Test
    void unavailableWithoutAnyKeys() {
        assertEquals(Reason.JWKS_UNAVAILABLE, assertThrows(Denied.class, () -> find("k1")).reason());
        assertEquals(Reason.JWKS_UNAVAILABLE, assertThrows(Denied.class, () -> find("k1")).reason());
        assertEquals(1, fetcher.count(JWKS), "failures are rate-limited too");
    }

    @Test
    void boundedNumberOfUrls() throws Exception {
        for (int i = 0; i < 10; i++) {
            String u = "https://cp" + i + ".example/jwks";
            fetcher.put(u, TestKeys.jwks(TestKeys.jwk(TestKeys.ec256(), "k")));
            now.incrementAndGet();
            cache.find(URI.create(u), "k", JwsAlgorithm.ES256, fetcher, settings);
        }
        assertTrue(cache.size() <= 4, "size " + cache.size());
    }

    // ---- discovery

    static final String WK = "https://foo.example/.well-known/uma-wide-ecosystem-claims-provider";
    final DiscoveryCache discovery = new DiscoveryCache(now::get, 8);
    final DiscoveryCache.Settings dset = new DiscoveryCache.Settings(STRICT, 3_600_000L, 10_000L);

    private static byte[] doc(String json) {
        return json.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void discoveryDocumentParsedAndCached() throws Exception {
        fetcher.put(WK, doc("{\"issuer\":\"https://cp.foo.example\",\"claims_endpoint\":\"https://cp.foo.example/claims/token\","
                + "\"jwks_uri\":\"https://cp.foo.example/jwks\",\"domains\":[\"FOO.example\",\"not a domain\"],"
                + "\"signing_alg_values_supported\":[\"ES256\"]}"));
        DiscoveryDocument d = discovery.get("foo.example", fetcher, dset);
        assertEquals("https://cp.foo.example", d.issuer());
        assertEquals(URI.create("https://cp.foo.example/jwks"), d.jwksUri());
        assertEquals(Set.of("foo.example"), d.domains());
        now.addAndGet(3_599_000L);
        discovery.get("foo.example", fetcher, dset);
        assertEquals(1, fetcher.count(WK));
        now.addAndGet(1_000L);
        discovery.get("foo.example", fetcher, dset);
        assertEquals(2, fetcher.count(WK));
    }

    @Test
    void discoveryFailureIsRememberedBriefly() {
        assertEquals(Reason.DISCOVERY_FAILED, assertThrows(Denied.class, () -> discovery.get("foo.example", fetcher, dset)).reason());
        assertEquals(Reason.DISCOVERY_FAILED, assertThrows(Denied.class, () -> discovery.get("foo.example", fetcher, dset)).reason());
        assertEquals(1, fetcher.count(WK));
        now.addAndGet(10_000L);
        assertThrows(Denied.class, () -> discovery.get("foo.example", fetcher, dset));
        assertEquals(2, fetcher.count(WK));
    }

    @Test
    void discoveryDocumentsRefused() {
        String[] bad = {
            "[]",
            "{\"jwks_uri\":\"https://cp.foo.example/jwks\",\"domains\":[\"foo.example\"]}",
            "{\"issuer\":\"https://cp.foo.example\",\"domains\":[\"foo.example\"]}",
            "{\"issuer\":\"https://cp.foo.example\",\"jwks_uri\":\"http://cp.foo.example/jwks\",\"domains\":[\"foo.example\"]}",
            "{\"issuer\":\"https://cp.foo.example\",\"jwks_uri\":\"https://cp.foo.example/jwks\"}",
            "{\"issuer\":\"https://cp.foo.example\",\"jwks_uri\":\"https://cp.foo.example/jwks\",\"domains\":[]}",
            "{\"issuer\":\"https://cp.foo.example\",\"jwks_uri\":\"https://cp.foo.example/jwks\",\"domains\":\"foo.example\"}",
        };
        for (String b : bad) {
            assertThrows(IOException.class, () -> DiscoveryDocument.parse(doc(b), false), b);
        }
    }

    @Test
    void discoveryUrl() {
        assertEquals(URI.create(WK), DiscoveryDocument.urlFor("foo.example"));
    }
}
