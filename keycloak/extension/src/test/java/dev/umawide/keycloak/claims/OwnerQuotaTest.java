package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;

import org.junit.jupiter.api.Test;

class OwnerQuotaTest {

    /** The single-use store as Keycloak's behaves within one node: records with lifespans. */
    static final class Memory implements OwnerQuota.Store {
        final Map<String, Map<String, String>> records = new HashMap<>();
        final Map<String, Long> lifespans = new HashMap<>();

        @Override
        public boolean putIfAbsent(String key, long lifespanSeconds) {
            if (records.containsKey(key)) {
                return false;
            }
            records.put(key, new HashMap<>());
            lifespans.put(key, lifespanSeconds);
            return true;
        }

        @Override
        public Map<String, String> get(String key) {
            return records.get(key);
        }

        @Override
        public void put(String key, long lifespanSeconds, Map<String, String> notes) {
            records.put(key, notes);
            lifespans.put(key, lifespanSeconds);
        }

        @Override
        public void remove(String key) {
            records.remove(key);
            lifespans.remove(key);
        }
    }

    final Memory store = new Memory();
    static final long NOON = 1_800_000_000L / 86_400 * 86_400 + 43_200;

    OwnerQuota quota() {
        return new OwnerQuota(store, ms -> { }, new HashSet<>());
    }

    static OwnerRules limits(long messages, long bytes) {
        return new OwnerRules(OwnerRules.Mode.ANYONE, java.util.Set.of(), java.util.Set.of(), messages, bytes);
    }

    @Test
    void messagesPerDay() throws Denied {
        OwnerRules r = limits(2, 0);
        quota().charge("realm", "res", "alice@foo.example", 10, NOON, r);
        quota().charge("realm", "res", "alice@foo.example", 10, NOON + 1, r);
        Denied d = assertThrows(Denied.class, () -> quota().charge("realm", "res", "alice@foo.example", 10, NOON + 2, r));
        assertEquals(Reason.QUOTA_EXCEEDED, d.reason());
        // Another sender, another Incoming: counters of their own.
        quota().charge("realm", "res", "carol@foo.example", 10, NOON, r);
        quota().charge("realm", "res2", "alice@foo.example", 10, NOON, r);
        // The next UTC day starts at zero.
        quota().charge("realm", "res", "alice@foo.example", 10, NOON + 43_200, r);
        assertEquals(0, store.records.keySet().stream().filter(k -> k.endsWith(":lock")).count(), "no lock left behind");
    }

    @Test
    void bytesPerDay() throws Denied {
        OwnerRules r = limits(0, 100);
        quota().charge("realm", "res", "alice@foo.example", 60, NOON, r);
        assertEquals(Reason.QUOTA_EXCEEDED, assertThrows(Denied.class, () -> quota().charge("realm", "res", "alice@foo.example", 41, NOON, r)).reason());
        quota().charge("realm", "res", "alice@foo.example", 40, NOON, r); // exactly the limit
        assertEquals(Reason.QUOTA_EXCEEDED, assertThrows(Denied.class, () -> quota().charge("realm", "res", "alice@foo.example", 0, NOON, limits(0, 99))).reason());
        assertEquals(Reason.QUOTA_EXCEEDED, assertThrows(Denied.class, () -> quota().charge("realm", "other", "alice@foo.example", 101, NOON, r)).reason(), "one message over the limit alone");
        String key = OwnerQuota.counterKey("realm", "res", "alice@foo.example", NOON / 86_400);
        assertEquals(Map.of("messages", "2", "bytes", "100"), store.records.get(key), "refusals count nothing");
        assertEquals(86_400 + 43_200, store.lifespans.get(key), "kept until two days after the start of its day");
    }

    @Test
    void chargedOncePerRequest() throws Denied {
        OwnerQuota one = quota();
        OwnerRules r = limits(1, 0);
        one.charge("realm", "res", "alice@foo.example", 1, NOON, r);
        one.charge("realm", "res", "alice@foo.example", 1, NOON, r); // second permission of the same request
        assertEquals(Reason.QUOTA_EXCEEDED, assertThrows(Denied.class, () -> quota().charge("realm", "res", "alice@foo.example", 1, NOON, r)).reason());
    }

    @Test
    void aHeldLockIsUnavailableNotExceeded() {
        String key = OwnerQuota.counterKey("realm", "res", "alice@foo.example", NOON / 86_400);
        store.putIfAbsent(key + ":lock", 5);
        int[] waits = {0};
        OwnerQuota q = new OwnerQuota(store, ms -> waits[0]++, new HashSet<>());
        assertEquals(Reason.QUOTA_UNAVAILABLE, assertThrows(Denied.class, () -> q.charge("realm", "res", "alice@foo.example", 1, NOON, limits(5, 0))).reason());
        assertEquals(OwnerQuota.LOCK_TRIES, waits[0]);
        assertTrue(store.records.get(key) == null, "nothing counted");
    }

    @Test
    void keysSeparateRealmsAndDays() {
        assertNotEquals(OwnerQuota.counterKey("a", "r", "s", 1), OwnerQuota.counterKey("b", "r", "s", 1));
        assertNotEquals(OwnerQuota.counterKey("a", "r", "s", 1), OwnerQuota.counterKey("a", "r", "s", 2));
        assertTrue(OwnerQuota.counterKey("a", "r", "s", 1).startsWith(ReplayGuard.PREFIX));
    }
}
