package dev.umawide.keycloak.registration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import org.junit.jupiter.api.Test;
import org.keycloak.jose.jwk.JSONWebKeySet;
import org.keycloak.jose.jwk.JWK;
import org.keycloak.representations.idm.ClientRepresentation;
import org.keycloak.representations.idm.ProtocolMapperRepresentation;
import org.keycloak.representations.oidc.OIDCClientRepresentation;

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

    /** The request the umawide client sends (rqp-client/rqp/register.go), with these grant and response types. */
    private static OIDCClientRepresentation request(List<String> grantTypes, List<String> responseTypes) {
        OIDCClientRepresentation r = new OIDCClientRepresentation();
        r.setClientName("umawide rqp-client (foo.example)");
        r.setGrantTypes(grantTypes);
        r.setResponseTypes(responseTypes);
        r.setTokenEndpointAuthMethod("client_secret_basic");
        return r;
    }

    private static String refusal(List<String> grantTypes, List<String> responseTypes, ClientRepresentation rep) {
        return RegistrationRules.refusal(request(grantTypes, responseTypes), rep);
    }

    private static String refusalWith(Consumer<ClientRepresentation> change) {
        ClientRepresentation rep = umaTicketOnly();
        change.accept(rep);
        return refusal(UMA, NONE, rep);
    }

    private static String requestRefusalWith(Consumer<OIDCClientRepresentation> change) {
        OIDCClientRepresentation r = request(UMA, NONE);
        change.accept(r);
        return RegistrationRules.refusal(r, umaTicketOnly());
    }

    private static final List<String> UMA = List.of(RegistrationRules.UMA_TICKET);
    private static final List<String> NONE = List.of("none");

    @Test
    void umaTicketOnlyIsAccepted() {
        assertNull(refusal(UMA, NONE, umaTicketOnly()));
        assertNull(refusal(UMA, null, umaTicketOnly()));
        assertNull(refusal(UMA, List.of(), umaTicketOnly()));
        // client_name and token_endpoint_auth_method may be left out; empty fields ask for nothing.
        assertNull(requestRefusalWith(r -> {
            r.setClientName(null);
            r.setTokenEndpointAuthMethod(null);
            r.setRedirectUris(List.of());
            r.setSectorIdentifierUri("");
            r.setJwks(new JSONWebKeySet());
        }));
        // Keycloak 26.5 turns the standard flow on for response_types none: bound() turns it off.
        ClientRepresentation rep = umaTicketOnly();
        rep.setStandardFlowEnabled(true);
        assertNull(refusal(UMA, NONE, rep));
    }

    /**
     * The request fields that make Keycloak fetch a URL of the registrant's or redirect to it
     * (review F1, F2) are refused by name, before Keycloak acts on them.
     */
    @Test
    void urlFieldsAreRefusedByName() {
        Map<String, Consumer<OIDCClientRepresentation>> cases = new HashMap<>();
        cases.put("sector_identifier_uri", r -> {
            r.setSubjectType("pairwise");
            r.setSectorIdentifierUri("http://169.254.169.254/latest/meta-data/");
        });
        cases.put("request_uris", r -> r.setRequestUris(List.of("http://10.0.0.5:8080/*")));
        cases.put("post_logout_redirect_uris", r -> r.setPostLogoutRedirectUris(List.of("https://evil.example/*")));
        cases.put("backchannel_logout_uri", r -> r.setBackchannelLogoutUri("http://10.0.0.5/logout"));
        cases.put("frontchannel_logout_uri", r -> r.setFrontChannelLogoutUri("https://evil.example/logout"));
        cases.put("jwks_uri", r -> r.setJwksUri("http://10.0.0.5/jwks"));
        cases.put("logo_uri", r -> r.setLogoUri("https://evil.example/logo.png"));
        cases.put("policy_uri", r -> r.setPolicyUri("https://evil.example/policy"));
        cases.put("tos_uri", r -> r.setTosUri("https://evil.example/tos"));
        cases.put("client_uri", r -> r.setClientUri("https://evil.example"));
        cases.put("initiate_login_uri", r -> r.setInitiateLoginUri("https://evil.example/login"));
        cases.put("redirect_uris", r -> r.setRedirectUris(List.of("https://evil.example/cb")));
        cases.put("backchannel_client_notification_endpoint", r -> r.setBackchannelClientNotificationEndpoint("http://10.0.0.5/"));
        cases.put("jwks", r -> {
            JWK key = new JWK();
            key.setKeyId("k");
            key.setKeyType("EC");
            JSONWebKeySet set = new JSONWebKeySet();
            set.setKeys(new JWK[] {key});
            r.setJwks(set);
        });
        cases.put("scope", r -> r.setScope("offline_access"));
        cases.put("client_secret", r -> r.setClientSecret("chosen"));
        cases.put("software_id", r -> r.setSoftwareId("umawide"));
        cases.put("contacts", r -> r.setContacts(List.of("mallory@evil.example")));
        cases.put("backchannel_logout_session_required", r -> r.setBackchannelLogoutSessionRequired(false));
        cases.put("require_pushed_authorization_requests", r -> r.setRequirePushedAuthorizationRequests(true));
        for (Map.Entry<String, Consumer<OIDCClientRepresentation>> c : cases.entrySet()) {
            String refusal = requestRefusalWith(c.getValue());
            assertNotNull(refusal, c.getKey());
            assertTrue(refusal.startsWith(c.getKey() + " is not accepted"), c.getKey() + ": " + refusal);
        }
    }

    /**
     * Every field of Keycloak's registration request but the four the umawide client sends is
     * refused when set, whatever its type: the allowlist, field by field, so that a field added
     * to Keycloak's representation is refused without a change here.
     */
    @Test
    void everyOtherRequestFieldIsRefused() throws Exception {
        List<String> accepted = new ArrayList<>();
        int setters = 0;
        for (Method m : OIDCClientRepresentation.class.getMethods()) {
            if (!m.getName().startsWith("set") || m.getParameterCount() != 1) {
                continue;
            }
            Object value = sample(m.getParameterTypes()[0]);
            if (value == null) {
                continue;
            }
            setters++;
            OIDCClientRepresentation r = request(UMA, NONE);
            m.invoke(r, value);
            if (RegistrationRules.unexpectedField(r) == null) {
                accepted.add(m.getName());
            }
        }
        assertTrue(setters > 40, "setters tried: " + setters);
        assertEquals(List.of("setClientName", "setGrantTypes", "setResponseTypes", "setTokenEndpointAuthMethod"),
                accepted.stream().sorted().toList());
    }

    private static Object sample(Class<?> type) {
        if (type == String.class) {
            return "x";
        }
        if (type == List.class) {
            return List.of("x");
        }
        if (type == Boolean.class) {
            return Boolean.TRUE;
        }
        if (type == Integer.class) {
            return 1;
        }
        if (type == JSONWebKeySet.class) {
            JSONWebKeySet set = new JSONWebKeySet();
            set.setKeys(new JWK[] {new JWK()});
            return set;
        }
        return null;
    }

    @Test
    void otherGrantsAndResponseTypesAreRefusedAsAsked() {
        for (List<String> grants : List.of(List.<String>of(), List.of("authorization_code"), List.of("client_credentials"),
                List.of(RegistrationRules.UMA_TICKET, "client_credentials"), List.of(RegistrationRules.UMA_TICKET, "refresh_token"),
                List.of("password"), List.of("implicit"))) {
            assertTrue(refusal(grants, NONE, umaTicketOnly()).contains("grant_types"), grants.toString());
        }
        assertTrue(refusal(null, NONE, umaTicketOnly()).contains("grant_types"));
        for (List<String> types : List.of(List.of("code"), List.of("token"), List.of("none", "code"), List.of("id_token"))) {
            assertTrue(refusal(UMA, types, umaTicketOnly()).contains("response_types"), types.toString());
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
        assertNotNull(refusal(UMA, NONE, null));
        assertNotNull(RegistrationRules.refusal(null, umaTicketOnly()));
    }

    @Test
    void boundTurnsEverythingButUmaTicketOff() {
        ClientRepresentation rep = umaTicketOnly();
        for (String a : RegistrationRules.URL_ATTRIBUTES) {
            rep.getAttributes().put(a, "https://evil.example/x");
        }
        rep.getAttributes().put("use.jwks.string", "true");
        rep.getAttributes().put("use.jwks.url", "true");
        rep.setBaseUrl("https://evil.example");
        RegistrationRules.bound(rep);
        for (String a : List.of("request.uris", "post.logout.redirect.uris", "frontchannel.logout.url", "backchannel.logout.url",
                "jwks.url", "jwks.string", "sectorIdentifierUri", "logoUri")) {
            assertNull(rep.getAttributes().get(a), a);
        }
        assertEquals("false", rep.getAttributes().get("use.jwks.string"));
        assertEquals("false", rep.getAttributes().get("use.jwks.url"));
        assertNull(rep.getBaseUrl());
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
