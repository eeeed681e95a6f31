package dev.umawide.keycloak.claims;

import java.math.BigInteger;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.interfaces.ECPublicKey;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.bouncycastle.asn1.x9.X9ECParameters;
import org.bouncycastle.crypto.ec.CustomNamedCurves;
import org.bouncycastle.crypto.params.ECDomainParameters;
import org.bouncycastle.crypto.params.ECPublicKeyParameters;
import org.bouncycastle.crypto.signers.ECDSASigner;

/**
 * ECDSA verification (ES256, ES384, ES512) with Keycloak's BouncyCastle called directly, not
 * through JCA: the same arithmetic BouncyCastle's JCA signature runs ({@link ECDSASigner} with its
 * optimised curves), without what JCA adds around it on every call (a provider lookup and a new
 * signature object by reflection, the key converted into BouncyCastle's form, R||S encoded to DER
 * by us and decoded again by BouncyCastle, its pure-Java SHA-2 instead of the JDK's intrinsic
 * one). Per key, BouncyCastle's public key (its point, on which BouncyCastle caches the point's
 * multiplication tables) is built once and kept. Issue 17: the policy's own time per grant.
 *
 * <p>Only for BouncyCastle's non-FIPS provider ({@code BC}): in FIPS mode Keycloak runs
 * {@code BCFIPS}, whose approved code this class must not bypass, and which has no such classes;
 * {@link JwsAlgorithm} then verifies through JCA as before. Public keys only: nothing secret is kept.
 */
final class BcEcdsa {

    /** At most this many keys are kept (then the cache starts over). */
    static final int MAX_KEYS = 256;

    /** Whether BouncyCastle's lightweight API is on the class path (Keycloak's non-FIPS distribution). */
    static final boolean AVAILABLE = available();

    private BcEcdsa() {
    }

    private static boolean available() {
        try {
            ClassLoader cl = BcEcdsa.class.getClassLoader();
            Class.forName("org.bouncycastle.crypto.signers.ECDSASigner", false, cl);
            Class.forName("org.bouncycastle.crypto.ec.CustomNamedCurves", false, cl);
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }

    /**
     * Verifies an R||S signature ({@code 2 * n} bytes) over {@code signingInput}, hashed with
     * {@code digest}, with {@code key} on the named {@code curve} ({@code secp256r1}, ...). Null when
     * this class cannot verify with that key (no BouncyCastle, unknown curve, a key BouncyCastle
     * refuses): the caller then verifies through JCA, which refuses what is wrong.
     */
    static Boolean verify(PublicKey key, String curve, String digest, int n, byte[] signingInput, byte[] signature) {
        if (!AVAILABLE || !(key instanceof ECPublicKey) || signature.length != 2 * n) {
            return null;
        }
        try {
            return Impl.verify((ECPublicKey) key, curve, digest, n, signingInput, signature);
        } catch (LinkageError e) {
            return null;
        }
    }

    static int keysCached() {
        return Impl.KEYS.size();
    }

    /** BouncyCastle's classes are only touched here, so that without them nothing else fails to load. */
    private static final class Impl {
        /** Curves by name, with BouncyCastle's optimised arithmetic ({@code CustomNamedCurves}). */
        private static final Map<String, ECDomainParameters> CURVES = new ConcurrentHashMap<>();
        /** BouncyCastle's key per JDK key object (identity: the key sets in {@link JwksCache} hold them). */
        private static final Map<Identity, ECPublicKeyParameters> KEYS = new ConcurrentHashMap<>();
        /** Digests to clone (the JDK's, with its intrinsics): cheaper than a provider lookup per call. */
        private static final Map<String, MessageDigest> DIGESTS = new ConcurrentHashMap<>();

        static Boolean verify(ECPublicKey key, String curve, String digest, int n, byte[] signingInput, byte[] signature) {
            ECPublicKeyParameters pub = bcKey(key, curve);
            MessageDigest md = digest(digest);
            if (pub == null || md == null) {
                return null;
            }
            byte[] hash = md.digest(signingInput);
            BigInteger r = new BigInteger(1, Arrays.copyOfRange(signature, 0, n));
            BigInteger s = new BigInteger(1, Arrays.copyOfRange(signature, n, 2 * n));
            ECDSASigner signer = new ECDSASigner();
            signer.init(false, pub);
            // Refuses r or s outside [1, n-1] itself, as BouncyCastle's JCA signature does.
            return signer.verifySignature(hash, r, s);
        }

        private static ECPublicKeyParameters bcKey(ECPublicKey key, String curve) {
            Identity id = new Identity(key);
            ECPublicKeyParameters pub = KEYS.get(id);
            if (pub != null) {
                return pub;
            }
            ECDomainParameters domain = domain(curve);
            if (domain == null) {
                return null;
            }
            try {
                // validatePoint and the constructor refuse a point that is not on the curve.
                pub = new ECPublicKeyParameters(domain.getCurve().validatePoint(key.getW().getAffineX(), key.getW().getAffineY()),
                        domain);
            } catch (RuntimeException e) {
                return null;
            }
            if (KEYS.size() >= MAX_KEYS) {
                KEYS.clear();
            }
            KEYS.put(id, pub);
            return pub;
        }

        private static ECDomainParameters domain(String curve) {
            ECDomainParameters d = CURVES.get(curve);
            if (d == null) {
                X9ECParameters x9 = CustomNamedCurves.getByName(curve);
                if (x9 == null) {
                    return null;
                }
                d = new ECDomainParameters(x9);
                CURVES.put(curve, d);
            }
            return d;
        }

        private static MessageDigest digest(String name) {
            try {
                MessageDigest proto = DIGESTS.get(name);
                if (proto == null) {
                    proto = MessageDigest.getInstance(name);
                    DIGESTS.put(name, proto);
                }
                return (MessageDigest) proto.clone();
            } catch (java.security.NoSuchAlgorithmException | CloneNotSupportedException e) {
                return null;
            }
        }
    }

    /** A key object compared by identity (its equals and hashCode would encode the key). */
    private static final class Identity {
        private final Object key;

        Identity(Object key) {
            this.key = key;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Identity && ((Identity) o).key == key;
        }

        @Override
        public int hashCode() {
            return System.identityHashCode(key);
        }
    }
}
