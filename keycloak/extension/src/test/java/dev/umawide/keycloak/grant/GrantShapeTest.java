package dev.umawide.keycloak.grant;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

class GrantShapeTest {

    /** The form of seed step 7 as the umawide client sends it (rqp-client/rqp/flow.go). */
    private static Map<String, List<String>> step7() {
        Map<String, List<String>> f = new HashMap<>();
        f.put("grant_type", List.of("urn:ietf:params:oauth:grant-type:uma-ticket"));
        f.put("ticket", List.of("eyJhbGciOiJIUzUxMiJ9.e30.c2ln"));
        f.put("submit_request", List.of("false"));
        f.put("claim_token_format", List.of("urn:ietf:params:oauth:token-type:jwt"));
        f.put("claim_token", List.of("e30"));
        return f;
    }

    @Test
    void theFormOfStep7Passes() {
        assertNull(GrantShape.refusal(step7()));
        Map<String, List<String>> f = step7();
        f.put("client_id", List.of("rqp-client"));
        f.put("client_secret", List.of("s"));
        assertNull(GrantShape.refusal(f));
    }

    @Test
    void withoutExactlyOneTicketRefused() {
        Map<String, List<String>> f = step7();
        f.remove("ticket");
        assertTrue(GrantShape.refusal(f).contains("exactly one ticket"));
        f.put("ticket", List.of());
        assertNotNull(GrantShape.refusal(f));
        f.put("ticket", List.of(""));
        assertNotNull(GrantShape.refusal(f));
        f.put("ticket", List.of("a.b.c", "d.e.f"));
        assertNotNull(GrantShape.refusal(f));
    }

    @Test
    void whatWidensTheEvaluationIsRefusedByName() {
        for (String name : GrantShape.REFUSED) {
            Map<String, List<String>> f = step7();
            f.put(name, List.of("resource-server"));
            String refusal = GrantShape.refusal(f);
            assertNotNull(refusal, name);
            assertTrue(refusal.contains("no " + name), refusal);
        }
    }

    @Test
    void issuedForOfATicket() {
        // {"azp":"resource-server"}
        assertTrue("resource-server".equals(UmaTicketGrantType.issuedFor("eyJhbGciOiJIUzUxMiJ9.eyJhenAiOiJyZXNvdXJjZS1zZXJ2ZXIifQ.c2ln")));
        assertNull(UmaTicketGrantType.issuedFor("not a ticket"));
        assertNull(UmaTicketGrantType.issuedFor(null));
        assertNull(UmaTicketGrantType.issuedFor("x".repeat(20000)));
    }
}
