package dev.umawide.keycloak.grant;

import jakarta.ws.rs.core.MultivaluedMap;
import jakarta.ws.rs.core.Response;

import org.jboss.logging.Logger;
import org.keycloak.authorization.AuthorizationProvider;
import org.keycloak.authorization.model.ResourceServer;
import org.keycloak.events.Errors;
import org.keycloak.jose.jws.JWSInput;
import org.keycloak.models.ClientModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.protocol.oidc.grants.PermissionGrantType;
import org.keycloak.representations.idm.authorization.PermissionTicketToken;
import org.keycloak.services.CorsErrorResponseException;

import dev.umawide.keycloak.claims.ClaimsTokenPolicyProviderFactory;

/**
 * Keycloak's uma-ticket grant ({@link PermissionGrantType}) behind one check: in a resource server
 * that uses the claims-token policy, a grant whose form is not that of seed step 7
 * ({@link GrantShape}) is refused with {@code 400 invalid_request} before Keycloak evaluates
 * anything. A form of step 7 goes to Keycloak at once (no lookup on the honest path); any other
 * goes to Keycloak unchanged when the resource server it names (its {@code audience}, else its
 * ticket's {@code azp}, read without verification: only to find whose rule applies) does not use
 * the policy, or cannot be found (Keycloak then refuses it itself).
 *
 * <p>A subclass rather than a wrapper: it inherits whatever Keycloak's grant adds between releases
 * (26.7 added {@code getTokenParameterNames} and {@code preProcess} to the interface).
 */
public class UmaTicketGrantType extends PermissionGrantType {

    private static final Logger LOG = Logger.getLogger(UmaTicketGrantType.class);

    @Override
    public Response process(Context context) {
        MultivaluedMap<String, String> form = context.getFormParams();
        String refusal = form == null ? null : GrantShape.refusal(form);
        if (refusal != null && usesClaimsToken(context.getSession(), context.getRealm(), form)) {
            LOG.debugf("uma-ticket grant refused before evaluation: %s (realm %s)", refusal, context.getRealm().getName());
            context.getEvent().detail("reason", refusal).error(Errors.INVALID_REQUEST);
            throw new CorsErrorResponseException(context.getCors(), "invalid_request", refusal, Response.Status.BAD_REQUEST);
        }
        return super.process(context);
    }

    /** Whether the resource server the form names has a claims-token policy. */
    static boolean usesClaimsToken(KeycloakSession session, RealmModel realm, MultivaluedMap<String, String> form) {
        String clientId = form.getFirst("audience");
        if (clientId == null || clientId.isEmpty()) {
            clientId = issuedFor(form.getFirst(GrantShape.TICKET));
        }
        if (clientId == null || clientId.isEmpty() || realm == null) {
            return false;
        }
        ClientModel client = realm.getClientByClientId(clientId);
        AuthorizationProvider authz = client == null ? null : session.getProvider(AuthorizationProvider.class);
        if (authz == null) {
            return false;
        }
        ResourceServer rs = authz.getStoreFactory().getResourceServerStore().findByClient(client);
        return rs != null && !authz.getStoreFactory().getPolicyStore().findByType(rs, ClaimsTokenPolicyProviderFactory.ID).isEmpty();
    }

    /** The {@code azp} of a ticket, unverified; null when it cannot be read. */
    static String issuedFor(String ticket) {
        if (ticket == null || ticket.isEmpty() || ticket.length() > 16384) {
            return null;
        }
        try {
            return new JWSInput(ticket).readJsonContent(PermissionTicketToken.class).getIssuedFor();
        } catch (Exception e) {
            return null;
        }
    }
}
