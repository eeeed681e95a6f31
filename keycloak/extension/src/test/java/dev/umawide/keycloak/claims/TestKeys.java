package dev.umawide.keycloak.claims;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import com.fasterxml.jackson.databind.ObjectMapper;

/** Test keys, JWKs and JWS signing, independent of the code under test. */
final class TestKeys {
    static final ObjectMapper MAPPER = new ObjectMapper();

    private static KeyPair ecP256;
    private static KeyPair rsa2048;
    private static KeyPair ed25519;

    private TestKeys() {
    }

    static synchronized KeyPair ec256() {
        if (ecP256 == null) {
            ecP256 = ec("secp256r1");
        }
        return ecP256;
    }

    static synchronized KeyPair rsa() {
        if (rsa2048 == null) {
            rsa2048 = rsa(2048);
        }
        return rsa2048;
    }

    static synchronized KeyPair ed() {
        if (ed25519 == null) {
            try {
                ed25519 = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        return ed25519;
    }

    static KeyPair ec(String curve) {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec(curve));
            return g.generateKeyPair();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static KeyPair rsa(int bits) {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
            g.initialize(bits);
            return g.generateKeyPair();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String b64(byte[] b) {
        return Base64Url.encodeNoPad(b);
    }

    static byte[] unsigned(BigInteger v, int len) {
        byte[] raw = v.toByteArray();
        if (raw.length == len) {
            return raw;
        }
        byte[] out = new byte[len];
        if (raw.length > len) {
            System.arraycopy(raw, raw.length - len, out, 0, len);
        } else {
            System.arraycopy(raw, 0, out, len - raw.length, raw.length);
        }
        return out;
    }

    /** The public JWK of a key pair. */
    static Map<String, Object> jwk(KeyPair kp, String kid) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("kid", kid);
        if (kp.getPublic() instanceof RSAPublicKey) {
            RSAPublicKey k = (RSAPublicKey) kp.getPublic();
            m.put("kty", "RSA");
            m.put("n", b64(unsigned(k.getModulus(), (k.getModulus().bitLength() + 7) / 8)));
            m.put("e", b64(unsigned(k.getPublicExponent(), (k.getPublicExponent().bitLength() + 7) / 8)));
        } else if (kp.getPublic() instanceof ECPublicKey) {
            ECPublicKey k = (ECPublicKey) kp.getPublic();
            int bits = k.getParams().getCurve().getField().getFieldSize();
            int len = (bits + 7) / 8;
            m.put("kty", "EC");
            m.put("crv", bits == 256 ? "P-256" : bits == 384 ? "P-384" : "P-521");
            m.put("x", b64(unsigned(k.getW().getAffineX(), len)));
            m.put("y", b64(unsigned(k.getW().getAffineY(), len)));
        } else {
            byte[] spki = kp.getPublic().getEncoded();
            m.put("kty", "OKP");
            m.put("crv", "Ed25519");
            m.put("x", b64(Arrays.copyOfRange(spki, spki.length - 32, spki.length)));
        }
        return m;
    }

    @SafeVarargs
    static byte[] jwks(Map<String, Object>... keys) {
        try {
            List<Object> list = new ArrayList<>(Arrays.asList(keys));
            return MAPPER.writeValueAsBytes(Map.of("keys", list));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String json(Object o) {
        try {
            return MAPPER.writeValueAsString(o);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String part(Object o) {
        return b64(json(o).getBytes(StandardCharsets.UTF_8));
    }

    /** A JWS over the header and payload, signed for {@code alg} with {@code key}. */
    static String sign(Map<String, Object> header, Map<String, Object> payload, String alg, PrivateKey key) {
        try {
            String input = part(header) + "." + part(payload);
            byte[] data = input.getBytes(StandardCharsets.US_ASCII);
            byte[] sig;
            switch (alg) {
                case "ES256":
                case "ES384":
                case "ES512": {
                    String h = alg.equals("ES256") ? "SHA256" : alg.equals("ES384") ? "SHA384" : "SHA512";
                    int n = alg.equals("ES256") ? 32 : alg.equals("ES384") ? 48 : 66;
                    Signature s = Signature.getInstance(h + "withECDSA");
                    s.initSign(key);
                    s.update(data);
                    sig = derToConcat(s.sign(), n);
                    break;
                }
                case "RS256": {
                    Signature s = Signature.getInstance("SHA256withRSA");
                    s.initSign(key);
                    s.update(data);
                    sig = s.sign();
                    break;
                }
                case "PS256": {
                    Signature s = Signature.getInstance("RSASSA-PSS");
                    s.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
                    s.initSign(key);
                    s.update(data);
                    sig = s.sign();
                    break;
                }
                case "EdDSA": {
                    Signature s = Signature.getInstance("Ed25519");
                    s.initSign(key);
                    s.update(data);
                    sig = s.sign();
                    break;
                }
                default:
                    throw new IllegalArgumentException(alg);
            }
            return input + "." + b64(sig);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String hmac(Map<String, Object> header, Map<String, Object> payload, byte[] secret) {
        try {
            String input = part(header) + "." + part(payload);
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret, "HmacSHA256"));
            return input + "." + b64(mac.doFinal(input.getBytes(StandardCharsets.US_ASCII)));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] derToConcat(byte[] der, int n) {
        int i = 2;
        if ((der[1] & 0xff) == 0x81) {
            i = 3;
        }
        int rLen = der[i + 1] & 0xff;
        byte[] r = Arrays.copyOfRange(der, i + 2, i + 2 + rLen);
        int j = i + 2 + rLen;
        int sLen = der[j + 1] & 0xff;
        byte[] s = Arrays.copyOfRange(der, j + 2, j + 2 + sLen);
        byte[] out = new byte[2 * n];
        byte[] rr = unsigned(new BigInteger(1, r), n);
        byte[] ss = unsigned(new BigInteger(1, s), n);
        System.arraycopy(rr, 0, out, 0, n);
        System.arraycopy(ss, 0, out, n, n);
        return out;
    }

    static Map<String, Object> header(String alg, String kid) {
        Map<String, Object> h = new LinkedHashMap<>();
        h.put("alg", alg);
        if (kid != null) {
            h.put("kid", kid);
        }
        h.put("typ", "JWT");
        return h;
    }
}
