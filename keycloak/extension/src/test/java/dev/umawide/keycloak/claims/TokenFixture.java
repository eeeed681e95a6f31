package dev.umawide.keycloak.claims;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;

/** A trusted Claims Provider with keys, a ticket, and a well-formed claims token to vary. */
final class TokenFixture {
    static final String ISS = "https://cp.foo.example";
    static final String JWKS = "https://cp.foo.example/jwks";
    static final String AUD = "https://kc.example/realms/bar";
    static final String PROVIDERS = "[{\"issuer\":\"" + ISS + "\",\"jwks_uri\":\"" + JWKS + "\",\"domains\":[\"foo.example\"]}]";

    final long now = 1_800_000_000L;
    final AtomicLong millis = new AtomicLong(now * 1000);
    final FakeFetcher fetcher = new FakeFetcher();
    final JwksCache jwksCache = new JwksCache(millis::get, 16);
    final DiscoveryCache discoveryCache = new DiscoveryCache(millis::get, 16);
    final String ticket;
    final String ticketDigest;

    TokenFixture() {
        fetcher.put(JWKS, TestKeys.jwks(TestKeys.jwk(TestKeys.ec256(), "k1"), TestKeys.jwk(TestKeys.rsa(), "r1"),
                TestKeys.jwk(TestKeys.ed(), "e1")));
        // A permission ticket is a JWS issued by Keycloak; its exp bounds how long a used ticket is remembered.
        ticket = TestKeys.part(Map.of("alg", "RS256")) + "." + TestKeys.part(Map.of("exp", now + 300, "jti", UUID.randomUUID().toString()))
                + ".c2ln";
        ticketDigest = digest(ticket);
    }

    /** Independent of the code under test. */
    static String digest(String ticket) {
        try {
            return Base64.getUrlEncoder().withoutPadding()
                    .encodeToString(MessageDigest.getInstance("SHA-256").digest(ticket.getBytes(StandardCharsets.UTF_8)));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    Map<String, Object> claims() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("iss", ISS);
        c.put("sub", "f3b8c1d2-alice");
        c.put("aud", AUD);
        c.put("iat", now - 5);
        c.put("exp", now + 115);
        c.put("jti", UUID.randomUUID().toString());
        c.put("ticket_digest", ticketDigest);
        c.put("email", "Alice@Foo.Example");
        c.put("email_verified", true);
        c.put("name", "Alice");
        return c;
    }

    String sign(Map<String, Object> claims) {
        return TestKeys.sign(TestKeys.header("ES256", "k1"), claims, "ES256", TestKeys.ec256().getPrivate());
    }

    PolicyConfig config(String... keyValues) {
        Map<String, String> m = new HashMap<>();
        m.put("claimsProviders", PROVIDERS);
        for (int i = 0; i < keyValues.length; i += 2) {
            m.put(keyValues[i], keyValues[i + 1]);
        }
        try {
            return PolicyConfig.parse(m, true);
        } catch (InvalidConfigException e) {
            throw new IllegalStateException(e);
        }
    }

    ClaimsTokenVerifier verifier(PolicyConfig config) {
        JwksCache.Settings js = JwksCache.Settings.of(config);
        DiscoveryCache.Settings ds = DiscoveryCache.Settings.of(config);
        return new ClaimsTokenVerifier(config, (URI uri, String kid, JwsAlgorithm alg) -> jwksCache.find(uri, kid, alg, fetcher, js),
                domain -> discoveryCache.get(domain, fetcher, ds));
    }

    VerifiedClaimsToken verify(String jws) throws Denied {
        return verifier(config()).verify(jws, AUD, ticketDigest, now);
    }
}
