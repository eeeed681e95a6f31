package dev.umawide.keycloak.claims;

import java.util.HashMap;
import java.util.Map;

/** An in-memory single-use store recording lifespans. */
final class MemoryStore implements ReplayGuard.Store {
    final Map<String, Long> lifespans = new HashMap<>();

    @Override
    public boolean putIfAbsent(String key, long lifespanSeconds) {
        return lifespans.putIfAbsent(key, lifespanSeconds) == null;
    }
}
