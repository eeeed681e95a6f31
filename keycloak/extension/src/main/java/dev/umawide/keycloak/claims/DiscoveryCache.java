package dev.umawide.keycloak.claims;

import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

import org.jboss.logging.Logger;

/**
 * Discovery documents by trust scope (realm, policy, security settings: see {@link TrustScope})
 * and email domain, shared by all evaluations. A document is kept for
 * {@code discoveryCacheSeconds}; a failure is remembered for {@code jwksMinRefreshSeconds}
 * (at least 10 s) so that tokens naming random domains cannot make Keycloak fetch on every request.
 */
final class DiscoveryCache {

    private static final Logger LOG = Logger.getLogger(DiscoveryCache.class);
    static final long MIN_NEGATIVE_TTL_MILLIS = 10_000L;

    record Settings(TrustScope scope, long ttlMillis, long negativeTtlMillis) {
        static Settings of(PolicyConfig c, TrustScope scope) {
            return new Settings(scope, c.discoveryCacheSeconds() * 1000L,
                    Math.max(MIN_NEGATIVE_TTL_MILLIS, c.jwksMinRefreshSeconds() * 1000L));
        }

        boolean allowInsecure() {
            return scope.allowInsecureUrls();
        }
    }

    private record Key(TrustScope scope, String domain) {
    }

    private record Entry(DiscoveryDocument doc, long expiresAt) {
    }

    private final Map<Key, Entry> entries = new ConcurrentHashMap<>();
    private final LongSupplier nowMillis;
    private final int maxEntries;

    DiscoveryCache(LongSupplier nowMillis, int maxEntries) {
        this.nowMillis = nowMillis;
        this.maxEntries = maxEntries;
    }

    /** The discovery document for a (normalized) domain; denies with DISCOVERY_FAILED. */
    DiscoveryDocument get(String domain, HttpFetcher fetcher, Settings settings) throws Denied {
        long now = nowMillis.getAsLong();
        Key key = new Key(settings.scope(), domain);
        Entry e = entries.get(key);
        if (e == null || now >= e.expiresAt()) {
            DiscoveryDocument doc = null;
            try {
                doc = DiscoveryDocument.parse(fetcher.get(DiscoveryDocument.urlFor(domain)), settings.allowInsecure());
            } catch (IOException | RuntimeException ex) {
                LOG.warnf("claims-token policy: discovery failed for domain %s: %s", LogSafe.clip(domain),
                        LogSafe.clip(ex.getClass().getSimpleName()));
            }
            if (entries.size() >= maxEntries) {
                entries.entrySet().removeIf(x -> now >= x.getValue().expiresAt());
                if (entries.size() >= maxEntries) {
                    entries.clear();
                }
            }
            e = new Entry(doc, now + (doc != null ? settings.ttlMillis() : settings.negativeTtlMillis()));
            entries.put(key, e);
        }
        if (e.doc() == null) {
            throw new Denied(Reason.DISCOVERY_FAILED, domain);
        }
        return e.doc();
    }
}
