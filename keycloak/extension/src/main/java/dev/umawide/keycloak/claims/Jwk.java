package dev.umawide.keycloak.claims;

import java.io.IOException;
import java.math.BigInteger;
import java.security.AlgorithmParameters;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPublicKeySpec;
import java.security.spec.RSAPublicKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** One public verification key from a JWKS (RFC 7517), turned into a JCA key. */
record Jwk(String kid, Kind kind, String curve, String alg, String use, PublicKey publicKey) {

    enum Kind { RSA, EC, OKP }

    /** At most this many keys are read from one JWKS. */
    static final int MAX_KEYS = 64;
    /** RSA keys shorter than this are ignored. */
    static final int MIN_RSA_BITS = 2048;

    private static final byte[] ED25519_SPKI_PREFIX = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    private static final byte[] ED448_SPKI_PREFIX = {0x30, 0x43, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71, 0x03, 0x3a, 0x00};

    /**
     * Parses a JWKS document. Entries that are malformed, of unsupported type or curve, weak,
     * private (carry {@code d}), or without a {@code kid} are skipped; a document that is not
     * {@code {"keys": [...]}} is an IOException.
     */
    static List<Jwk> parseSet(byte[] json) throws IOException {
        ObjectNode doc = Json.object(json);
        JsonNode keys = doc.get("keys");
        if (keys == null || !keys.isArray()) {
            throw new IOException("JWKS has no keys array");
        }
        List<Jwk> out = new ArrayList<>();
        for (JsonNode k : keys) {
            if (out.size() >= MAX_KEYS) {
                break;
            }
            Jwk jwk = k.isObject() ? parse(k) : null;
            if (jwk != null) {
                out.add(jwk);
            }
        }
        return Collections.unmodifiableList(out);
    }

    /** One key, or null when it cannot be used. */
    static Jwk parse(JsonNode k) {
        try {
            String kid = Json.text(k, "kid");
            String kty = Json.text(k, "kty");
            if (kid == null || kid.isEmpty() || kty == null || k.has("d")) {
                return null;
            }
            String alg = Json.text(k, "alg");
            String use = Json.text(k, "use");
            switch (kty) {
                case "RSA": {
                    byte[] n = b64(k, "n");
                    byte[] e = b64(k, "e");
                    if (n == null || e == null) {
                        return null;
                    }
                    PublicKey key = KeyFactory.getInstance("RSA")
                            .generatePublic(new RSAPublicKeySpec(new BigInteger(1, n), new BigInteger(1, e)));
                    if (((RSAPublicKey) key).getModulus().bitLength() < MIN_RSA_BITS) {
                        return null;
                    }
                    return new Jwk(kid, Kind.RSA, null, alg, use, key);
                }
                case "EC": {
                    String crv = Json.text(k, "crv");
                    int len = crv == null ? 0 : switch (crv) {
                        case "P-256" -> 32;
                        case "P-384" -> 48;
                        case "P-521" -> 66;
                        default -> 0;
                    };
                    byte[] x = b64(k, "x");
                    byte[] y = b64(k, "y");
                    if (len == 0 || x == null || y == null || x.length != len || y.length != len) {
                        return null;
                    }
                    String std = switch (crv) {
                        case "P-256" -> "secp256r1";
                        case "P-384" -> "secp384r1";
                        default -> "secp521r1";
                    };
                    AlgorithmParameters params = AlgorithmParameters.getInstance("EC");
                    params.init(new ECGenParameterSpec(std));
                    ECParameterSpec spec = params.getParameterSpec(ECParameterSpec.class);
                    ECPoint point = new ECPoint(new BigInteger(1, x), new BigInteger(1, y));
                    PublicKey key = KeyFactory.getInstance("EC").generatePublic(new ECPublicKeySpec(point, spec));
                    return new Jwk(kid, Kind.EC, crv, alg, use, key);
                }
                case "OKP": {
                    String crv = Json.text(k, "crv");
                    byte[] x = b64(k, "x");
                    byte[] prefix;
                    int len;
                    if ("Ed25519".equals(crv)) {
                        prefix = ED25519_SPKI_PREFIX;
                        len = 32;
                    } else if ("Ed448".equals(crv)) {
                        prefix = ED448_SPKI_PREFIX;
                        len = 57;
                    } else {
                        return null;
                    }
                    if (x == null || x.length != len) {
                        return null;
                    }
                    byte[] spki = new byte[prefix.length + len];
                    System.arraycopy(prefix, 0, spki, 0, prefix.length);
                    System.arraycopy(x, 0, spki, prefix.length, len);
                    PublicKey key = KeyFactory.getInstance(crv).generatePublic(new X509EncodedKeySpec(spki));
                    return new Jwk(kid, Kind.OKP, crv, alg, use, key);
                }
                default:
                    return null;
            }
        } catch (GeneralSecurityException | RuntimeException e) {
            return null;
        }
    }

    private static byte[] b64(JsonNode k, String name) {
        String v = Json.text(k, name);
        return v == null || v.isEmpty() ? null : Base64Url.decodeNoPad(v);
    }

    /** The first key with this kid that fits the algorithm, or null. */
    static Jwk select(List<Jwk> keys, String kid, JwsAlgorithm alg) {
        if (keys == null) {
            return null;
        }
        for (Jwk k : keys) {
            if (k.kid().equals(kid) && alg.fits(k)) {
                return k;
            }
        }
        return null;
    }
}
