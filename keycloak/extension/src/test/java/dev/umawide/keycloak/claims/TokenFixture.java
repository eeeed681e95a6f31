package dev.umawide.keycloak.claims;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;

/** A trusted Claims Provider with keys, a ticket, and a well-formed claims token to vary. */
final class TokenFixture {
    static final String ISS = "https://cp.foo.example";
    static final String JWKS = "https://cp.foo.example/jwks";
    static final String AUD = "https://kc.example/realms/bar";
    /** The Incoming URL the Resource Server put into the ticket, and the one the client pushes. */
    static final String INCOMING = "https://rs.bar.example/incoming/bob";
    static final String SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
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
        // The Resource Server's pushed claims travel in the payload's "claims" member.
        ticket = ticket(Map.of("exp", now + 300, "jti", UUID.randomUUID().toString(),
                "claims", Map.of("incoming_uri", List.of(INCOMING))));
        ticketDigest = digest(ticket);
    }

    static String ticket(Map<String, Object> payload) {
        return TestKeys.part(Map.of("alg", "RS256")) + "." + TestKeys.part(payload) + ".c2ln";
    }

    /**
     * The claim_token form field: the claims token with the binding an honest client pushes
     * ({@code content_sha256}, {@code content_length}, {@code incoming_uri}), then {@code more}
     * as key, value pairs; a null value removes the key.
     */
    static String claimToken(String claimsToken, String... more) {
        Map<String, List<String>> m = new LinkedHashMap<>();
        m.put("claims_token", List.of(claimsToken));
        m.put("content_sha256", List.of(SHA));
        m.put("content_length", List.of("42"));
        m.put("incoming_uri", List.of(INCOMING));
        for (int i = 0; i < more.length; i += 2) {
            if (more[i + 1] == null) {
                m.remove(more[i]);
            } else {
                m.put(more[i], List.of(more[i + 1]));
            }
        }
        try {
            return Base64.getUrlEncoder().withoutPadding().encodeToString(TestKeys.MAPPER.writeValueAsBytes(m));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
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
        TrustScope scope = TrustScope.of("realm-id", "policy-id", config);
        JwksCache.Settings js = JwksCache.Settings.of(config, scope);
        DiscoveryCache.Settings ds = DiscoveryCache.Settings.of(config, scope);
        return new ClaimsTokenVerifier(config, (URI uri, String kid, JwsAlgorithm alg) -> jwksCache.find(uri, kid, alg, fetcher, js),
                domain -> discoveryCache.get(domain, fetcher, ds));
    }

    VerifiedClaimsToken verify(String jws) throws Denied {
        return verifier(config()).verify(jws, AUD, ticketDigest, now);
    }
}
