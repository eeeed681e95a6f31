package dev.umawide.keycloak.claims;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.Provider;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.security.spec.PSSParameterSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.keycloak.common.crypto.CryptoIntegration;

/**
 * The asymmetric JWS algorithms the policy can verify, with plain JCA. There is deliberately no
 * entry for {@code none} or any HMAC algorithm: such a token can never verify.
 */
public enum JwsAlgorithm {
    ES256(Jwk.Kind.EC, "SHA256withECDSA", "P-256", 32, "secp256r1", "SHA-256"),
    ES384(Jwk.Kind.EC, "SHA384withECDSA", "P-384", 48, "secp384r1", "SHA-384"),
    ES512(Jwk.Kind.EC, "SHA512withECDSA", "P-521", 66, "secp521r1", "SHA-512"),
    RS256(Jwk.Kind.RSA, "SHA256withRSA", null, 0),
    RS384(Jwk.Kind.RSA, "SHA384withRSA", null, 0),
    RS512(Jwk.Kind.RSA, "SHA512withRSA", null, 0),
    PS256(Jwk.Kind.RSA, "RSASSA-PSS", null, 0),
    PS384(Jwk.Kind.RSA, "RSASSA-PSS", null, 0),
    PS512(Jwk.Kind.RSA, "RSASSA-PSS", null, 0),
    EdDSA(Jwk.Kind.OKP, null, null, 0);

    private final Jwk.Kind kind;
    private final String jca;
    private final String curve;
    private final int coordinateLength;
    /** ECDSA only: the curve's standard name and the hash, for {@link BcEcdsa}. */
    private final String stdCurve;
    private final String digest;

    JwsAlgorithm(Jwk.Kind kind, String jca, String curve, int coordinateLength) {
        this(kind, jca, curve, coordinateLength, null, null);
    }

    JwsAlgorithm(Jwk.Kind kind, String jca, String curve, int coordinateLength, String stdCurve, String digest) {
        this.kind = kind;
        this.jca = jca;
        this.curve = curve;
        this.coordinateLength = coordinateLength;
        this.stdCurve = stdCurve;
        this.digest = digest;
    }

    /** The algorithm for a JWS {@code alg} value (case-sensitive), or null when not supported. */
    public static JwsAlgorithm byName(String name) {
        if (name == null) {
            return null;
        }
        for (JwsAlgorithm a : values()) {
            if (a.name().equals(name)) {
                return a;
            }
        }
        return null;
    }

    static List<String> names() {
        List<String> out = new ArrayList<>();
        for (JwsAlgorithm a : values()) {
            out.add(a.name());
        }
        return out;
    }

    /** Whether a key may be used with this algorithm: key type, curve, and the key's own alg/use. */
    boolean fits(Jwk key) {
        if (key.kind() != kind) {
            return false;
        }
        if (curve != null && !curve.equals(key.curve())) {
            return false;
        }
        if (key.alg() != null && !key.alg().equals(name())) {
            return false;
        }
        return key.use() == null || key.use().equals("sig");
    }

    /** Verifies a signature; false on any mismatch or malformed signature, never throws. */
    boolean verify(Jwk key, byte[] signingInput, byte[] signature) {
        return verify(key, signingInput, signature, kind == Jwk.Kind.RSA ? null : keycloakBouncyCastle());
    }

    /**
     * As {@link #verify(Jwk, byte[], byte[])}, preferring {@code preferred} for the JCA signature
     * when it is not null and accepts the key, else the default providers.
     */
    boolean verify(Jwk key, byte[] signingInput, byte[] signature, Provider preferred) {
        if (!fits(key) || signature == null) {
            return false;
        }
        try {
            byte[] toVerify = signature;
            PublicKey pub = key.publicKey();
            String algorithm;
            switch (kind) {
                case EC:
                    if (!(pub instanceof ECPublicKey) || signature.length != 2 * coordinateLength) {
                        return false;
                    }
                    if (preferred != null && "BC".equals(preferred.getName())) {
                        // Keycloak's (non-FIPS) BouncyCastle, without JCA around it: the same check, cheaper.
                        Boolean ok = BcEcdsa.verify(pub, stdCurve, digest, coordinateLength, signingInput, signature);
                        if (ok != null) {
                            return ok;
                        }
                    }
                    toVerify = concatToDer(signature, coordinateLength);
                    if (toVerify == null) {
                        return false;
                    }
                    algorithm = jca;
                    break;
                case RSA:
                    if (!(pub instanceof RSAPublicKey)) {
                        return false;
                    }
                    algorithm = jca;
                    break;
                case OKP:
                    algorithm = key.curve();
                    break;
                default:
                    return false;
            }
            Signature sig = null;
            if (preferred != null) {
                try {
                    sig = initVerify(Signature.getInstance(algorithm, preferred), nativeKey(pub, preferred));
                } catch (GeneralSecurityException | RuntimeException e) {
                    sig = null; // that provider cannot do it with this key: use the default ones
                }
            }
            if (sig == null) {
                sig = initVerify(Signature.getInstance(algorithm), pub);
            }
            sig.update(signingInput);
            return sig.verify(toVerify);
        } catch (GeneralSecurityException | RuntimeException e) {
            return false;
        }
    }

    /** At most this many translated keys are kept (then the cache starts over). */
    static final int MAX_NATIVE_KEYS = 256;

    /** Public keys translated into a provider's own key class, by provider and key. */
    private static final Map<List<Object>, PublicKey> NATIVE_KEYS = new ConcurrentHashMap<>();

    /**
     * {@code pub} as {@code provider}'s own key class, translated once per key. BouncyCastle
     * converts a JDK key into its own form on every {@code initVerify} and then recomputes the
     * point's multiplication table for every verification: with its own key, whose point (and
     * the table cached on it) lives as long as the key, an ES256 verification costs about half
     * the CPU (make bench, docs/BENCHMARKS.md). A key the provider cannot translate is returned
     * as it is. Public keys only: nothing secret is kept.
     */
    static PublicKey nativeKey(PublicKey pub, Provider provider) {
        List<Object> id = List.of(provider.getName(), pub);
        PublicKey cached = NATIVE_KEYS.get(id);
        if (cached != null) {
            return cached;
        }
        PublicKey out = pub;
        try {
            // From the X.509 encoding, not translateKey: that keeps the named curve (BouncyCastle's
            // translateKey spells the curve out and then misses its optimised P-256 arithmetic).
            byte[] der = pub.getEncoded();
            if (der != null) {
                out = KeyFactory.getInstance(pub.getAlgorithm(), provider).generatePublic(new X509EncodedKeySpec(der));
            }
        } catch (GeneralSecurityException | RuntimeException e) {
            // that provider has no factory for this key type: verify with the key as it is
        }
        if (NATIVE_KEYS.size() >= MAX_NATIVE_KEYS) {
            NATIVE_KEYS.clear();
        }
        NATIVE_KEYS.put(id, out);
        return out;
    }

    static int nativeKeysCached() {
        return NATIVE_KEYS.size();
    }

    private Signature initVerify(Signature sig, PublicKey pub) throws GeneralSecurityException {
        if (jca != null && jca.equals("RSASSA-PSS")) {
            sig.setParameter(pssParams());
        }
        sig.initVerify(pub);
        return sig;
    }

    /**
     * Keycloak's BouncyCastle provider (BC, or BCFIPS in FIPS mode), or null outside Keycloak.
     * On JDK 17 it verifies ECDSA and EdDSA signatures several times faster than SunEC.
     */
    static Provider keycloakBouncyCastle() {
        try {
            if (CryptoIntegration.isInitialised()) {
                return CryptoIntegration.getProvider().getBouncyCastleProvider();
            }
        } catch (RuntimeException | LinkageError e) {
            // not inside Keycloak, or no such provider
        }
        return null;
    }

    private PSSParameterSpec pssParams() {
        switch (this) {
            case PS256:
                return new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1);
            case PS384:
                return new PSSParameterSpec("SHA-384", "MGF1", MGF1ParameterSpec.SHA384, 48, 1);
            case PS512:
                return new PSSParameterSpec("SHA-512", "MGF1", MGF1ParameterSpec.SHA512, 64, 1);
            default:
                throw new IllegalStateException(name());
        }
    }

    /**
     * Converts a JWS ECDSA signature (R || S, each {@code n} bytes) to the ASN.1 DER form JCA
     * verifies. Returns null when R or S is zero.
     */
    static byte[] concatToDer(byte[] rs, int n) {
        if (rs.length != 2 * n) {
            return null;
        }
        BigInteger r = new BigInteger(1, Arrays.copyOfRange(rs, 0, n));
        BigInteger s = new BigInteger(1, Arrays.copyOfRange(rs, n, 2 * n));
        if (r.signum() == 0 || s.signum() == 0) {
            return null;
        }
        byte[] rb = r.toByteArray();
        byte[] sb = s.toByteArray();
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        derInteger(body, rb);
        derInteger(body, sb);
        byte[] content = body.toByteArray();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0x30);
        derLength(out, content.length);
        out.write(content, 0, content.length);
        return out.toByteArray();
    }

    private static void derInteger(ByteArrayOutputStream out, byte[] value) {
        out.write(0x02);
        derLength(out, value.length);
        out.write(value, 0, value.length);
    }

    private static void derLength(ByteArrayOutputStream out, int len) {
        if (len < 0x80) {
            out.write(len);
        } else if (len < 0x100) {
            out.write(0x81);
            out.write(len);
        } else {
            out.write(0x82);
            out.write(len >> 8);
            out.write(len & 0xff);
        }
    }
}
