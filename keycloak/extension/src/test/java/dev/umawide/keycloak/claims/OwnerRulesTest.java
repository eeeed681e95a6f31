package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

class OwnerRulesTest {

    /** The vector resource-server/internal/rules checks too: one normalisation on both sides. */
    @Test
    void sharedEntryVector() throws Exception {
        Path p = Path.of(System.getProperty("basedir", "."), "..", "..", "resource-server", "internal", "rules", "testdata", "entries.tsv");
        int n = 0;
        for (String line : Files.readAllLines(p, StandardCharsets.UTF_8)) {
            if (line.startsWith("#")) {
                continue;
            }
            int tab = line.lastIndexOf('\t');
            String in = line.substring(0, tab);
            String want = line.substring(tab + 1);
            String got = OwnerRules.normalizeEntry(in);
            if (want.equals("!")) {
                assertNull(got, "accepted: " + in);
            } else {
                assertEquals(want, got, "entry " + in);
            }
            n++;
        }
        assertTrue(n >= 30, "only " + n + " vectors");
    }

    private static OwnerRules rules(String... kv) throws Denied {
        Map<String, List<String>> a = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            a.put(kv[i], List.of(kv[i + 1].split(",")));
        }
        return OwnerRules.fromAttributes(a);
    }

    private static EmailAddress alice() {
        return EmailAddress.parse("Alice@Foo.Example");
    }

    @Test
    void noAttributesAdmitAnyone() throws Denied {
        assertSame(OwnerRules.NONE, OwnerRules.fromAttributes(Map.of()));
        assertNull(rules("other", "x").refusal(alice()));
    }

    @Test
    void eachRuleKind() throws Denied {
        assertEquals("deny_list", rules(OwnerRules.ATTR_DENY, "alice@foo.example").refusal(alice()));
        assertEquals("deny_list", rules(OwnerRules.ATTR_DENY, "foo.example").refusal(alice()));
        assertNull(rules(OwnerRules.ATTR_DENY, "sub.foo.example,bob@foo.example,example").refusal(alice()), "exact domain, exact address");
        assertEquals("not_listed", rules(OwnerRules.ATTR_DEFAULT, "listed").refusal(alice()));
        assertEquals("not_listed", rules(OwnerRules.ATTR_DEFAULT, "listed", OwnerRules.ATTR_ALLOW, "bob@foo.example").refusal(alice()));
        assertNull(rules(OwnerRules.ATTR_DEFAULT, "listed", OwnerRules.ATTR_ALLOW, "alice@foo.example").refusal(alice()));
        assertNull(rules(OwnerRules.ATTR_DEFAULT, "listed", OwnerRules.ATTR_ALLOW, "foo.example").refusal(alice()));
        assertEquals("default_nobody", rules(OwnerRules.ATTR_DEFAULT, "nobody", OwnerRules.ATTR_ALLOW, "foo.example").refusal(alice()));
        assertEquals("deny_list", rules(OwnerRules.ATTR_DEFAULT, "listed", OwnerRules.ATTR_ALLOW, "alice@foo.example",
                OwnerRules.ATTR_DENY, "foo.example").refusal(alice()), "deny wins over allow");
        assertNull(rules(OwnerRules.ATTR_DEFAULT, "anyone").refusal(alice()));
    }

    @Test
    void quotaNumbers() throws Denied {
        OwnerRules r = rules(OwnerRules.ATTR_MESSAGES_PER_DAY, "3", OwnerRules.ATTR_BYTES_PER_DAY, "1000");
        assertEquals(3, r.messagesPerDay);
        assertEquals(1000, r.bytesPerDay);
        assertTrue(r.hasQuota());
    }

    @Test
    void invalidAttributesFailClosed() {
        for (String[] bad : new String[][] {
                {OwnerRules.ATTR_DEFAULT, "everyone"},
                {OwnerRules.ATTR_DEFAULT, "anyone,nobody"},
                {OwnerRules.ATTR_ALLOW, "not an entry"},
                {OwnerRules.ATTR_DENY, "foo.example."},
                {OwnerRules.ATTR_MESSAGES_PER_DAY, "-1"},
                {OwnerRules.ATTR_MESSAGES_PER_DAY, "1000001"},
                {OwnerRules.ATTR_BYTES_PER_DAY, "1125899906842625"},
                {OwnerRules.ATTR_BYTES_PER_DAY, "1,2"},
                {OwnerRules.ATTR_BYTES_PER_DAY, "01"}}) {
            Denied d = assertThrows(Denied.class, () -> rules(bad), String.join("=", bad));
            assertEquals(Reason.OWNER_RULES_INVALID, d.reason());
        }
        Map<String, List<String>> many = new HashMap<>();
        String[] entries = new String[OwnerRules.MAX_ENTRIES + 1];
        for (int i = 0; i < entries.length; i++) {
            entries[i] = "d" + i + ".example";
        }
        many.put(OwnerRules.ATTR_DENY, List.of(entries));
        assertEquals(Reason.OWNER_RULES_INVALID, assertThrows(Denied.class, () -> OwnerRules.fromAttributes(many)).reason());
    }

    @Test
    void onlyOwnerReasonsReachTheClient() {
        for (Reason r : Reason.values()) {
            assertEquals(r == Reason.OWNER_REFUSED || r == Reason.QUOTA_EXCEEDED, r.toClient(), r.code());
        }
    }
}
