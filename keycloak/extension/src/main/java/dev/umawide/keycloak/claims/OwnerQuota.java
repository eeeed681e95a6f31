package dev.umawide.keycloak.claims;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * The per-sender quota of an Incoming: messages and bytes per (Incoming, sender, UTC day),
 * counted at the grant in Keycloak's single-use object store ({@code session.singleUseObjects()},
 * the cluster-wide store Keycloak keeps its own replay records in), so every node of a cluster
 * counts into the same record.
 *
 * <p>The store has no compare-and-set, so a count is changed under a lock that is itself a
 * single-use record ({@code putIfAbsent} is atomic across the cluster): take the lock, read,
 * check, write, release. The lock expires after {@link #LOCK_LIFESPAN_SECONDS} should a node die
 * holding it; a holder stalled longer than that could lose one increment (an undercount of one
 * message), which is the price of not adding a database table. Only grants of one sender to one
 * Incoming contend.
 *
 * <p>A grant counts when it is made: an RPT that is never used still uses up its message and
 * its declared {@code content_length} (which the Resource Server enforces), so the quota bounds
 * what could be stored, never less. Counting starts when a quota is set. "A day" is the UTC day
 * of the quota clock ({@link QuotaClock}); each day is its own record, kept until two days after
 * it began, and a new day starts at zero.
 */
final class OwnerQuota {

    /** The single-use object store (SingleUseObjectProvider in Keycloak). */
    interface Store {
        boolean putIfAbsent(String key, long lifespanSeconds);

        Map<String, String> get(String key);

        void put(String key, long lifespanSeconds, Map<String, String> notes);

        void remove(String key);
    }

    interface Sleeper {
        void sleep(long millis) throws InterruptedException;
    }

    static final long LOCK_LIFESPAN_SECONDS = 5;
    static final int LOCK_TRIES = 200;
    static final long LOCK_WAIT_MILLIS = 10;
    static final long DAY = 86_400;

    static final String MESSAGES = "messages";
    static final String BYTES = "bytes";

    private final Store store;
    private final Sleeper sleeper;
    private final Set<String> chargedByThisRequest;

    OwnerQuota(Store store, Sleeper sleeper, Set<String> chargedByThisRequest) {
        this.store = store;
        this.sleeper = sleeper;
        this.chargedByThisRequest = chargedByThisRequest;
    }

    /** The record of one sender's pushes into one Incoming on one UTC day. */
    static String counterKey(String realmId, String resourceId, String sender, long day) {
        byte[] id = (resourceId + "\u0000" + sender).getBytes(StandardCharsets.UTF_8);
        return ReplayGuard.PREFIX + "quota:" + realmId + ":" + day + ":" + Base64Url.encodeNoPad(Base64Url.sha256(id));
    }

    /**
     * Counts one message of {@code bytes} for the sender, or throws {@link Reason#QUOTA_EXCEEDED}
     * (nothing counted) when that would go over a limit. Idempotent within one request (a policy
     * may be evaluated once per permission).
     */
    void charge(String realmId, String resourceId, String sender, long bytes, long nowSeconds, OwnerRules rules) throws Denied {
        long day = Math.floorDiv(nowSeconds, DAY);
        String key = counterKey(realmId, resourceId, sender, day);
        if (chargedByThisRequest.contains(key)) {
            return;
        }
        // Kept two days past the start of its day: a node whose clock is a little off still finds it.
        long lifespan = Math.max(1, (day + 2) * DAY - nowSeconds);
        String lock = key + ":lock";
        lock(lock);
        try {
            Map<String, String> notes = store.get(key);
            long messages = value(notes, MESSAGES);
            long used = value(notes, BYTES);
            if (rules.messagesPerDay > 0 && messages + 1 > rules.messagesPerDay) {
                throw new Denied(Reason.QUOTA_EXCEEDED, "messages_per_day");
            }
            if (rules.bytesPerDay > 0 && (bytes > rules.bytesPerDay || used > rules.bytesPerDay - bytes)) {
                throw new Denied(Reason.QUOTA_EXCEEDED, "bytes_per_day");
            }
            Map<String, String> next = new HashMap<>();
            next.put(MESSAGES, Long.toString(messages + 1));
            next.put(BYTES, Long.toString(used + bytes));
            store.put(key, lifespan, next);
            chargedByThisRequest.add(key);
        } finally {
            store.remove(lock);
        }
    }

    private void lock(String lock) throws Denied {
        for (int i = 0; i < LOCK_TRIES; i++) {
            if (store.putIfAbsent(lock, LOCK_LIFESPAN_SECONDS)) {
                return;
            }
            try {
                sleeper.sleep(LOCK_WAIT_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        throw new Denied(Reason.QUOTA_UNAVAILABLE, "counter locked");
    }

    private static long value(Map<String, String> notes, String name) {
        if (notes == null) {
            return 0;
        }
        String v = notes.get(name);
        if (v == null) {
            return 0;
        }
        try {
            return Math.max(0, Long.parseLong(v));
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
