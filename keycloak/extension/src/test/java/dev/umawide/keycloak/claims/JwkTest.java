package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

class JwkTest {

    private static Jwk parse(Map<String, Object> m) {
        return Jwk.parse(TestKeys.MAPPER.valueToTree(m));
    }

    @Test
    void parsesEachSupportedType() {
        Jwk ec = parse(TestKeys.jwk(TestKeys.ec256(), "e"));
        assertEquals(Jwk.Kind.EC, ec.kind());
        assertEquals("P-256", ec.curve());
        assertEquals(Jwk.Kind.RSA, parse(TestKeys.jwk(TestKeys.rsa(), "r")).kind());
        Jwk ed = parse(TestKeys.jwk(TestKeys.ed(), "o"));
        assertEquals(Jwk.Kind.OKP, ed.kind());
        assertEquals("Ed25519", ed.curve());
        assertNotNull(parse(TestKeys.jwk(TestKeys.ec("secp384r1"), "e384")));
        assertNotNull(parse(TestKeys.jwk(TestKeys.ec("secp521r1"), "e521")));
    }

    @Test
    void skipsUnusableKeys() {
        Map<String, Object> noKid = TestKeys.jwk(TestKeys.ec256(), "x");
        noKid.remove("kid");
        assertNull(parse(noKid));
        Map<String, Object> priv = TestKeys.jwk(TestKeys.ec256(), "x");
        priv.put("d", "AAAA");
        assertNull(parse(priv), "private keys are never used");
        assertNull(parse(TestKeys.jwk(TestKeys.rsa(1024), "weak")), "RSA under 2048 bits");
        Map<String, Object> badCurve = TestKeys.jwk(TestKeys.ec256(), "x");
        badCurve.put("crv", "secp256k1");
        assertNull(parse(badCurve));
        Map<String, Object> shortX = TestKeys.jwk(TestKeys.ec256(), "x");
        shortX.put("x", "AAAA");
        assertNull(parse(shortX));
        Map<String, Object> padded = TestKeys.jwk(TestKeys.ec256(), "x");
        padded.put("x", padded.get("x") + "=");
        assertNull(parse(padded));
        assertNull(parse(Map.of("kid", "s", "kty", "oct", "k", "c2VjcmV0")), "symmetric keys are never used");
        assertNull(parse(Map.of("kid", "x", "kty", "OKP", "crv", "X25519", "x", TestKeys.b64(new byte[32]))));
        assertNull(parse(Map.of("kid", "x", "kty", "RSA", "n", "AQAB")));
    }

    @Test
    void parsesSetSkippingBadEntries() throws Exception {
        Map<String, Object> priv = TestKeys.jwk(TestKeys.ec256(), "p");
        priv.put("d", "AAAA");
        byte[] json = TestKeys.jwks(TestKeys.jwk(TestKeys.ec256(), "a"), priv, TestKeys.jwk(TestKeys.rsa(), "b"));
        List<Jwk> keys = Jwk.parseSet(json);
        assertEquals(2, keys.size());
        assertEquals("a", keys.get(0).kid());
        assertEquals("b", keys.get(1).kid());
    }

    @Test
    void setMustHaveKeysArray() {
        assertThrows(IOException.class, () -> Jwk.parseSet("{}".getBytes(StandardCharsets.UTF_8)));
        assertThrows(IOException.class, () -> Jwk.parseSet("{\"keys\":{}}".getBytes(StandardCharsets.UTF_8)));
        assertThrows(IOException.class, () -> Jwk.parseSet("[]".getBytes(StandardCharsets.UTF_8)));
        assertThrows(IOException.class, () -> Jwk.parseSet("<html>".getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void setIsCapped() throws Exception {
        List<Object> many = new ArrayList<>();
        Map<String, Object> k = TestKeys.jwk(TestKeys.ec256(), "k");
        for (int i = 0; i < 100; i++) {
            Map<String, Object> copy = new java.util.LinkedHashMap<>(k);
            copy.put("kid", "k" + i);
            many.add(copy);
        }
        byte[] json = TestKeys.MAPPER.writeValueAsBytes(Map.of("keys", many));
        assertEquals(Jwk.MAX_KEYS, Jwk.parseSet(json).size());
    }

    @Test
    void selectsByKidAndType() throws Exception {
        List<Jwk> keys = Jwk.parseSet(TestKeys.jwks(TestKeys.jwk(TestKeys.rsa(), "same"), TestKeys.jwk(TestKeys.ec256(), "same"),
                TestKeys.jwk(TestKeys.ed(), "ed")));
        assertSame(keys.get(1), Jwk.select(keys, "same", JwsAlgorithm.ES256));
        assertSame(keys.get(0), Jwk.select(keys, "same", JwsAlgorithm.PS256));
        assertSame(keys.get(2), Jwk.select(keys, "ed", JwsAlgorithm.EdDSA));
        assertNull(Jwk.select(keys, "ed", JwsAlgorithm.ES256));
        assertNull(Jwk.select(keys, "other", JwsAlgorithm.ES256));
        assertNull(Jwk.select(null, "same", JwsAlgorithm.ES256));
    }
}
