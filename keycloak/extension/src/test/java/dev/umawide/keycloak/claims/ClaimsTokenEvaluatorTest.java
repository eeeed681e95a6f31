package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
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
        return TokenFixture.claimToken(claimsToken, more);
    }

    private Grant grant(String ticket, String claimToken) throws Denied {
        return request(new HashSet<>()).evaluate(REALM, ticket, claimToken, TokenFixture.AUD, f.now);
    }

    private Reason deny(String ticket, String claimToken) {
        return assertThrows(Denied.class, () -> grant(ticket, claimToken)).reason();
    }

    @Test
    void grantsAndConsumesJtiAndTicket() throws Exception {
        Map<String, Object> c = f.claims();
        Grant g = grant(f.ticket, pushed(f.sign(c), "content_type", "text/plain", "file_name", "../x", "grant_id", "mine"));
        assertEquals(new Sender("alice@foo.example", TokenFixture.ISS, "f3b8c1d2-alice"), g.sender());
        assertEquals(Map.of("content_sha256", TokenFixture.SHA, "content_length", "42", "content_type", "text/plain",
                "incoming_uri", TokenFixture.INCOMING), g.vetted(), "vetted values only: no malformed file_name, no pushed grant_id");
        assertEquals(2, store.lifespans.size());
        String jtiKey = ReplayGuard.jtiKey(REALM, TokenFixture.ISS, (String) c.get("jti"));
        assertEquals(115 + 30, store.lifespans.get(jtiKey), "jti remembered until exp plus skew");
        String ticketKey = ReplayGuard.ticketKey(REALM, Tickets.identity(Tickets.payload(f.ticket)));
        assertEquals(300 + 30, store.lifespans.get(ticketKey), "ticket until its exp plus skew");
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
        Grant first = e.evaluate(REALM, f.ticket, claimToken, TokenFixture.AUD, f.now);
        // Keycloak evaluates the policy again for the next permission of the same request.
        Grant second = request(memo).evaluate(REALM, f.ticket, claimToken, TokenFixture.AUD, f.now);
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

    /** The same ticket as Keycloak's decoder also accepts it (finding 6). */
    static List<String> spellings(String ticket) {
        String[] p = ticket.split("\\.");
        String padded = p[1] + "=".repeat((4 - p[1].length() % 4) % 4);
        String std = p[1].replace('-', '+').replace('_', '/');
        return List.of(ticket + ".", p[0] + "." + padded + "." + p[2], p[0] + "." + std + "=" .repeat((4 - std.length() % 4) % 4) + "." + p[2]);
    }

    @Test
    void ticketInAnotherSpellingIsReused() throws Exception {
        // A payload whose BASE64URL has '-' and '_' and needs padding, so that every spelling differs.
        String ticket = null;
        for (int i = 0; ticket == null || !ticket.split("\\.")[1].matches(".*[-_].*") || ticket.split("\\.")[1].length() % 4 == 0; i++) {
            ticket = TokenFixture.ticket(Map.of("exp", f.now + 300, "jti", "j" + i + "\u00ff\u00fe?>>",
                    "claims", Map.of("incoming_uri", List.of(TokenFixture.INCOMING))));
        }
        grant(ticket, pushed(f.sign(claimsFor(ticket))));
        for (String other : spellings(ticket)) {
            assertNotEquals(ticket, other);
            assertEquals(Tickets.identity(Tickets.payload(ticket)), Tickets.identity(Tickets.payload(other)), other);
            // A fresh claims token bound (ticket_digest) to exactly this spelling.
            assertEquals(Reason.TICKET_REUSED, deny(other, pushed(f.sign(claimsFor(other)))), other);
        }
    }

    private Map<String, Object> claimsFor(String ticket) {
        Map<String, Object> c = f.claims();
        c.put("ticket_digest", TokenFixture.digest(ticket));
        return c;
    }

    @Test
    void contentBindingRequired() {
        String sha = "content_sha256";
        String len = "content_length";
        for (String[] bad : List.of(new String[] {sha, null}, new String[] {len, null}, new String[] {sha, TokenFixture.SHA.toUpperCase()},
                new String[] {sha, "abc"}, new String[] {len, "-1"}, new String[] {len, "042"}, new String[] {len, ""})) {
            assertEquals(Reason.CONTENT_BINDING_MISSING, deny(f.ticket, pushed(f.sign(f.claims()), bad)), String.join("=", bad[0], bad[1]));
        }
        String two = PushedClaimsTest.enc("{\"claims_token\":[\"" + f.sign(f.claims()) + "\"],\"content_sha256\":[\"" + TokenFixture.SHA + "\",\""
                + TokenFixture.SHA + "\"],\"content_length\":[\"42\"],\"incoming_uri\":[\"" + TokenFixture.INCOMING + "\"]}");
        assertEquals(Reason.CONTENT_BINDING_MISSING, deny(f.ticket, two), "two values");
        assertTrue(store.lifespans.isEmpty(), "nothing consumed");
    }

    @Test
    void incomingUriRequiredValidAndTheTickets() {
        String jws = f.sign(f.claims());
        assertEquals(Reason.INCOMING_URI_MISSING, deny(f.ticket, pushed(jws, "incoming_uri", null)));
        assertEquals(Reason.INCOMING_URI_MISSING, deny(f.ticket, pushed(jws, "incoming_uri", "")));
        for (String bad : List.of("/incoming/bob", "ftp://rs.bar.example/incoming/bob", "https://u:p@rs.bar.example/incoming/bob",
                "https://rs.bar.example/incoming/bob?x=1", "https://rs.bar.example/incoming/bob#f", "https:///incoming/bob",
                "https://rs.bar.example/incoming/b ob", "https://rs.bar.example/" + "a".repeat(2048))) {
            assertEquals(Reason.INCOMING_URI_INVALID, deny(f.ticket, pushed(jws, "incoming_uri", bad)), bad);
        }
        for (String other : List.of("https://other.example/incoming/hr", "https://rs.bar.example/incoming/bob/",
                "HTTPS://rs.bar.example/incoming/bob", "https://rs.bar.example:443/incoming/bob")) {
            assertEquals(Reason.INCOMING_URI_MISMATCH, deny(f.ticket, pushed(jws, "incoming_uri", other)), other);
        }
        assertTrue(store.lifespans.isEmpty(), "nothing consumed");
        String noClaim = TokenFixture.ticket(Map.of("exp", f.now + 300, "jti", "x"));
        assertEquals(Reason.INCOMING_URI_MISMATCH, deny(noClaim, pushed(f.sign(claimsFor(noClaim)))), "a ticket without incoming_uri");
        String twoValues = TokenFixture.ticket(Map.of("exp", f.now + 300, "jti", "y",
                "claims", Map.of("incoming_uri", List.of(TokenFixture.INCOMING, "https://other.example/incoming/hr"))));
        assertEquals(Reason.INCOMING_URI_MISMATCH, deny(twoValues, pushed(f.sign(claimsFor(twoValues)))), "a ticket with two");
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
        assertEquals(Reason.NO_TICKET, deny("opaque-ticket", pushed(f.sign(f.claims()))), "Keycloak's tickets are JWSs");
        assertEquals(Reason.CLAIM_TOKEN_TOO_LARGE, deny(f.ticket, "A".repeat(16385)));
    }

    private static long remember(String ticket, long now) throws Denied {
        return Tickets.rememberSeconds(Tickets.payload(ticket), now, 30);
    }

    @Test
    void ticketRememberedForItsLifetimeCases() throws Exception {
        assertEquals(330, remember(f.ticket, f.now));
        assertEquals(Tickets.MAX_REMEMBER_SECONDS, remember(TokenFixture.ticket(Map.of("exp", f.now + 10_000_000)), f.now));
        assertEquals(1, remember(TokenFixture.ticket(Map.of("exp", f.now - 100)), f.now));
        assertEquals(Tickets.MAX_REMEMBER_SECONDS, remember(TokenFixture.ticket(Map.of("jti", "x")), f.now));
        assertEquals(Reason.NO_TICKET, assertThrows(Denied.class, () -> Tickets.payload("opaque-ticket")).reason());
    }

    @Test
    void replayGuardLifespanIsAtLeastOneSecond() {
        ReplayGuard g = new ReplayGuard(store, new HashSet<>());
        assertTrue(g.firstUse("k", -5));
        assertEquals(1L, store.lifespans.get("k"));
        assertFalse(new ReplayGuard(store, new HashSet<>()).firstUse("k", 10));
    }
}
