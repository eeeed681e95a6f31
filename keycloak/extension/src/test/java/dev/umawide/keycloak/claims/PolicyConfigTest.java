package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class PolicyConfigTest {

    private static final String ONE_PROVIDER =
            "[{\"issuer\":\"https://cp.foo.example\",\"jwks_uri\":\"https://cp.foo.example/jwks\",\"domains\":[\"Foo.Example\",\"sub.foo.example\"]}]";

    private static PolicyConfig parse(Map<String, String> m) throws InvalidConfigException {
        return PolicyConfig.parse(m, true);
    }

    private static InvalidConfigException refused(String key, String value) {
        Map<String, String> m = new HashMap<>();
        m.put(key, value);
        return assertThrows(InvalidConfigException.class, () -> parse(m));
    }

    @Test
    void defaults() throws Exception {
        PolicyConfig c = parse(Map.of());
        assertTrue(c.providers().isEmpty());
        assertFalse(c.discoveryEnabled());
        assertFalse(c.allowInsecureUrls());
        assertEquals(EnumSet.of(JwsAlgorithm.ES256, JwsAlgorithm.RS256, JwsAlgorithm.PS256, JwsAlgorithm.EdDSA), c.algorithms());
        assertEquals(300, c.maxTokenLifetimeSeconds());
        assertEquals(30, c.clockSkewSeconds());
        assertEquals(16384, c.maxClaimTokenLength());
        assertEquals(8192, c.maxClaimsTokenLength());
        assertEquals(3000, c.httpTimeoutMillis());
        assertEquals(65536, c.httpMaxResponseBytes());
        assertEquals(600, c.jwksCacheSeconds());
        assertEquals(10, c.jwksMinRefreshSeconds());
        assertEquals(3600, c.discoveryCacheSeconds());
    }

    @Test
    void nullConfigIsDefaults() throws Exception {
        assertTrue(PolicyConfig.parse(null, true).providers().isEmpty());
    }

    @Test
    void everyKeyIsRead() throws Exception {
        Map<String, String> m = new HashMap<>();
        m.put("claimsProviders", ONE_PROVIDER);
        m.put("discoveryEnabled", "TRUE");
        m.put("allowInsecureUrls", " false ");
        m.put("allowedAlgorithms", "[\"ES256\",\"EdDSA\",\"PS512\"]");
        m.put("maxTokenLifetimeSeconds", "120");
        m.put("clockSkewSeconds", "0");
        m.put("maxClaimTokenLength", "4096");
        m.put("maxClaimsTokenLength", "2048");
        m.put("httpTimeoutMillis", "500");
        m.put("httpMaxResponseBytes", "2048");
        m.put("jwksCacheSeconds", "60");
        m.put("jwksMinRefreshSeconds", "0");
        m.put("discoveryCacheSeconds", "120");
        PolicyConfig c = parse(m);
        ClaimsProviderEntry e = c.providers().get("https://cp.foo.example");
        assertEquals(URI.create("https://cp.foo.example/jwks"), e.jwksUri());
        assertEquals(Set.of("foo.example", "sub.foo.example"), e.domains());
        assertTrue(c.discoveryEnabled());
        assertFalse(c.allowInsecureUrls());
        assertEquals(EnumSet.of(JwsAlgorithm.ES256, JwsAlgorithm.EdDSA, JwsAlgorithm.PS512), c.algorithms());
        assertEquals(120, c.maxTokenLifetimeSeconds());
        assertEquals(0, c.clockSkewSeconds());
        assertEquals(4096, c.maxClaimTokenLength());
        assertEquals(2048, c.maxClaimsTokenLength());
        assertEquals(500, c.httpTimeoutMillis());
        assertEquals(2048, c.httpMaxResponseBytes());
        assertEquals(60, c.jwksCacheSeconds());
        assertEquals(0, c.jwksMinRefreshSeconds());
        assertEquals(120, c.discoveryCacheSeconds());
    }

    @ParameterizedTest
    @ValueSource(strings = {"yes", "1", "on", "tru"})
    void booleansAreTrueOrFalseOnly(String v) {
        refused("discoveryEnabled", v);
        refused("allowInsecureUrls", v);
    }

    @ParameterizedTest
    @ValueSource(strings = {"maxTokenLifetimeSeconds", "clockSkewSeconds", "maxClaimTokenLength", "maxClaimsTokenLength",
            "httpTimeoutMillis", "httpMaxResponseBytes", "jwksCacheSeconds", "jwksMinRefreshSeconds", "discoveryCacheSeconds"})
    void numbersAreBoundedWholeNumbers(String key) {
        refused(key, "-1");
        refused(key, "1.5");
        refused(key, "ten");
        refused(key, "99999999999");
        refused(key, "9999999");
    }

    @Test
    void numberRanges() {
        refused("maxTokenLifetimeSeconds", "0");
        refused("maxTokenLifetimeSeconds", "3601");
        refused("clockSkewSeconds", "301");
        refused("maxClaimTokenLength", "255");
        refused("httpTimeoutMillis", "99");
        refused("jwksCacheSeconds", "9");
    }

    @ParameterizedTest
    @ValueSource(strings = {"[\"none\"]", "[\"HS256\"]", "[\"ES256\",\"HS512\"]", "[\"es256\"]", "[]", "\"ES256\"", "[1]", "ES256,RS256", "[\"ES256\""})
    void algorithmsRefused(String v) {
        refused("allowedAlgorithms", v);
    }

    @Test
    void noneAndHmacAreNeverSupported() {
        InvalidConfigException e = refused("allowedAlgorithms", "[\"none\"]");
        assertTrue(e.getMessage().contains("never none or HMAC"), e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{}",
        "[1]",
        "not json",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"https://a.example/jwks\"}]",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"https://a.example/jwks\",\"domains\":[]}]",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"https://a.example/jwks\",\"domains\":\"a.example\"}]",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"https://a.example/jwks\",\"domains\":[\"bad domain\"]}]",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"https://a.example/jwks\",\"domains\":[\"-a.example\"]}]",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"https://a.example/jwks\",\"domains\":[1]}]",
        "[{\"jwks_uri\":\"https://a.example/jwks\",\"domains\":[\"a.example\"]}]",
        "[{\"issuer\":\"https://a.example\",\"domains\":[\"a.example\"]}]",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"http://a.example/jwks\",\"domains\":[\"a.example\"]}]",
        "[{\"issuer\":\"http://a.example\",\"jwks_uri\":\"https://a.example/jwks\",\"domains\":[\"a.example\"]}]",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"ftp://a.example/jwks\",\"domains\":[\"a.example\"]}]",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"https://u:p@a.example/jwks\",\"domains\":[\"a.example\"]}]",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"https://a.example/jwks#x\",\"domains\":[\"a.example\"]}]",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"/jwks\",\"domains\":[\"a.example\"]}]",
        "[{\"issuer\":\"https://a.example\",\"jwksUri\":\"https://a.example/jwks\",\"domains\":[\"a.example\"]}]",
        "[{\"issuer\":\"https://a.example\",\"jwks_uri\":\"https://a.example/jwks\",\"domains\":[\"a.example\"]},"
                + "{\"issuer\":\"https://a.example\",\"jwks_uri\":\"https://a.example/jwks2\",\"domains\":[\"b.example\"]}]"
    })
    void claimsProvidersRefused(String v) {
        refused("claimsProviders", v);
    }

    @Test
    void insecureUrlsOnlyWhenAllowed() throws Exception {
        String http = "[{\"issuer\":\"http://127.0.0.1:8081\",\"jwks_uri\":\"http://127.0.0.1:8081/jwks\",\"domains\":[\"foo.example\"]}]";
        refused("claimsProviders", http);
        PolicyConfig c = parse(Map.of("claimsProviders", http, "allowInsecureUrls", "true"));
        assertEquals(URI.create("http://127.0.0.1:8081/jwks"), c.providers().get("http://127.0.0.1:8081").jwksUri());
    }

    @Test
    void unknownKeysRefusedOnlyWhenStrict() throws Exception {
        Map<String, String> typo = Map.of("allowInsecureURLs", "true");
        InvalidConfigException e = assertThrows(InvalidConfigException.class, () -> PolicyConfig.parse(typo, true));
        assertTrue(e.getMessage().contains("allowInsecureURLs"));
        assertFalse(PolicyConfig.parse(typo, false).allowInsecureUrls());
    }

    @Test
    void genericPolicyKeysTolerated() throws Exception {
        parse(Map.of("resources", "[]", "scopes", "[]", "applyPolicies", "[]"));
    }

    @Test
    void blankValuesMeanDefaults() throws Exception {
        PolicyConfig c = parse(Map.of("maxTokenLifetimeSeconds", " ", "allowedAlgorithms", "", "claimsProviders", ""));
        assertEquals(300, c.maxTokenLifetimeSeconds());
        assertEquals(PolicyConfig.DEFAULT_ALGORITHMS, c.algorithms());
    }
    @Test
    void blockedDomainsAndPins() throws Exception {
        Map<String, String> m = new HashMap<>();
        m.put("claimsProviders", ONE_PROVIDER);
        m.put("blockedDomains", "[\"Evil.Example\",\"evil.example\"]");
        m.put("allowPrivateAddresses", "true");
        PolicyConfig c = parse(m);
        assertEquals(Set.of("evil.example"), c.blockedDomains());
        assertEquals(Set.of("foo.example", "sub.foo.example"), c.pinnedDomains());
        assertTrue(c.allowPrivateAddresses());
        PolicyConfig d = parse(Map.of());
        assertTrue(d.blockedDomains().isEmpty());
        assertFalse(d.allowPrivateAddresses());
    }

    @ParameterizedTest
    @ValueSource(strings = {"x", "{}", "[1]", "[\"not a domain\"]", "[\"-x.example\"]", "\"foo.example\""})
    void badBlockedDomainsRefused(String v) {
        refused("blockedDomains", v);
    }

    @Test
    void aDomainIsPinnedOrBlockedNotBoth() {
        Map<String, String> m = new HashMap<>();
        m.put("claimsProviders", ONE_PROVIDER);
        m.put("blockedDomains", "[\"foo.example\"]");
        assertThrows(InvalidConfigException.class, () -> parse(m));
    }
}
