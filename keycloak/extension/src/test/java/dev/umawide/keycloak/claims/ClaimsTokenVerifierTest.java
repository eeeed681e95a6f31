package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ClaimsTokenVerifierTest {

    final TokenFixture f = new TokenFixture();

    private Reason denied(String jws) {
        return assertThrows(Denied.class, () -> f.verify(jws)).reason();
    }

    private Reason deniedWith(String key, Object value) {
        Map<String, Object> c = f.claims();
        if (value == null) {
            c.remove(key);
        } else {
            c.put(key, value);
        }
        return denied(f.sign(c));
    }

    @Test
    void validTokenVerifies() throws Exception {
        Map<String, Object> c = f.claims();
        VerifiedClaimsToken t = f.verify(f.sign(c));
        assertEquals(TokenFixture.ISS, t.issuer());
        assertEquals("f3b8c1d2-alice", t.subject());
        assertEquals("alice@foo.example", t.email());
        assertEquals(c.get("jti"), t.jti());
        assertEquals(f.now + 115, t.exp());
    }

    @ParameterizedTest
    @ValueSource(strings = {"RS256", "PS256", "EdDSA"})
    void otherDefaultAlgorithmsVerify(String alg) throws Exception {
        KeyPair kp = alg.equals("EdDSA") ? TestKeys.ed() : TestKeys.rsa();
        String kid = alg.equals("EdDSA") ? "e1" : "r1";
        String jws = TestKeys.sign(TestKeys.header(alg, kid), f.claims(), alg, kp.getPrivate());
        assertEquals("alice@foo.example", f.verify(jws).email());
    }

    @Test
    void algorithmOutsideConfiguredAllowlist() {
        String jws = TestKeys.sign(TestKeys.header("RS256", "r1"), f.claims(), "RS256", TestKeys.rsa().getPrivate());
        Reason r = assertThrows(Denied.class,
                () -> f.verifier(f.config("allowedAlgorithms", "[\"ES256\"]")).verify(jws, TokenFixture.AUD, f.ticketDigest, f.now)).reason();
        assertEquals(Reason.ALG_NOT_ALLOWED, r);
    }

    @Test
    void badSignature() {
        String jws = f.sign(f.claims());
        char last = jws.charAt(jws.length() - 5);
        String tampered = jws.substring(0, jws.length() - 5) + (last == 'A' ? 'B' : 'A') + jws.substring(jws.length() - 4);
        assertEquals(Reason.BAD_SIGNATURE, denied(tampered));
    }

    @Test
    void payloadSwappedUnderSignature() {
        String good = f.sign(f.claims());
        Map<String, Object> evil = f.claims();
        evil.put("email", "mallory@foo.example");
        String[] parts = good.split("\\.");
        assertEquals(Reason.BAD_SIGNATURE, denied(parts[0] + "." + TestKeys.part(evil) + "." + parts[2]));
    }

    @Test
    void signedByAnotherKeyWithTheTrustedKid() {
        String jws = TestKeys.sign(TestKeys.header("ES256", "k1"), f.claims(), "ES256", TestKeys.ec("secp256r1").getPrivate());
        assertEquals(Reason.BAD_SIGNATURE, denied(jws));
    }

    @Test
    void algNone() {
        String jws = TestKeys.part(Map.of("alg", "none", "kid", "k1")) + "." + TestKeys.part(f.claims()) + ".";
        assertEquals(Reason.ALG_NOT_ALLOWED, denied(jws));
    }

    @Test
    void hs256WithThePublicKeyAsSecret() {
        byte[] secret = TestKeys.json(TestKeys.jwk(TestKeys.rsa(), "r1")).getBytes(StandardCharsets.UTF_8);
        assertEquals(Reason.ALG_NOT_ALLOWED, denied(TestKeys.hmac(TestKeys.header("HS256", "r1"), f.claims(), secret)));
        assertEquals(Reason.ALG_NOT_ALLOWED,
                denied(TestKeys.hmac(TestKeys.header("HS256", "r1"), f.claims(), TestKeys.rsa().getPublic().getEncoded())));
    }

    @Test
    void kidRequired() {
        String jws = TestKeys.sign(TestKeys.header("ES256", null), f.claims(), "ES256", TestKeys.ec256().getPrivate());
        assertEquals(Reason.KID_MISSING, denied(jws));
        String longKid = TestKeys.sign(TestKeys.header("ES256", "k".repeat(257)), f.claims(), "ES256", TestKeys.ec256().getPrivate());
        assertEquals(Reason.KID_MISSING, denied(longKid));
    }

    @Test
    void unknownKid() {
        String jws = TestKeys.sign(TestKeys.header("ES256", "nope"), f.claims(), "ES256", TestKeys.ec256().getPrivate());
        assertEquals(Reason.UNKNOWN_KID, denied(jws));
    }

    @Test
    void kidOfAKeyOfAnotherType() {
        // kid r1 names the RSA key: an ES256 token claiming it finds no fitting key.
        String jws = TestKeys.sign(TestKeys.header("ES256", "r1"), f.claims(), "ES256", TestKeys.ec256().getPrivate());
        assertEquals(Reason.UNKNOWN_KID, denied(jws));
    }

    @Test
    void untrustedIssuer() {
        assertEquals(Reason.UNTRUSTED_ISSUER, deniedWith("iss", "https://evil.example"));
        assertEquals(Reason.UNTRUSTED_ISSUER, deniedWith("iss", null));
        assertEquals(Reason.UNTRUSTED_ISSUER, deniedWith("iss", 42));
        assertEquals(Reason.UNTRUSTED_ISSUER, deniedWith("iss", "https://cp.foo.example/"));
    }

    @Test
    void jwksUnavailable() {
        f.fetcher.documents.clear();
        assertEquals(Reason.JWKS_UNAVAILABLE, denied(f.sign(f.claims())));
    }

    @Test
    void audience() throws Exception {
        assertEquals(Reason.AUDIENCE_MISMATCH, deniedWith("aud", "https://kc.example/realms/foo"));
        assertEquals(Reason.AUDIENCE_MISMATCH, deniedWith("aud", null));
        assertEquals(Reason.AUDIENCE_MISMATCH, deniedWith("aud", TokenFixture.AUD + "/"));
        assertEquals(Reason.AUDIENCE_MISMATCH, deniedWith("aud", List.of(TokenFixture.AUD, "other")));
        assertEquals(Reason.AUDIENCE_MISMATCH, deniedWith("aud", List.of()));
        Map<String, Object> c = f.claims();
        c.put("aud", List.of(TokenFixture.AUD));
        f.verify(f.sign(c));
    }

    @Test
    void expiry() throws Exception {
        assertEquals(Reason.EXP_MISSING, deniedWith("exp", null));
        assertEquals(Reason.EXP_MISSING, deniedWith("exp", "1800000100"));
        Map<String, Object> c = f.claims();
        c.put("iat", f.now - 200);
        c.put("exp", f.now - 30);
        assertEquals(Reason.EXPIRED, denied(f.sign(c)), "expired beyond the 30 s skew");
        c.put("exp", f.now - 29);
        f.verify(f.sign(c));
    }

    @Test
    void issuedAt() throws Exception {
        assertEquals(Reason.IAT_MISSING, deniedWith("iat", null));
        assertEquals(Reason.IAT_MISSING, deniedWith("iat", true));
        Map<String, Object> c = f.claims();
        c.put("iat", f.now + 31);
        c.put("exp", f.now + 100);
        assertEquals(Reason.IAT_IN_FUTURE, denied(f.sign(c)));
        c.put("iat", f.now + 30);
        f.verify(f.sign(c));
    }

    @Test
    void notBefore() throws Exception {
        assertEquals(Reason.NOT_YET_VALID, deniedWith("nbf", f.now + 31));
        assertEquals(Reason.NOT_YET_VALID, deniedWith("nbf", "soon"));
        Map<String, Object> c = f.claims();
        c.put("nbf", f.now);
        f.verify(f.sign(c));
    }

    @Test
    void lifetime() throws Exception {
        Map<String, Object> c = f.claims();
        c.put("iat", f.now - 10);
        c.put("exp", f.now + 291);
        assertEquals(Reason.LIFETIME_TOO_LONG, denied(f.sign(c)));
        c.put("exp", f.now + 290);
        f.verify(f.sign(c));
        c.put("iat", f.now + 20);
        c.put("exp", f.now + 10);
        assertEquals(Reason.LIFETIME_TOO_LONG, denied(f.sign(c)), "exp before iat");
    }

    @Test
    void lifetimeIsConfigurable() {
        Map<String, Object> c = f.claims();
        c.put("iat", f.now);
        c.put("exp", f.now + 61);
        String jws = f.sign(c);
        Reason r = assertThrows(Denied.class, () -> f.verifier(f.config("maxTokenLifetimeSeconds", "60"))
                .verify(jws, TokenFixture.AUD, f.ticketDigest, f.now)).reason();
        assertEquals(Reason.LIFETIME_TOO_LONG, r);
    }

    @Test
    void fractionalAndHugeNumericDates() throws Exception {
        Map<String, Object> c = f.claims();
        c.put("iat", (double) f.now - 0.5);
        c.put("exp", (double) f.now + 60.25);
        f.verify(f.sign(c));
        assertEquals(Reason.EXP_MISSING, deniedWith("exp", new java.math.BigInteger("123456789012345678901234567890")));
        assertEquals(Reason.EXP_MISSING, deniedWith("exp", -1));
    }

    @Test
    void jti() {
        assertEquals(Reason.JTI_MISSING, deniedWith("jti", null));
        assertEquals(Reason.JTI_MISSING, deniedWith("jti", ""));
        assertEquals(Reason.JTI_MISSING, deniedWith("jti", 12345));
        assertEquals(Reason.JTI_MISSING, deniedWith("jti", "j".repeat(257)));
    }

    @Test
    void sub() {
        assertEquals(Reason.SUB_MISSING, deniedWith("sub", null));
        assertEquals(Reason.SUB_MISSING, deniedWith("sub", ""));
    }

    @Test
    void ticketDigest() {
        assertEquals(Reason.TICKET_DIGEST_MISMATCH, deniedWith("ticket_digest", TokenFixture.digest("another ticket")));
        assertEquals(Reason.TICKET_DIGEST_MISMATCH, deniedWith("ticket_digest", null));
        assertEquals(Reason.TICKET_DIGEST_MISMATCH, deniedWith("ticket_digest", f.ticketDigest + "="));
    }

    @Test
    void email() {
        assertEquals(Reason.EMAIL_MISSING, deniedWith("email", null));
        assertEquals(Reason.EMAIL_INVALID, deniedWith("email", "alice"));
        assertEquals(Reason.EMAIL_INVALID, deniedWith("email", "alice@evil.example@foo.example"));
        assertEquals(Reason.EMAIL_INVALID, deniedWith("email", List.of("alice@foo.example")));
        assertEquals(Reason.EMAIL_NOT_VERIFIED, deniedWith("email_verified", false));
        assertEquals(Reason.EMAIL_NOT_VERIFIED, deniedWith("email_verified", null));
        assertEquals(Reason.EMAIL_NOT_VERIFIED, deniedWith("email_verified", "true"));
        assertEquals(Reason.EMAIL_DOMAIN_NOT_TRUSTED, deniedWith("email", "alice@bar.example"));
        assertEquals(Reason.EMAIL_DOMAIN_NOT_TRUSTED, deniedWith("email", "alice@sub.foo.example"));
    }

    @Test
    void oversizedClaimsToken() {
        Map<String, Object> c = f.claims();
        c.put("name", "x".repeat(9000));
        assertEquals(Reason.CLAIMS_TOKEN_TOO_LARGE, denied(f.sign(c)));
    }

    // ---- discovery

    static final String WK_BAZ = "https://baz.example/.well-known/uma-wide-ecosystem-claims-provider";
    static final String CP_BAZ = "https://cp.baz.example";

    private ClaimsTokenVerifier discoveringVerifier() {
        return f.verifier(f.config("discoveryEnabled", "true"));
    }

    private String bazToken(String iss, String email) {
        Map<String, Object> c = f.claims();
        c.put("iss", iss);
        c.put("email", email);
        return f.sign(c);
    }

    private void serveBazDiscovery(String issuer, String domains) {
        f.fetcher.put(WK_BAZ, ("{\"issuer\":\"" + issuer + "\",\"jwks_uri\":\"https://cp.baz.example/jwks\",\"domains\":" + domains + "}")
                .getBytes(StandardCharsets.UTF_8));
        f.fetcher.put("https://cp.baz.example/jwks", TestKeys.jwks(TestKeys.jwk(TestKeys.ec256(), "k1")));
    }

    @Test
    void discoveryTrustsTheIssuerTheDomainNames() throws Exception {
        serveBazDiscovery(CP_BAZ, "[\"baz.example\"]");
        VerifiedClaimsToken t = discoveringVerifier().verify(bazToken(CP_BAZ, "carol@baz.example"), TokenFixture.AUD, f.ticketDigest, f.now);
        assertEquals("carol@baz.example", t.email());
        assertEquals(CP_BAZ, t.issuer());
    }

    @Test
    void discoveryOffMeansUntrusted() {
        serveBazDiscovery(CP_BAZ, "[\"baz.example\"]");
        assertEquals(Reason.UNTRUSTED_ISSUER, denied(bazToken(CP_BAZ, "carol@baz.example")));
        assertEquals(0, f.fetcher.count(WK_BAZ));
    }

    @Test
    void discoveredIssuerMustMatch() {
        serveBazDiscovery("https://other.baz.example", "[\"baz.example\"]");
        Reason r = assertThrows(Denied.class, () -> discoveringVerifier()
                .verify(bazToken(CP_BAZ, "carol@baz.example"), TokenFixture.AUD, f.ticketDigest, f.now)).reason();
        assertEquals(Reason.UNTRUSTED_ISSUER, r);
    }

    @Test
    void discoveredDocumentMustListTheDomain() {
        serveBazDiscovery(CP_BAZ, "[\"qux.example\"]");
        Reason r = assertThrows(Denied.class, () -> discoveringVerifier()
                .verify(bazToken(CP_BAZ, "carol@baz.example"), TokenFixture.AUD, f.ticketDigest, f.now)).reason();
        assertEquals(Reason.EMAIL_DOMAIN_NOT_TRUSTED, r);
    }

    @Test
    void discoveryFailure() {
        Reason r = assertThrows(Denied.class, () -> discoveringVerifier()
                .verify(bazToken(CP_BAZ, "carol@baz.example"), TokenFixture.AUD, f.ticketDigest, f.now)).reason();
        assertEquals(Reason.DISCOVERY_FAILED, r);
    }

    @Test
    void discoveryNeedsAnEmail() {
        Reason r = assertThrows(Denied.class, () -> discoveringVerifier()
                .verify(bazToken(CP_BAZ, "not-an-email"), TokenFixture.AUD, f.ticketDigest, f.now)).reason();
        assertEquals(Reason.EMAIL_INVALID, r);
    }

    @Test
    void staticEntryWinsOverDiscovery() {
        // The statically trusted issuer is trusted for foo.example only, even if some domain's discovery names it.
        f.fetcher.put(WK_BAZ, ("{\"issuer\":\"" + TokenFixture.ISS + "\",\"jwks_uri\":\"" + TokenFixture.JWKS + "\",\"domains\":[\"baz.example\"]}")
                .getBytes(StandardCharsets.UTF_8));
        Reason r = assertThrows(Denied.class, () -> discoveringVerifier()
                .verify(bazToken(TokenFixture.ISS, "carol@baz.example"), TokenFixture.AUD, f.ticketDigest, f.now)).reason();
        assertEquals(Reason.EMAIL_DOMAIN_NOT_TRUSTED, r);
    }
    // ---- pin and block (issue 14)

    static final String WK_FOO = "https://foo.example/.well-known/uma-wide-ecosystem-claims-provider";

    @Test
    void blockedDomainIsRefusedBeforeAnyFetch() throws Exception {
        serveBazDiscovery(CP_BAZ, "[\"baz.example\"]");
        ClaimsTokenVerifier v = f.verifier(f.config("discoveryEnabled", "true", "blockedDomains", "[\"Baz.Example\"]"));
        Reason r = assertThrows(Denied.class, () -> v.verify(bazToken(CP_BAZ, "carol@baz.example"), TokenFixture.AUD, f.ticketDigest, f.now)).reason();
        assertEquals(Reason.EMAIL_DOMAIN_BLOCKED, r);
        assertEquals(0, f.fetcher.count(WK_BAZ));
        // The pinned domain still works right after, under the same config.
        assertEquals("alice@foo.example", v.verify(f.sign(f.claims()), TokenFixture.AUD, f.ticketDigest, f.now).email());
    }

    @Test
    void pinnedDomainIsNeverDiscovered() throws Exception {
        // foo.example is pinned to TokenFixture.ISS; a document at foo.example naming another issuer is never read.
        f.fetcher.put(WK_FOO, ("{\"issuer\":\"https://evil.example\",\"jwks_uri\":\"https://cp.baz.example/jwks\",\"domains\":[\"foo.example\"]}")
                .getBytes(StandardCharsets.UTF_8));
        serveBazDiscovery(CP_BAZ, "[\"baz.example\"]");
        ClaimsTokenVerifier v = discoveringVerifier();
        Reason r = assertThrows(Denied.class, () -> v.verify(bazToken("https://evil.example", "alice@foo.example"), TokenFixture.AUD, f.ticketDigest, f.now)).reason();
        assertEquals(Reason.DOMAIN_PINNED, r);
        assertEquals(0, f.fetcher.count(WK_FOO));
        // The pinned issuer, and a discovered domain, still verify.
        assertEquals("alice@foo.example", v.verify(f.sign(f.claims()), TokenFixture.AUD, f.ticketDigest, f.now).email());
        assertEquals("carol@baz.example", v.verify(bazToken(CP_BAZ, "carol@baz.example"), TokenFixture.AUD, f.ticketDigest, f.now).email());
    }
}
