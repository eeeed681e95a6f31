package dev.umawide.keycloak.registration;

import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;

import com.fasterxml.jackson.databind.JsonNode;
import org.keycloak.representations.idm.ClientRepresentation;
import org.keycloak.representations.oidc.OIDCClientRepresentation;
import org.keycloak.util.JsonSerialization;

/**
 * What an anonymous dynamic client registration (RFC 7591) at an organisation's authorization
 * server may ask for: the uma-ticket grant with a client secret, nothing else. The checks are pure
 * (no session), so the unit tests cover each refusal; {@link UmaTicketOnlyPolicy} applies them.
 *
 * <p>The request as sent may carry only the fields the umawide client sends ({@link #REQUEST_FIELDS});
 * any other non-empty field is refused by its name. An allowlist rather than a list of refused
 * fields: Keycloak maps much of RFC 7591 into the client, and some of it makes Keycloak fetch a URL
 * the registrant chose ({@code sector_identifier_uri} at registration, {@code request_uris} at the
 * authorization endpoint, {@code jwks_uri}, the logout URIs) or redirect to it
 * ({@code post_logout_redirect_uris}); a field a later Keycloak adds is refused too.
 *
 * <p>They then read {@code grant_types} and {@code response_types} as sent, and the client
 * representation Keycloak derived from it. The derived flags alone cannot tell what was asked:
 * Keycloak's converter ({@code DescriptionConverter.toInternal}) turns the standard flow on for
 * {@code response_types ["none"]} in 26.5, and for an absent {@code response_types} in earlier
 * releases (which assume {@code code}). So {@code response_types} may be absent, empty or
 * {@code ["none"]}, and the flags the converter set are overwritten by {@link #bound}. Keycloak 26.5 also maps {@code grant_types} uma-ticket to
 * {@code authorizationServicesEnabled}, which would make the registration a resource server with
 * authorization settings of its own in this realm; {@link #bound} turns that off too. Anything else is refused by name rather than silently dropped,
 * so a client learns at once what this AS does not offer.
 */
final class RegistrationRules {

    /** Marks a client registered through this policy; its value is {@link #MARKER_VALUE}. */
    static final String MARKER = "umawide.dcr";
    static final String MARKER_VALUE = "uma-ticket";
    /** Client ids of registrations: the prefix and a random UUID (the request may not name one). */
    static final String CLIENT_ID_PREFIX = "umawide-dcr-";
    /** When the registration expires, epoch seconds (the same instant as its secret's expiry). */
    static final String EXPIRES = "umawide.dcr.expires";

    private RegistrationRules() {
    }

    static final String UMA_TICKET = "urn:ietf:params:oauth:grant-type:uma-ticket";

    /**
     * The request fields (RFC 7591 names) a registration may carry: what the umawide client sends
     * (rqp-client/rqp/register.go, internal/uma.ClientRegistrationRequest).
     */
    static final Set<String> REQUEST_FIELDS = Set.of("client_name", "grant_types", "response_types", "token_endpoint_auth_method");

    /** A request with nothing in it, as JSON: a field equal to its value here was not asked for. */
    private static final JsonNode EMPTY_REQUEST = JsonSerialization.mapper.valueToTree(new OIDCClientRepresentation());

    /**
     * The first reason to refuse a registration, or null when it asks only for what is allowed:
     * {@code request} as sent, {@code rep} as Keycloak derived it.
     */
    static String refusal(OIDCClientRepresentation request, ClientRepresentation rep) {
        if (request == null || rep == null) {
            return "no client metadata";
        }
        String field = unexpectedField(request);
        if (field != null) {
            return field + " is not accepted: a registration may carry only " + new TreeSet<>(REQUEST_FIELDS);
        }
        List<String> grantTypes = request.getGrantTypes();
        List<String> responseTypes = request.getResponseTypes();
        if (grantTypes == null || !grantTypes.equals(List.of(UMA_TICKET))) {
            return "grant_types must be exactly [\"" + UMA_TICKET + "\"]: no other grant is offered";
        }
        if (responseTypes != null && !responseTypes.isEmpty() && !responseTypes.equals(List.of("none"))) {
            return "response_types must be [\"none\"]: the authorization endpoint is not offered";
        }
        if (Boolean.TRUE.equals(rep.isImplicitFlowEnabled())) {
            return "the implicit flow is not offered";
        }
        if (Boolean.TRUE.equals(rep.isDirectAccessGrantsEnabled())) {
            return "the password grant is not offered";
        }
        if (Boolean.TRUE.equals(rep.isServiceAccountsEnabled())) {
            return "the client_credentials grant is not offered";
        }
        if (rep.getRedirectUris() != null && !rep.getRedirectUris().isEmpty()) {
            return "redirect_uris are not accepted: no flow here redirects";
        }
        if (Boolean.TRUE.equals(rep.isPublicClient()) || !"client-secret".equals(rep.getClientAuthenticatorType())) {
            return "token_endpoint_auth_method must be client_secret_basic or client_secret_post";
        }
        if (Boolean.TRUE.equals(rep.isBearerOnly())) {
            return "bearer-only clients are not registered";
        }
        if (rep.getOptionalClientScopes() != null && !rep.getOptionalClientScopes().isEmpty()
                || rep.getDefaultClientScopes() != null && !rep.getDefaultClientScopes().isEmpty()) {
            return "scope is not accepted";
        }
        if (rep.getProtocolMappers() != null && !rep.getProtocolMappers().isEmpty()) {
            return "protocol mappers are not accepted";
        }
        Map<String, String> attrs = rep.getAttributes() == null ? Map.of() : rep.getAttributes();
        for (String flag : List.of("oidc.ciba.grant.enabled", "oauth2.device.authorization.grant.enabled",
                "use.jwks.url", "standard.token.exchange.enabled")) {
            if ("true".equalsIgnoreCase(attrs.get(flag))) {
                return "not offered: " + flag;
            }
        }
        if (attrs.get("jwks.url") != null && !attrs.get("jwks.url").isEmpty()) {
            return "jwks_uri is not accepted";
        }
        if (rep.getBaseUrl() != null && !rep.getBaseUrl().isEmpty() || rep.getRootUrl() != null && !rep.getRootUrl().isEmpty()) {
            return "client_uri is not accepted";
        }
        if (rep.getName() != null && rep.getName().length() > 100) {
            return "client_name longer than 100 characters";
        }
        return null;
    }

    /**
     * The RFC 7591 name of the first field of {@code request} outside {@link #REQUEST_FIELDS} that
     * carries something (not null, not an empty string, list or object, not its default), or null.
     * The request is read as JSON through Keycloak's own mapper, so the names are those on the wire.
     */
    static String unexpectedField(OIDCClientRepresentation request) {
        JsonNode asked = JsonSerialization.mapper.valueToTree(request);
        for (Iterator<Map.Entry<String, JsonNode>> it = asked.fields(); it.hasNext();) {
            Map.Entry<String, JsonNode> e = it.next();
            if (REQUEST_FIELDS.contains(e.getKey()) || empty(e.getValue()) || e.getValue().equals(EMPTY_REQUEST.get(e.getKey()))) {
                continue;
            }
            return e.getKey();
        }
        return null;
    }

    private static boolean empty(JsonNode v) {
        if (v == null || v.isNull() || v.isMissingNode()) {
            return true;
        }
        if (v.isTextual()) {
            return v.textValue().isEmpty();
        }
        return v.isContainerNode() && v.size() == 0;
    }

    /**
     * Turns an accepted request into what is created: a confidential client with a service account
     * (Keycloak runs an uma-ticket grant without a bearer token through its client-credentials code,
     * which needs one) and every other flow off, no refresh tokens, no full scope, marked as a
     * registration of this policy, with a client id {@link #CLIENT_ID_PREFIX} + a random UUID.
     */
    static void bound(ClientRepresentation rep) {
        rep.setClientId(CLIENT_ID_PREFIX + UUID.randomUUID());
        rep.setStandardFlowEnabled(false);
        rep.setImplicitFlowEnabled(false);
        rep.setDirectAccessGrantsEnabled(false);
        rep.setServiceAccountsEnabled(true);
        rep.setPublicClient(false);
        rep.setBearerOnly(false);
        rep.setConsentRequired(false);
        rep.setFullScopeAllowed(false);
        rep.setFrontchannelLogout(false);
        rep.setAuthorizationServicesEnabled(false);
        rep.setWebOrigins(List.of());
        rep.setRedirectUris(List.of());
        rep.setBaseUrl(null);
        rep.setRootUrl(null);
        rep.setAdminUrl(null);
        Map<String, String> attrs = rep.getAttributes() == null ? new HashMap<>() : new HashMap<>(rep.getAttributes());
        // Whatever a Keycloak version derives from the request, nothing that makes Keycloak fetch or
        // redirect to a URL of the registrant's, nor keys of its own, stays (the allowlist of
        // refusal() already keeps them out of the request).
        for (String url : URL_ATTRIBUTES) {
            attrs.remove(url);
        }
        attrs.put("use.jwks.url", "false");
        attrs.put("use.jwks.string", "false");
        attrs.put("oauth2.jwt.authorization.grant.enabled", "false");
        attrs.put("use.refresh.tokens", "false");
        attrs.put("client_credentials.use_refresh_token", "false");
        attrs.put("oauth2.device.authorization.grant.enabled", "false");
        attrs.put("oidc.ciba.grant.enabled", "false");
        attrs.put("standard.token.exchange.enabled", "false");
        attrs.put(MARKER, MARKER_VALUE);
        rep.setAttributes(attrs);
    }

    /** Client attributes holding URLs or keys of the registrant's (OIDCConfigAttributes, CibaConfig, Keycloak 26). */
    static final List<String> URL_ATTRIBUTES = List.of("request.uris", "post.logout.redirect.uris",
            "frontchannel.logout.url", "backchannel.logout.url", "jwks.url", "jwks.string", "logoUri", "tosUri",
            "policyUri", "sectorIdentifierUri", "ciba.backchannel.client.notification.endpoint");

    /** The registration's expiry (epoch seconds) from its attributes; 0 when unreadable (treated as expired). */
    static long expiry(Map<String, String> attributes) {
        String v = attributes == null ? null : attributes.get(EXPIRES);
        if (v == null || v.length() > 12 || v.isEmpty() || !v.chars().allMatch(c -> c >= '0' && c <= '9')) {
            return 0;
        }
        return Long.parseLong(v);
    }
}
