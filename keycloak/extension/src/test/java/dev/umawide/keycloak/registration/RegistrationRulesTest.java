package dev.umawide.keycloak.registration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import org.junit.jupiter.api.Test;
import org.keycloak.representations.idm.ClientRepresentation;
import org.keycloak.representations.idm.ProtocolMapperRepresentation;

class RegistrationRulesTest {

    /** What Keycloak's converter makes of grant_types [uma-ticket], response_types [none], client_secret_basic. */
    private static ClientRepresentation umaTicketOnly() {
        ClientRepresentation rep = new ClientRepresentation();
        rep.setName("umawide rqp-client");
        rep.setStandardFlowEnabled(false);
        rep.setImplicitFlowEnabled(false);
        rep.setDirectAccessGrantsEnabled(false);
        rep.setServiceAccountsEnabled(false);
        rep.setPublicClient(false);
        rep.setClientAuthenticatorType("client-secret");
        rep.setAttributes(new HashMap<>(Map.of("backchannel.logout.session.required", "true")));
        return rep;
    }

    private static String refusalWith(Consumer<ClientRepresentation> change) {
        ClientRepresentation rep = umaTicketOnly();
        change.accept(rep);
        return RegistrationRules.refusal(UMA, NONE, rep);
    }

    private static final List<String> UMA = List.of(RegistrationRules.UMA_TICKET);
    private static final List<String> NONE = List.of("none");

    @Test
    void umaTicketOnlyIsAccepted() {
        assertNull(RegistrationRules.refusal(UMA, NONE, umaTicketOnly()));
        assertNull(RegistrationRules.refusal(UMA, null, umaTicketOnly()));
        // Keycloak 26.5 turns the standard flow on for response_types none: bound() turns it off.
        ClientRepresentation rep = umaTicketOnly();
        rep.setStandardFlowEnabled(true);
        assertNull(RegistrationRules.refusal(UMA, NONE, rep));
    }

    @Test
    void otherGrantsAndResponseTypesAreRefusedAsAsked() {
        for (List<String> grants : List.of(List.<String>of(), List.of("authorization_code"), List.of("client_credentials"),
                List.of(RegistrationRules.UMA_TICKET, "client_credentials"), List.of(RegistrationRules.UMA_TICKET, "refresh_token"),
                List.of("password"), List.of("implicit"))) {
            assertTrue(RegistrationRules.refusal(grants, NONE, umaTicketOnly()).contains("grant_types"), grants.toString());
        }
        assertTrue(RegistrationRules.refusal(null, NONE, umaTicketOnly()).contains("grant_types"));
        for (List<String> types : List.of(List.of("code"), List.of("token"), List.of("none", "code"), List.of("id_token"))) {
            assertTrue(RegistrationRules.refusal(UMA, types, umaTicketOnly()).contains("response_types"), types.toString());
        }
    }

    @Test
    void everyOtherFlowIsRefusedByName() {
        assertTrue(refusalWith(r -> r.setImplicitFlowEnabled(true)).contains("implicit"));
        assertTrue(refusalWith(r -> r.setDirectAccessGrantsEnabled(true)).contains("password"));
        assertTrue(refusalWith(r -> r.setServiceAccountsEnabled(true)).contains("client_credentials"));
        assertTrue(refusalWith(r -> r.setRedirectUris(List.of("https://app.example/cb"))).contains("redirect_uris"));
        assertTrue(refusalWith(r -> r.setPublicClient(true)).contains("token_endpoint_auth_method"));
        assertTrue(refusalWith(r -> r.setClientAuthenticatorType("client-jwt")).contains("token_endpoint_auth_method"));
        assertTrue(refusalWith(r -> r.setOptionalClientScopes(List.of("offline_access"))).contains("scope"));
        assertTrue(refusalWith(r -> r.setProtocolMappers(List.of(new ProtocolMapperRepresentation()))).contains("mappers"));
        assertTrue(refusalWith(r -> r.getAttributes().put("oidc.ciba.grant.enabled", "true")).contains("ciba"));
        assertTrue(refusalWith(r -> r.getAttributes().put("jwks.url", "https://x.example/jwks")).contains("jwks_uri"));
        assertTrue(refusalWith(r -> r.setBaseUrl("https://foo.example")).contains("client_uri"));
        assertTrue(refusalWith(r -> r.setName("x".repeat(101))).contains("client_name"));
        assertNotNull(RegistrationRules.refusal(UMA, NONE, null));
    }

    @Test
    void boundTurnsEverythingButUmaTicketOff() {
        ClientRepresentation rep = umaTicketOnly();
        RegistrationRules.bound(rep);
        assertTrue(rep.isServiceAccountsEnabled());
        assertFalse(rep.isStandardFlowEnabled());
        assertFalse(rep.isImplicitFlowEnabled());
        assertFalse(rep.isDirectAccessGrantsEnabled());
        assertFalse(rep.isPublicClient());
        assertFalse(rep.isFullScopeAllowed());
        assertFalse(rep.isConsentRequired());
        assertTrue(rep.getRedirectUris().isEmpty());
        assertEquals("false", rep.getAttributes().get("use.refresh.tokens"));
        assertEquals("false", rep.getAttributes().get("standard.token.exchange.enabled"));
        assertEquals(RegistrationRules.MARKER_VALUE, rep.getAttributes().get(RegistrationRules.MARKER));
        assertTrue(rep.getClientId().startsWith(RegistrationRules.CLIENT_ID_PREFIX));
        assertEquals(RegistrationRules.CLIENT_ID_PREFIX.length() + 36, rep.getClientId().length());
    }

    @Test
    void expiry() {
        assertEquals(1700000000L, RegistrationRules.expiry(Map.of(RegistrationRules.EXPIRES, "1700000000")));
        assertEquals(0, RegistrationRules.expiry(Map.of()));
        assertEquals(0, RegistrationRules.expiry(null));
        assertEquals(0, RegistrationRules.expiry(Map.of(RegistrationRules.EXPIRES, "-5")));
        assertEquals(0, RegistrationRules.expiry(Map.of(RegistrationRules.EXPIRES, "9".repeat(20))));
    }
}
