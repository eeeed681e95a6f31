package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;

class PolicyConfigCacheTest {

    final PolicyConfigCache cache = new PolicyConfigCache(3);

    @Test
    void sameConfigParsedOnce() throws Exception {
        Map<String, String> raw = new HashMap<>(Map.of("maxTokenLifetimeSeconds", "60"));
        PolicyConfig first = cache.get(raw);
        assertSame(first, cache.get(new HashMap<>(raw)));
        raw.put("maxTokenLifetimeSeconds", "90");
        PolicyConfig changed = cache.get(raw);
        assertNotSame(first, changed);
        assertEquals(90, changed.maxTokenLifetimeSeconds());
        assertEquals(60, first.maxTokenLifetimeSeconds(), "the cached config is not changed by the caller's map");
    }

    @Test
    void invalidConfigIsRefusedEveryTime() {
        Map<String, String> bad = Map.of("allowedAlgorithms", "[\"none\"]");
        assertThrows(InvalidConfigException.class, () -> cache.get(bad));
        assertThrows(InvalidConfigException.class, () -> cache.get(bad));
        assertEquals(0, cache.size());
    }

    @Test
    void bounded() throws Exception {
        for (int i = 1; i <= 10; i++) {
            cache.get(Map.of("maxTokenLifetimeSeconds", String.valueOf(i)));
        }
        assertTrue(cache.size() <= 3);
        assertEquals(300, cache.get(null).maxTokenLifetimeSeconds());
    }
}
