package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.util.LinkedHashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;

class GrantMacTest {

    /** The vector internal/grantmac's Go test checks too: both sides must agree on every byte. */
    static Map<String, String> vector() {
        Map<String, String> c = new LinkedHashMap<>();
        c.put("grant_id", "AAAAAAAAAAAAAAAAAAAAAA");
        c.put("sender_email", "alice@foo.example");
        c.put("sender_iss", "https://cp.foo.example");
        c.put("sender_sub", "a1b2");
        c.put("content_sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        c.put("content_length", "0");
        c.put("incoming_uri", "https://rs.bar.example/incoming/bob");
        c.put("content_type", "text/plain; charset=utf-8");
        return c;
    }

    @Test
    void sharedVector() {
        assertEquals("w7hDO8ogIRrFT3tD7908y0lGYvFs1TXpXsHlaqTJawA", GrantMac.compute("resource-server-secret", "res-1", vector()));
    }

    @Test
    void eachCallHasItsOwnKey() {
        // Each call clones one prepared Mac: no key of one call leaks into the next.
        String first = GrantMac.compute("resource-server-secret", "res-1", vector());
        assertNotEquals(first, GrantMac.compute("another-secret", "res-1", vector()));
        assertEquals(first, GrantMac.compute("resource-server-secret", "res-1", vector()));
    }

    @Test
    void everyFieldCounts() {
        String base = GrantMac.compute("k", "res-1", vector());
        assertNotEquals(base, GrantMac.compute("k2", "res-1", vector()));
        assertNotEquals(base, GrantMac.compute("k", "res-2", vector()));
        for (String f : GrantMac.FIELDS) {
            Map<String, String> c = vector();
            c.put(f, c.getOrDefault(f, "") + "x");
            assertNotEquals(base, GrantMac.compute("k", "res-1", c), f);
        }
    }

    @Test
    void valuesCannotShiftIntoTheNextField() {
        Map<String, String> a = vector();
        a.put("sender_email", "alice@foo.example\n5:x");
        Map<String, String> b = vector();
        assertNotEquals(GrantMac.compute("k", "r", a), GrantMac.compute("k", "r", b));
        Map<String, String> c = vector();
        c.remove("file_name");
        Map<String, String> d = vector();
        d.put("file_name", "");
        assertEquals(GrantMac.compute("k", "r", c), GrantMac.compute("k", "r", d));
    }
}
