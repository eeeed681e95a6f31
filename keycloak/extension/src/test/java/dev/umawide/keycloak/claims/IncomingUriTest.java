package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;

class IncomingUriTest {

    @Test
    void canonicalIncomingUrlsAreValid() {
        for (String ok : List.of("http://127.0.0.1:8082/incoming/bob", "https://rs.bar.example/incoming/bob",
                "https://[::1]:8443/incoming/bob", "https://rs.bar.example/incoming/b%C3%B6b",
                "https://rs.bar.example/" + "a".repeat(IncomingUri.MAX_LENGTH - 24))) {
            assertTrue(IncomingUri.valid(ok), ok);
        }
    }

    @Test
    void everythingElseIsInvalid() {
        for (String bad : List.of("", "incoming/bob", "/incoming/bob", "mailto:bob@bar.example", "ftp://rs.bar.example/incoming/bob",
                "https://bob@rs.bar.example/incoming/bob", "https://rs.bar.example/incoming/bob?", "https://rs.bar.example/incoming/bob#",
                "https://rs.bar.example/incoming/bob?a=b", "https:/incoming/bob", "https://rs.bar.example/incoming/b\u00f6b",
                "https://rs.bar.example/incoming/bob\n", "https://rs.bar.example/" + "a".repeat(IncomingUri.MAX_LENGTH))) {
            assertFalse(IncomingUri.valid(bad), bad);
        }
        assertFalse(IncomingUri.valid(null));
    }

    @Test
    void comparedExactly() {
        String u = "https://rs.bar.example/incoming/bob";
        assertDoesNotThrow(() -> IncomingUri.requireMatch(u, u));
        for (String other : List.of("https://rs.bar.example/incoming/bob/", "https://RS.bar.example/incoming/bob",
                "https://rs.bar.example:443/incoming/bob", "https://rs.bar.example/incoming/alice")) {
            assertEquals(Reason.INCOMING_URI_MISMATCH, assertThrows(Denied.class, () -> IncomingUri.requireMatch(u, other)).reason());
        }
        assertEquals(Reason.INCOMING_URI_MISMATCH, assertThrows(Denied.class, () -> IncomingUri.requireMatch(u, null)).reason());
    }
}
