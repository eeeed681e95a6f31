package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.util.Arrays;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class JwsAlgorithmTest {

    private static Jwk jwk(KeyPair kp, String kid) {
        return Jwk.parse(TestKeys.MAPPER.valueToTree(TestKeys.jwk(kp, kid)));
    }

    private static CompactJws signed(String alg, KeyPair kp) throws Denied {
        String jws = TestKeys.sign(TestKeys.header(alg, "k"), Map.of("iss", "x"), alg, kp.getPrivate());
        return CompactJws.parse(jws, 8192);
    }

    private static KeyPair keyFor(String alg) {
        switch (alg) {
            case "ES256":
                return TestKeys.ec256();
            case "EdDSA":
                return TestKeys.ed();
            default:
                return TestKeys.rsa();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"ES256", "RS256", "PS256", "EdDSA"})
    void verifiesGoodSignatureAndRefusesTampering(String name) throws Exception {
        JwsAlgorithm alg = JwsAlgorithm.byName(name);
        KeyPair kp = keyFor(name);
        CompactJws j = signed(name, kp);
        Jwk key = jwk(kp, "k");
        assertTrue(alg.verify(key, j.signingInput(), j.signature()));

        byte[] input = j.signingInput().clone();
        input[input.length - 1] ^= 1;
        assertFalse(alg.verify(key, input, j.signature()), "tampered payload");
        byte[] sig = j.signature().clone();
        sig[sig.length / 2] ^= 1;
        assertFalse(alg.verify(key, j.signingInput(), sig), "tampered signature");
        assertFalse(alg.verify(key, j.signingInput(), new byte[0]), "empty signature");
        assertFalse(alg.verify(key, j.signingInput(), null), "no signature");
    }

    @Test
    void otherKeyDoesNotVerify() throws Exception {
        CompactJws j = signed("ES256", TestKeys.ec256());
        assertFalse(JwsAlgorithm.ES256.verify(jwk(TestKeys.ec("secp256r1"), "k"), j.signingInput(), j.signature()));
    }

    @Test
    void keyTypeMustFitAlgorithm() throws Exception {
        CompactJws rs = signed("RS256", TestKeys.rsa());
        Jwk rsa = jwk(TestKeys.rsa(), "k");
        assertTrue(JwsAlgorithm.RS256.verify(rsa, rs.signingInput(), rs.signature()));
        // The same RSA signature presented as PS256 or ES256 never verifies.
        assertFalse(JwsAlgorithm.PS256.verify(rsa, rs.signingInput(), rs.signature()));
        assertFalse(JwsAlgorithm.ES256.verify(rsa, rs.signingInput(), rs.signature()));
        assertFalse(JwsAlgorithm.ES256.fits(rsa));
        assertFalse(JwsAlgorithm.EdDSA.fits(jwk(TestKeys.ec256(), "k")));
        assertFalse(JwsAlgorithm.ES384.fits(jwk(TestKeys.ec256(), "k")), "curve must match");
        assertTrue(JwsAlgorithm.EdDSA.fits(jwk(TestKeys.ed(), "k")));
    }

    @Test
    void keyAlgAndUseRestrictIt() {
        Map<String, Object> m = TestKeys.jwk(TestKeys.rsa(), "k");
        m.put("alg", "RS256");
        Jwk rs = Jwk.parse(TestKeys.MAPPER.valueToTree(m));
        assertTrue(JwsAlgorithm.RS256.fits(rs));
        assertFalse(JwsAlgorithm.PS256.fits(rs));
        m.remove("alg");
        m.put("use", "enc");
        assertFalse(JwsAlgorithm.RS256.fits(Jwk.parse(TestKeys.MAPPER.valueToTree(m))));
        m.put("use", "sig");
        assertTrue(JwsAlgorithm.RS256.fits(Jwk.parse(TestKeys.MAPPER.valueToTree(m))));
    }

    @Test
    void ecdsaSignatureMustBeExactConcatLength() throws Exception {
        CompactJws j = signed("ES256", TestKeys.ec256());
        Jwk key = jwk(TestKeys.ec256(), "k");
        byte[] longer = Arrays.copyOf(j.signature(), 65);
        assertFalse(JwsAlgorithm.ES256.verify(key, j.signingInput(), longer));
        // A DER signature (what JCA produces) is refused: JWS uses R || S.
        assertFalse(JwsAlgorithm.ES256.verify(key, j.signingInput(), JwsAlgorithm.concatToDer(j.signature(), 32)));
    }

    @Test
    void concatToDer() {
        byte[] rs = new byte[64];
        rs[31] = 1;
        rs[63] = (byte) 0x80;
        byte[] der = JwsAlgorithm.concatToDer(rs, 32);
        assertEquals("3007020101020200" + "80", hex(der));
        assertNull(JwsAlgorithm.concatToDer(new byte[64], 32), "r = s = 0");
        assertNull(JwsAlgorithm.concatToDer(new byte[63], 32), "odd length");
        byte[] big = new byte[132];
        Arrays.fill(big, (byte) 0xff);
        byte[] der521 = JwsAlgorithm.concatToDer(big, 66);
        assertEquals(0x30, der521[0] & 0xff);
        assertEquals(0x81, der521[1] & 0xff, "long-form length for P-521");
        assertEquals(der521.length - 3, der521[2] & 0xff);
    }

    @Test
    void namesAreExact() {
        assertNotNull(JwsAlgorithm.byName("EdDSA"));
        assertNull(JwsAlgorithm.byName("none"));
        assertNull(JwsAlgorithm.byName("HS256"));
        assertNull(JwsAlgorithm.byName("es256"));
        assertNull(JwsAlgorithm.byName(null));
        assertFalse(JwsAlgorithm.names().contains("none"));
    }

    private static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) {
            s.append(String.format("%02x", x & 0xff));
        }
        return s.toString();
    }

    @Test
    void signingInputIsAscii() throws Exception {
        CompactJws j = signed("ES256", TestKeys.ec256());
        assertEquals(new String(j.signingInput(), StandardCharsets.US_ASCII).chars().filter(c -> c == '.').count(), 1);
    }

    @ParameterizedTest
    @ValueSource(strings = {"ES256", "EdDSA", "RS256", "PS256"})
    void bouncyCastleVerifiesTheSameWay(String name) throws Exception {
        java.security.Provider bc = new org.bouncycastle.jce.provider.BouncyCastleProvider();
        JwsAlgorithm alg = JwsAlgorithm.byName(name);
        KeyPair kp = keyFor(name);
        CompactJws j = signed(name, kp);
        Jwk key = jwk(kp, "k");
        assertTrue(alg.verify(key, j.signingInput(), j.signature(), bc));
        byte[] sig = j.signature().clone();
        sig[sig.length / 2] ^= 1;
        assertFalse(alg.verify(key, j.signingInput(), sig, bc));
        byte[] input = j.signingInput().clone();
        input[0] ^= 1;
        assertFalse(alg.verify(key, input, j.signature(), bc));
    }

    @Test
    void thePreferredProviderVerifiesWithItsOwnKeyTranslatedOnce() throws Exception {
        java.security.Provider bc = new org.bouncycastle.jce.provider.BouncyCastleProvider();
        KeyPair kp = TestKeys.ec256();
        Jwk key = jwk(kp, "k");
        java.security.PublicKey nat = JwsAlgorithm.nativeKey(key.publicKey(), bc);
        assertTrue(nat.getClass().getName().startsWith("org.bouncycastle."), nat.getClass().getName());
        assertSame(nat, JwsAlgorithm.nativeKey(key.publicKey(), bc), "translated once, then kept");
        assertArrayEquals(key.publicKey().getEncoded(), nat.getEncoded(), "the same key");
        // Another key is another entry: a signature by one never verifies with the other.
        KeyPair other = TestKeys.ec("secp256r1");
        CompactJws j = signed("ES256", kp);
        assertTrue(JwsAlgorithm.ES256.verify(key, j.signingInput(), j.signature(), bc));
        assertFalse(JwsAlgorithm.ES256.verify(jwk(other, "k"), j.signingInput(), j.signature(), bc));
        // A key type the provider has no factory for is used as it is.
        java.security.Provider rsaOnly = java.security.Security.getProvider("SunRsaSign");
        assertSame(key.publicKey(), JwsAlgorithm.nativeKey(key.publicKey(), rsaOnly));
        assertTrue(JwsAlgorithm.nativeKeysCached() <= JwsAlgorithm.MAX_NATIVE_KEYS);
    }

    /** ES256/384/512 with BouncyCastle ("BC") go to {@link BcEcdsa}: the same answers as JCA, key kept once. */
    @ParameterizedTest
    @ValueSource(strings = {"ES256:secp256r1", "ES384:secp384r1", "ES512:secp521r1"})
    void bouncyCastleDirectlyVerifiesAsJcaDoes(String spec) throws Exception {
        assertTrue(BcEcdsa.AVAILABLE, "bcprov is on the test class path, as in Keycloak");
        java.security.Provider bc = new org.bouncycastle.jce.provider.BouncyCastleProvider();
        String name = spec.split(":")[0];
        JwsAlgorithm alg = JwsAlgorithm.byName(name);
        KeyPair kp = TestKeys.ec(spec.split(":")[1]);
        Jwk key = jwk(kp, "k");
        CompactJws j = signed(name, kp);
        int n = j.signature().length / 2;
        String digest = "SHA-" + name.substring(2);
        assertEquals(Boolean.TRUE, BcEcdsa.verify(key.publicKey(), spec.split(":")[1], digest, n, j.signingInput(), j.signature()));
        int cached = BcEcdsa.keysCached();
        assertTrue(alg.verify(key, j.signingInput(), j.signature(), bc));
        assertEquals(cached, BcEcdsa.keysCached(), "the key is converted once, then kept");
        assertTrue(alg.verify(key, j.signingInput(), j.signature()), "JCA (the default providers) agrees");

        byte[] input = j.signingInput().clone();
        input[input.length - 1] ^= 1;
        assertFalse(alg.verify(key, input, j.signature(), bc), "tampered payload");
        for (int i : new int[] {0, n - 1, n, 2 * n - 1}) {
            byte[] sig = j.signature().clone();
            sig[i] ^= 1;
            assertFalse(alg.verify(key, j.signingInput(), sig, bc), "tampered signature byte " + i);
        }
        assertFalse(alg.verify(key, j.signingInput(), Arrays.copyOf(j.signature(), 2 * n - 1), bc), "short signature");
        assertFalse(alg.verify(jwk(TestKeys.ec(spec.split(":")[1]), "k"), j.signingInput(), j.signature(), bc), "another key");
        // r or s zero, or not below the group order (all ones is above it): refused, as JCA refuses them.
        byte[] zeroR = j.signature().clone();
        Arrays.fill(zeroR, 0, n, (byte) 0);
        assertFalse(alg.verify(key, j.signingInput(), zeroR, bc), "r = 0");
        byte[] zeroS = j.signature().clone();
        Arrays.fill(zeroS, n, 2 * n, (byte) 0);
        assertFalse(alg.verify(key, j.signingInput(), zeroS, bc), "s = 0");
        byte[] bigS = j.signature().clone();
        Arrays.fill(bigS, n, 2 * n, (byte) 0xff);
        assertFalse(alg.verify(key, j.signingInput(), bigS, bc), "s >= n");
        // The signature (r, n - s) verifies for ECDSA too (JCA accepts it alike): not a bypass, the same maths.
        java.math.BigInteger order = org.bouncycastle.crypto.ec.CustomNamedCurves.getByName(spec.split(":")[1]).getN();
        java.math.BigInteger s = new java.math.BigInteger(1, Arrays.copyOfRange(j.signature(), n, 2 * n));
        byte[] negated = j.signature().clone();
        System.arraycopy(TestKeys.unsigned(order.subtract(s), n), 0, negated, n, n);
        assertEquals(alg.verify(key, j.signingInput(), negated), alg.verify(key, j.signingInput(), negated, bc));
    }

    @Test
    void bouncyCastleFipsIsNotBypassed() throws Exception {
        // A provider named BCFIPS (Keycloak in FIPS mode) gets JCA, never BcEcdsa.
        java.security.Provider fips = new java.security.Provider("BCFIPS", "0", "stand-in") {
            private static final long serialVersionUID = 1L;
        };
        KeyPair kp = TestKeys.ec("secp256r1");
        Jwk key = jwk(kp, "k");
        CompactJws j = signed("ES256", kp);
        int cached = BcEcdsa.keysCached();
        assertTrue(JwsAlgorithm.ES256.verify(key, j.signingInput(), j.signature(), fips));
        assertEquals(cached, BcEcdsa.keysCached(), "not through BcEcdsa");
    }

    @Test
    void aProviderThatCannotDoItFallsBackToTheDefaults() throws Exception {
        java.security.Provider rsaOnly = java.security.Security.getProvider("SunRsaSign");
        CompactJws j = signed("ES256", TestKeys.ec256());
        assertTrue(JwsAlgorithm.ES256.verify(jwk(TestKeys.ec256(), "k"), j.signingInput(), j.signature(), rsaOnly));
        CompactJws e = signed("EdDSA", TestKeys.ed());
        assertTrue(JwsAlgorithm.EdDSA.verify(jwk(TestKeys.ed(), "k"), e.signingInput(), e.signature(), rsaOnly));
    }

    @Test
    void outsideKeycloakThereIsNoPreferredProvider() {
        assertNull(JwsAlgorithm.keycloakBouncyCastle());
    }
}
