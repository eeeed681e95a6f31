package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;

/** The whole step-8 decision (docs/PROTOCOL.md 8.1-8.5), including single use of jti and ticket. */
class ClaimsTokenEvaluatorTest {

    static final String REALM = "realm-id-1";
    final TokenFixture f = new TokenFixture();
    final MemoryStore store = new MemoryStore();

    /** One evaluator per simulated request, each with its own per-request memo. */
    private ClaimsTokenEvaluator request(Set<String> memo) {
        PolicyConfig c = f.config();
        return new ClaimsTokenEvaluator(c, f.verifier(c), new ReplayGuard(store, memo));
    }

    private String pushed(String claimsToken, String... more) {
        StringBuilder json = new StringBuilder("{\"claims_token\":[\"" + claimsToken + "\"]");
        for (int i = 0; i < more.length; i += 2) {
            json.append(",\"").append(more[i]).append("\":[\"").append(more[i + 1]).append("\"]");
        }
        return PushedClaimsTest.enc(json.append('}').toString());
    }

    private Sender grant(String ticket, String claimToken) throws Denied {
        return request(new HashSet<>()).evaluate(REALM, ticket, claimToken, TokenFixture.AUD, f.now);
    }

    private Reason deny(String ticket, String claimToken) {
        return assertThrows(Denied.class, () -> grant(ticket, claimToken)).reason();
    }

    @Test
    void grantsAndConsumesJtiAndTicket() throws Exception {
        Map<String, Object> c = f.claims();
        Sender s = grant(f.ticket, pushed(f.sign(c), "content_type", "text/plain"));
        assertEquals(new Sender("alice@foo.example", TokenFixture.ISS, "f3b8c1d2-alice"), s);
        assertEquals(2, store.lifespans.size());
        String jtiKey = ReplayGuard.jtiKey(REALM, TokenFixture.ISS, (String) c.get("jti"));
        assertEquals(115 + 30, store.lifespans.get(jtiKey), "jti remembered until exp plus skew");
        assertEquals(300 + 30, store.lifespans.get(ReplayGuard.ticketKey(REALM, f.ticketDigest)), "ticket until its exp plus skew");
    }

    @Test
    void replayedJti() throws Exception {
        String jws = f.sign(f.claims());
        grant(f.ticket, pushed(jws));
        assertEquals(Reason.JTI_REPLAYED, deny(f.ticket, pushed(jws)));
    }

    @Test
    void ticketReusedAfterGrant() throws Exception {
        grant(f.ticket, pushed(f.sign(f.claims())));
        assertEquals(Reason.TICKET_REUSED, deny(f.ticket, pushed(f.sign(f.claims()))), "fresh token, same ticket");
    }

    @Test
    void deniedRequestDoesNotConsumeTheTicket() throws Exception {
        Map<String, Object> bad = f.claims();
        bad.put("email_verified", false);
        assertEquals(Reason.EMAIL_NOT_VERIFIED, deny(f.ticket, pushed(f.sign(bad))));
        assertTrue(store.lifespans.isEmpty(), "nothing consumed by a refused request");
        grant(f.ticket, pushed(f.sign(f.claims())));
    }

    @Test
    void idempotentWithinOneRequest() throws Exception {
        Set<String> memo = new HashSet<>();
        String claimToken = pushed(f.sign(f.claims()));
        ClaimsTokenEvaluator e = request(memo);
        Sender first = e.evaluate(REALM, f.ticket, claimToken, TokenFixture.AUD, f.now);
        // Keycloak evaluates the policy again for the next permission of the same request.
        Sender second = request(memo).evaluate(REALM, f.ticket, claimToken, TokenFixture.AUD, f.now);
        assertEquals(first, second);
        // Another request with the same inputs is a replay.
        assertEquals(Reason.JTI_REPLAYED, deny(f.ticket, claimToken));
    }

    @Test
    void replayKeysArePerRealm() {
        assertNotEquals(ReplayGuard.jtiKey("r1", "i", "j"), ReplayGuard.jtiKey("r2", "i", "j"));
        assertNotEquals(ReplayGuard.jtiKey("r1", "i", "j"), ReplayGuard.jtiKey("r1", "i2", "j"));
        assertNotEquals(ReplayGuard.ticketKey("r1", "d"), ReplayGuard.ticketKey("r2", "d"));
        assertFalse(ReplayGuard.jtiKey("r", "iss", "a\u0000b").contains("\u0000"));
    }

    @Test
    void wrongTicket() {
        String other = f.ticket + "x";
        assertEquals(Reason.TICKET_DIGEST_MISMATCH, deny(other, pushed(f.sign(f.claims()))));
    }

    @Test
    void ticketRequired() {
        String ct = pushed(f.sign(f.claims()));
        assertEquals(Reason.NO_TICKET, deny(null, ct));
        assertEquals(Reason.NO_TICKET, deny("", ct));
        assertEquals(Reason.NO_TICKET, deny("t".repeat(Tickets.MAX_LENGTH + 1), ct));
    }

    @Test
    void pushedClaimsChecksComeFirst() {
        assertEquals(Reason.NO_CLAIM_TOKEN, deny(f.ticket, null));
        assertEquals(Reason.CLAIM_TOKEN_MALFORMED, deny(f.ticket, "%%%"));
        assertEquals(Reason.NO_CLAIMS_TOKEN, deny(f.ticket, PushedClaimsTest.enc("{\"content_type\":[\"text/plain\"]}")));
        assertEquals(Reason.CLAIM_TOKEN_TOO_LARGE, deny(f.ticket, "A".repeat(16385)));
    }

    @Test
    void ticketRememberedForItsLifetime() {
        assertEquals(330, Tickets.rememberSeconds(f.ticket, f.now, 30));
        String longLived = TestKeys.part(Map.of("alg", "RS256")) + "." + TestKeys.part(Map.of("exp", f.now + 10_000_000)) + ".c2ln";
        assertEquals(Tickets.MAX_REMEMBER_SECONDS, Tickets.rememberSeconds(longLived, f.now, 30));
        String expired = TestKeys.part(Map.of("alg", "RS256")) + "." + TestKeys.part(Map.of("exp", f.now - 100)) + ".c2ln";
        assertEquals(1, Tickets.rememberSeconds(expired, f.now, 30));
        assertEquals(Tickets.MAX_REMEMBER_SECONDS, Tickets.rememberSeconds("opaque-ticket", f.now, 30));
        String noExp = TestKeys.part(Map.of("alg", "RS256")) + "." + TestKeys.part(Map.of("jti", "x")) + ".c2ln";
        assertEquals(Tickets.MAX_REMEMBER_SECONDS, Tickets.rememberSeconds(noExp, f.now, 30));
    }

    @Test
    void replayGuardLifespanIsAtLeastOneSecond() {
        ReplayGuard g = new ReplayGuard(store, new HashSet<>());
        assertTrue(g.firstUse("k", -5));
        assertEquals(1L, store.lifespans.get("k"));
        assertFalse(new ReplayGuard(store, new HashSet<>()).firstUse("k", 10));
    }
}
