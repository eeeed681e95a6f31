package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

import jakarta.ws.rs.core.MultivaluedHashMap;
import jakarta.ws.rs.core.MultivaluedMap;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.keycloak.authorization.AuthorizationProvider;
import org.keycloak.authorization.model.Policy;
import org.keycloak.authorization.model.Resource;
import org.keycloak.authorization.model.ResourceServer;
import org.keycloak.authorization.permission.ResourcePermission;
import org.keycloak.authorization.policy.evaluation.Evaluation;
import org.keycloak.http.HttpRequest;
import org.keycloak.http.HttpResponse;
import org.keycloak.models.KeycloakContext;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.ClientModel;
import org.keycloak.models.RealmModel;
import org.keycloak.models.SingleUseObjectProvider;

/** The provider's adaptation to Keycloak: form fields, session memo, grant/deny, and never an exception. */
class ClaimsTokenPolicyProviderTest {

    final TokenFixture f = new TokenFixture();
    final MemoryStore store = new MemoryStore();
    final OwnerQuotaTest.Memory quotaStore = new OwnerQuotaTest.Memory();
    ClaimsTokenPolicyProvider provider;
    Map<String, String> policyConfig;

    /** What one token request looks like to the policy. */
    final class Request {
        final MultivaluedMap<String, String> form = new MultivaluedHashMap<>();
        final Map<String, Object> sessionAttributes = new HashMap<>();
        final AtomicInteger grants = new AtomicInteger();
        final AtomicInteger denies = new AtomicInteger();
        boolean noHttpRequest;
        RuntimeException formFailure;
        KeycloakSession session;
        String rsSecret = "resource-server-secret";
        final Map<String, String> responseHeaders = new HashMap<>();

        @SuppressWarnings("unchecked")
        Request() {
            Map<String, java.util.function.Function<Object[], Object>> realmM = Stubs.methods();
            realmM.put("getName", a -> "bar");
            realmM.put("getId", a -> "realm-id");
            realmM.put("getClientById", a -> {
                Map<String, java.util.function.Function<Object[], Object>> cM = Stubs.methods();
                cM.put("getSecret", x -> "rs-client-uuid".equals(a[0]) ? rsSecret : null);
                return Stubs.stub(ClientModel.class, cM);
            });
            RealmModel realm = Stubs.stub(RealmModel.class, realmM);

            Map<String, java.util.function.Function<Object[], Object>> httpM = Stubs.methods();
            httpM.put("getDecodedFormParameters", a -> {
                if (formFailure != null) {
                    throw formFailure;
                }
                return form;
            });
            HttpRequest http = Stubs.stub(HttpRequest.class, httpM);

            Map<String, java.util.function.Function<Object[], Object>> ctxM = Stubs.methods();
            ctxM.put("getRealm", a -> realm);
            ctxM.put("getHttpRequest", a -> noHttpRequest ? null : http);
            HttpResponse response = new RecordingResponse(responseHeaders);
            ctxM.put("getHttpResponse", a -> response);
            KeycloakContext ctx = Stubs.stub(KeycloakContext.class, ctxM);

            Map<String, java.util.function.Function<Object[], Object>> suoM = Stubs.methods();
            suoM.put("putIfAbsent", a -> store.putIfAbsent((String) a[0], (Long) a[1]) && quotaStore.putIfAbsent((String) a[0], (Long) a[1]));
            suoM.put("get", a -> quotaStore.get((String) a[0]));
            suoM.put("put", a -> {
                quotaStore.put((String) a[0], (Long) a[1], (Map<String, String>) a[2]);
                return null;
            });
            suoM.put("remove", a -> {
                store.lifespans.remove((String) a[0]);
                quotaStore.remove((String) a[0]);
                return null;
            });
            SingleUseObjectProvider suo = Stubs.stub(SingleUseObjectProvider.class, suoM);

            Map<String, java.util.function.Function<Object[], Object>> sM = Stubs.methods();
            sM.put("getContext", a -> ctx);
            sM.put("getAttribute", a -> sessionAttributes.get((String) a[0]));
            sM.put("setAttribute", a -> sessionAttributes.put((String) a[0], a[1]));
            sM.put("singleUseObjects", a -> suo);
            session = Stubs.stub(KeycloakSession.class, sM);
        }

        Evaluation evaluation(ResourcePermission permission) {
            AuthorizationProvider authz = new AuthorizationProvider(session, null, null);
            Map<String, java.util.function.Function<Object[], Object>> pM = Stubs.methods();
            pM.put("getName", a -> "claims token");
            pM.put("getId", a -> "policy-id");
            pM.put("getConfig", a -> policyConfig);
            Policy policy = Stubs.stub(Policy.class, pM);
            Map<String, java.util.function.Function<Object[], Object>> eM = Stubs.methods();
            eM.put("getPolicy", a -> policy);
            eM.put("getAuthorizationProvider", a -> authz);
            eM.put("getPermission", a -> permission);
            eM.put("grant", a -> {
                grants.incrementAndGet();
                return null;
            });
            eM.put("deny", a -> {
                denies.incrementAndGet();
                return null;
            });
            return Stubs.stub(Evaluation.class, eM);
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        JwksCache jwks = new JwksCache(f.millis::get, 16);
        // Warm the cache the way a first request would; evaluations below must not need any HTTP client.
        jwks.find(URI.create(TokenFixture.JWKS), "k1", JwsAlgorithm.ES256, f.fetcher, new JwksCache.Settings(new TrustScope("realm-id", "policy-id", false), 600_000L, 10_000L));
        provider = new ClaimsTokenPolicyProvider(jwks, new DiscoveryCache(f.millis::get, 16), (s, r) -> TokenFixture.AUD, () -> f.now);
        policyConfig = new HashMap<>(Map.of("claimsProviders", TokenFixture.PROVIDERS));
    }

    private static ResourcePermission permission(String claimsToken) {
        Map<String, List<String>> claims = new HashMap<>();
        claims.put("claims_token", List.of(claimsToken));
        claims.put("content_type", List.of("text/plain"));
        return new ResourcePermission(null, new ArrayList<>(), RESOURCE_SERVER, claims);
    }

    /** The resource server the permissions belong to: its client's secret keys grant_mac. */
    private static final ResourceServer RESOURCE_SERVER;
    static {
        Map<String, java.util.function.Function<Object[], Object>> m = Stubs.methods();
        m.put("getClientId", a -> "rs-client-uuid");
        RESOURCE_SERVER = Stubs.stub(ResourceServer.class, m);
    }

    private Request request(String claimsToken) {
        Request r = new Request();
        r.form.add("grant_type", "urn:ietf:params:oauth:grant-type:uma-ticket");
        r.form.add("ticket", f.ticket);
        r.form.add("claim_token", TokenFixture.claimToken(claimsToken, "content_type", "text/plain"));
        r.form.add("claim_token_format", "urn:ietf:params:oauth:token-type:jwt");
        return r;
    }

    @Test
    void grantsAndRewritesClaims() {
        String jws = f.sign(f.claims());
        Request r = request(jws);
        ResourcePermission p = permission(jws);
        assertNull(provider.decide(r.evaluation(p)));
        assertEquals(1, r.grants.get());
        assertEquals(0, r.denies.get());
        assertEquals(Set.of("content_sha256", "content_length", "content_type", "incoming_uri", "grant_id", "grant_mac",
                "sender_email", "sender_iss", "sender_sub"), p.getClaims().keySet());
        assertEquals(Set.of("alice@foo.example"), p.getClaims().get("sender_email"));
        assertEquals(Set.of(TokenFixture.INCOMING), p.getClaims().get("incoming_uri"));
        Map<String, String> one = new HashMap<>();
        p.getClaims().forEach((k, v) -> one.put(k, v.iterator().next()));
        assertEquals(GrantMac.compute("resource-server-secret", "", one), one.get("grant_mac"));
    }

    @Test
    void recordsItsOwnTimeByOutcomeInKeycloaksMetricsRegistry() {
        io.micrometer.core.instrument.simple.SimpleMeterRegistry registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        io.micrometer.core.instrument.Metrics.addRegistry(registry);
        try {
            String jws = f.sign(f.claims());
            assertNull(provider.decide(request(jws).evaluation(permission(jws))));
            assertEquals(Reason.JTI_REPLAYED, provider.decide(request(jws).evaluation(permission(jws))));
            assertEquals(Reason.JTI_REPLAYED, provider.decide(request(jws).evaluation(permission(jws))));
            io.micrometer.core.instrument.Timer grant = registry.get(PolicyMetrics.NAME).tag("outcome", "grant").timer();
            io.micrometer.core.instrument.Timer deny = registry.get(PolicyMetrics.NAME).tag("outcome", "deny").timer();
            assertEquals(1, grant.count());
            assertEquals(2, deny.count());
            assertTrue(grant.totalTime(java.util.concurrent.TimeUnit.NANOSECONDS) > 0);
            // The histogram make bench takes the median from: every bucket, cumulative, the grant in one of them.
            io.micrometer.core.instrument.distribution.CountAtBucket[] buckets = grant.takeSnapshot().histogramCounts();
            assertEquals(PolicyMetrics.BUCKETS.length, buckets.length);
            assertEquals(PolicyMetrics.BUCKETS[0].toNanos(), (long) buckets[0].bucket(java.util.concurrent.TimeUnit.NANOSECONDS));
            double last = 0;
            for (io.micrometer.core.instrument.distribution.CountAtBucket b : buckets) {
                assertTrue(b.count() >= last, "cumulative");
                last = b.count();
            }
            assertTrue(last <= 1);
        } finally {
            io.micrometer.core.instrument.Metrics.removeRegistry(registry);
        }
    }

    @Test
    void noResourceServerSecretIsDeniedBeforeAnythingIsConsumed() {
        String jws = f.sign(f.claims());
        Request r = request(jws);
        r.rsSecret = null;
        assertEquals(Reason.GRANT_KEY_MISSING, provider.decide(r.evaluation(permission(jws))));
        assertEquals(0, r.grants.get());
        assertTrue(store.lifespans.isEmpty());
        Request again = request(jws);
        assertNull(provider.decide(again.evaluation(permission(jws))));
    }

    private static ResourcePermission ownerManaged(boolean ownerManagedAccess, String claimsToken) {
        Map<String, java.util.function.Function<Object[], Object>> rM = Stubs.methods();
        rM.put("isOwnerManagedAccess", a -> ownerManagedAccess);
        rM.put("getId", a -> "resource-id");
        rM.put("getAttributes", a -> Map.of());
        Resource resource = Stubs.stub(Resource.class, rM);
        Map<String, List<String>> claims = new HashMap<>();
        claims.put("claims_token", List.of(claimsToken));
        return new ResourcePermission(resource, new ArrayList<>(), RESOURCE_SERVER, claims);
    }

    @Test
    void ownerManagedResourceIsDeniedBeforeAnythingIsConsumed() {
        String jws = f.sign(f.claims());
        Request r = request(jws);
        assertEquals(Reason.OWNER_MANAGED_RESOURCE, provider.decide(r.evaluation(ownerManaged(true, jws))));
        assertEquals(0, r.grants.get());
        assertEquals(1, r.denies.get());
        assertTrue(store.lifespans.isEmpty());
        assertNull(provider.decide(request(jws).evaluation(ownerManaged(false, jws))), "the same grant on a resource the owner does not manage");
    }

    @Test
    void secondEvaluationInTheSameRequestGrantsToo() {
        String jws = f.sign(f.claims());
        Request r = request(jws);
        assertNull(provider.decide(r.evaluation(permission(jws))));
        ResourcePermission second = permission(jws);
        assertNull(provider.decide(r.evaluation(second)), "same request, another permission");
        assertFalse(second.getClaims().containsKey("claims_token"));
        assertEquals(2, r.grants.get());
        // The very same form in a new request is a replay.
        Request replay = request(jws);
        assertEquals(Reason.JTI_REPLAYED, provider.decide(replay.evaluation(permission(jws))));
        assertEquals(1, replay.denies.get());
    }

    @Test
    void deniesWhatTheEvaluatorDenies() {
        Map<String, Object> c = f.claims();
        c.put("aud", "https://kc.example/realms/other");
        String jws = f.sign(c);
        Request r = request(jws);
        ResourcePermission p = permission(jws);
        assertEquals(Reason.AUDIENCE_MISMATCH, provider.decide(r.evaluation(p)));
        assertEquals(0, r.grants.get());
        assertEquals(1, r.denies.get());
        assertTrue(store.lifespans.isEmpty());
    }

    @Test
    void noHttpRequest() {
        Request r = request(f.sign(f.claims()));
        r.noHttpRequest = true;
        assertEquals(Reason.NO_REQUEST, provider.decide(r.evaluation(permission("x"))));
        assertEquals(1, r.denies.get());
    }

    @Test
    void formFieldsMustBeSingle() {
        Request r = request(f.sign(f.claims()));
        r.form.remove("ticket");
        assertEquals(Reason.NO_TICKET, provider.decide(r.evaluation(permission("x"))));
        Request twice = request(f.sign(f.claims()));
        twice.form.add("claim_token", "e30");
        assertEquals(Reason.NO_CLAIM_TOKEN, provider.decide(twice.evaluation(permission("x"))));
        Request none = request(f.sign(f.claims()));
        none.form.remove("claim_token");
        assertEquals(Reason.NO_CLAIM_TOKEN, provider.decide(none.evaluation(permission("x"))));
    }

    @Test
    void rptUpgradeIsDenied() {
        // With rpt, Keycloak merges the previous RPT's permission claims into the evaluated
        // permission: a content_sha256 of each push, say. No upgrade: nothing is consumed.
        String jws = f.sign(f.claims());
        Request r = request(jws);
        r.form.add("rpt", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
        ResourcePermission p = permission(jws);
        assertEquals(Reason.RPT_UPGRADE, provider.decide(r.evaluation(p)));
        assertEquals(0, r.grants.get());
        assertEquals(1, r.denies.get());
        assertTrue(store.lifespans.isEmpty());
        assertTrue(p.getClaims().containsKey("claims_token"), "a denied permission is not rewritten");
        Request empty = request(jws);
        empty.form.add("rpt", "");
        assertEquals(Reason.RPT_UPGRADE, provider.decide(empty.evaluation(permission(jws))));
        assertNull(provider.decide(request(jws).evaluation(permission(jws))), "the same token without rpt is granted");
    }

    @Test
    void invalidConfigDenies() {
        policyConfig.put("allowedAlgorithms", "[\"HS256\"]");
        Request r = request(f.sign(f.claims()));
        assertEquals(Reason.CONFIG_INVALID, provider.decide(r.evaluation(permission("x"))));
        assertEquals(1, r.denies.get());
    }

    @Test
    void unexpectedFailureDeniesInsteadOfThrowing() {
        Request r = request(f.sign(f.claims()));
        r.formFailure = new IllegalStateException("Content-Type is not form");
        assertEquals(Reason.INTERNAL_ERROR, provider.decide(r.evaluation(permission("x"))));
        assertEquals(1, r.denies.get());
    }

    @Test
    void evenABrokenEvaluationNeverThrows() {
        Evaluation broken = Stubs.stub(Evaluation.class, Stubs.methods());
        provider.evaluate(broken); // getPolicy and deny both throw; the provider swallows both
        assertEquals(Reason.INTERNAL_ERROR, provider.decide(broken));
    }

    @Test
    void missingHttpClientDeniesWhenAFetchIsNeeded() {
        Map<String, Object> c = f.claims();
        String jws = TestKeys.sign(TestKeys.header("ES256", "rotated"), c, "ES256", TestKeys.ec256().getPrivate());
        Request r = request(jws);
        f.millis.addAndGet(11_000L);
        // Unknown kid: the JWKS is refetched, but the session stub has no HttpClientProvider; the
        // failed fetch is contained and the last good key set (without that kid) decides.
        assertEquals(Reason.UNKNOWN_KID, provider.decide(r.evaluation(permission(jws))));
        assertEquals(1, r.denies.get());
    }

    /** An Incoming with owner rules in its attributes. */
    private static ResourcePermission incoming(Map<String, List<String>> attributes, String claimsToken) {
        Map<String, java.util.function.Function<Object[], Object>> rM = Stubs.methods();
        rM.put("isOwnerManagedAccess", a -> false);
        rM.put("getId", a -> "resource-id");
        rM.put("getAttributes", a -> attributes);
        Resource resource = Stubs.stub(Resource.class, rM);
        Map<String, List<String>> claims = new HashMap<>();
        claims.put("claims_token", List.of(claimsToken));
        return new ResourcePermission(resource, new ArrayList<>(), RESOURCE_SERVER, claims);
    }

    /** A grant request with its own ticket (tickets are single-use). */
    private Request freshRequest(TokenFixture g, Map<String, Object> claims) {
        String jws = g.sign(claims);
        Request r = new Request();
        r.form.add("ticket", g.ticket);
        r.form.add("claim_token", TokenFixture.claimToken(jws));
        r.form.add("claim_token_format", "urn:ietf:params:oauth:token-type:jwt");
        r.form.add("jws", jws);
        return r;
    }

    private Reason decideOn(Map<String, List<String>> attributes, Request r) {
        return provider.decide(r.evaluation(incoming(attributes, r.form.getFirst("jws"))));
    }

    @Test
    void ownerRulesRefuseAVerifiedSenderAndSaySo() {
        Map<String, List<String>> rules = new HashMap<>(Map.of(OwnerRules.ATTR_DENY, List.of("foo.example")));
        TokenFixture g = new TokenFixture();
        Request r = freshRequest(g, g.claims());
        assertEquals(Reason.OWNER_REFUSED, decideOn(rules, r));
        assertEquals(0, r.grants.get());
        assertEquals(Map.of(OwnerRules.REFUSAL_HEADER, "owner_refused"), r.responseHeaders);
        // The rule removed, the next (honest) request is granted and says nothing.
        rules.clear();
        TokenFixture h = new TokenFixture();
        Request ok = freshRequest(h, h.claims());
        assertNull(decideOn(rules, ok));
        assertTrue(ok.responseHeaders.isEmpty());
        // Default listed with the sender's domain allowed.
        rules.put(OwnerRules.ATTR_DEFAULT, List.of("listed"));
        rules.put(OwnerRules.ATTR_ALLOW, List.of("foo.example"));
        TokenFixture i = new TokenFixture();
        assertNull(decideOn(rules, freshRequest(i, i.claims())));
    }

    @Test
    void aForgedTokenIsNeverToldWhy() {
        Map<String, List<String>> rules = Map.of(OwnerRules.ATTR_DEFAULT, List.of("nobody"));
        TokenFixture g = new TokenFixture();
        Map<String, Object> c = g.claims();
        c.put("aud", "https://kc.example/realms/other");
        Request forged = freshRequest(g, c);
        assertEquals(Reason.AUDIENCE_MISMATCH, decideOn(rules, forged), "verification comes before the owner's rules");
        assertTrue(forged.responseHeaders.isEmpty());
    }

    @Test
    void invalidRulesAdmitNobodyAndSayNothing() {
        TokenFixture g = new TokenFixture();
        Request r = freshRequest(g, g.claims());
        assertEquals(Reason.OWNER_RULES_INVALID, decideOn(Map.of(OwnerRules.ATTR_DEFAULT, List.of("everyone")), r));
        assertTrue(r.responseHeaders.isEmpty());
    }

    @Test
    void quotaRefusesAfterTheLimit() {
        Map<String, List<String>> rules = Map.of(OwnerRules.ATTR_MESSAGES_PER_DAY, List.of("2"));
        for (int n = 0; n < 2; n++) {
            TokenFixture g = new TokenFixture();
            assertNull(decideOn(rules, freshRequest(g, g.claims())), "message " + (n + 1));
        }
        TokenFixture g = new TokenFixture();
        Request third = freshRequest(g, g.claims());
        assertEquals(Reason.QUOTA_EXCEEDED, decideOn(rules, third));
        assertEquals(Map.of(OwnerRules.REFUSAL_HEADER, "quota_exceeded"), third.responseHeaders);
        // 42 bytes each (TokenFixture's content_length): a byte quota of 100 admits two.
        Map<String, List<String>> bytes = Map.of(OwnerRules.ATTR_BYTES_PER_DAY, List.of("100"));
        quotaStore.records.clear();
        for (int n = 0; n < 2; n++) {
            TokenFixture h = new TokenFixture();
            assertNull(decideOn(bytes, freshRequest(h, h.claims())));
        }
        TokenFixture h = new TokenFixture();
        assertEquals(Reason.QUOTA_EXCEEDED, decideOn(bytes, freshRequest(h, h.claims())));
    }
}
