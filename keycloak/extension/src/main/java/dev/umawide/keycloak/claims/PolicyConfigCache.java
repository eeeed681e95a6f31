package dev.umawide.keycloak.claims;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Parsed policy configurations by their raw config map, so that an evaluation does not parse
 * JSON config again. A changed config is a different key; the cache is bounded (cleared when full).
 * Invalid configs are not cached.
 */
final class PolicyConfigCache {

    private final Map<Map<String, String>, PolicyConfig> parsed = new ConcurrentHashMap<>();
    private final int maxEntries;

    PolicyConfigCache(int maxEntries) {
        this.maxEntries = maxEntries;
    }

    PolicyConfig get(Map<String, String> raw) throws InvalidConfigException {
        Map<String, String> key = raw == null ? new HashMap<>() : new HashMap<>(raw);
        PolicyConfig config = parsed.get(key);
        if (config == null) {
            config = PolicyConfig.parse(key, false);
            if (parsed.size() >= maxEntries) {
                parsed.clear();
            }
            parsed.put(key, config);
        }
        return config;
    }

    int size() {
        return parsed.size();
    }
}
