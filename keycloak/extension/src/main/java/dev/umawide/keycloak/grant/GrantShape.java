package dev.umawide.keycloak.grant;

import java.util.List;
import java.util.Map;

/**
 * The form of an uma-ticket grant that a resource server using the claims-token policy accepts:
 * the one of seed step 7 (docs/PROTOCOL.md), exactly one non-empty {@code ticket} and none of the
 * parameters that make Keycloak evaluate more than the ticket's permission. Pure, so the unit tests
 * cover each refusal; {@link UmaTicketGrantType} applies it.
 *
 * <p>Why: without a ticket, Keycloak evaluates every resource the resource server owns (and with
 * {@code permission}, {@code scope} or {@code rpt} further ones), each through the claims-token
 * policy. From Keycloak 26.6 on every Incoming is the resource server's own (keycloak#49121), so
 * one such request cost one evaluation, and one log line, per Incoming of the realm (review F4).
 */
final class GrantShape {

    static final String TICKET = "ticket";

    /** Parameters that widen what Keycloak evaluates beyond the ticket's permission. */
    static final List<String> REFUSED = List.of("audience", "permission", "scope", "rpt", "pct",
            "permission_resource_format", "permission_resource_matching_uri");

    private GrantShape() {
    }

    /** Why the form is not that of step 7, or null when it is; {@code form} maps names to values. */
    static String refusal(Map<String, List<String>> form) {
        List<String> tickets = form.get(TICKET);
        if (tickets == null || tickets.size() != 1 || tickets.get(0) == null || tickets.get(0).isEmpty()) {
            return "an uma-ticket grant here needs exactly one ticket (the permission ticket of the resource server's challenge)";
        }
        for (String name : REFUSED) {
            if (form.containsKey(name)) {
                return "an uma-ticket grant here takes exactly one ticket and no " + name
                        + ": the ticket names the permission";
            }
        }
        return null;
    }
}
