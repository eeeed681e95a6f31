package dev.umawide.keycloak.claims;

import java.io.IOException;
import java.net.URI;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

import org.jboss.logging.Logger;

/**
 * Keys of trusted Claims Providers by trust scope (realm, policy, security settings: see
 * {@link TrustScope}) and JWKS URL, shared by all evaluations. A key set is reused
 * for {@code jwksCacheSeconds}; an unknown {@code kid} triggers a refetch, but no URL is fetched
 * more often than every {@code jwksMinRefreshSeconds} (so forged kids cannot make Keycloak
 * hammer a provider). When a refetch fails the last good key set stays in use.
 */
final class JwksCache {

    private static final Logger LOG = Logger.getLogger(JwksCache.class);

    /** How keys are fetched and how long they live; comes from the policy config. */
    record Settings(TrustScope scope, long ttlMillis, long minRefreshMillis) {
        static Settings of(PolicyConfig c, TrustScope scope) {
            return new Settings(scope, c.jwksCacheSeconds() * 1000L, c.jwksMinRefreshSeconds() * 1000L);
        }
    }

    private record Key(TrustScope scope, URI uri) {
    }

    private static final class Entry {
        List<Jwk> keys;
        long fetchedAt;
        long lastAttempt = Long.MIN_VALUE;
        long lastUsed;
    }

    private final Map<Key, Entry> entries = new ConcurrentHashMap<>();
    private final LongSupplier nowMillis;
    private final int maxEntries;

    JwksCache(LongSupplier nowMillis, int maxEntries) {
        this.nowMillis = nowMillis;
        this.maxEntries = maxEntries;
    }

    /**
     * The key for {@code kid} that fits {@code alg}. Denies with {@link Reason#UNKNOWN_KID} when the
     * (fresh) key set has no such key, {@link Reason#JWKS_UNAVAILABLE} when there is no key set.
     */
    Jwk find(URI jwksUri, String kid, JwsAlgorithm alg, HttpFetcher fetcher, Settings settings) throws Denied {
        Key key = new Key(settings.scope(), jwksUri);
        evictIfFull(key);
        Entry entry = entries.computeIfAbsent(key, u -> new Entry());
        synchronized (entry) {
            long now = nowMillis.getAsLong();
            entry.lastUsed = now;
            boolean fresh = entry.keys != null && now - entry.fetchedAt < settings.ttlMillis();
            if (fresh) {
                Jwk k = Jwk.select(entry.keys, kid, alg);
                if (k != null) {
                    return k;
                }
            }
            boolean mayFetch = entry.lastAttempt == Long.MIN_VALUE || now - entry.lastAttempt >= settings.minRefreshMillis();
            if (mayFetch) {
                entry.lastAttempt = now;
                try {
                    entry.keys = Jwk.parseSet(fetcher.get(jwksUri));
                    entry.fetchedAt = now;
                } catch (IOException | RuntimeException e) {
                    LOG.warnf("claims-token policy: JWKS fetch failed for %s: %s", LogSafe.clip(jwksUri.toString()),
                            LogSafe.clip(e.getClass().getSimpleName()));
                }
            }
            if (entry.keys == null) {
                throw new Denied(Reason.JWKS_UNAVAILABLE, jwksUri.toString());
            }
            Jwk k = Jwk.select(entry.keys, kid, alg);
            if (k == null) {
                throw new Denied(Reason.UNKNOWN_KID);
            }
            return k;
        }
    }

    private void evictIfFull(Key keep) {
        if (entries.size() < maxEntries || entries.containsKey(keep)) {
            return;
        }
        Key oldest = null;
        long oldestUse = Long.MAX_VALUE;
        for (Map.Entry<Key, Entry> e : entries.entrySet()) {
            long used = e.getValue().lastUsed;
            if (used < oldestUse) {
                oldestUse = used;
                oldest = e.getKey();
            }
        }
        if (oldest != null) {
            entries.remove(oldest);
        }
    }

    int size() {
        return entries.size();
    }
}
