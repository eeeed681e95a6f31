package dev.umawide.keycloak.registration;

import java.util.ArrayList;
import java.util.List;

import org.jboss.logging.Logger;
import org.keycloak.common.util.Time;
import org.keycloak.component.ComponentModel;
import org.keycloak.models.ClientModel;
import org.keycloak.models.ClientSecretConstants;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.representations.oidc.OIDCClientRepresentation;
import org.keycloak.services.clientregistration.ClientRegistrationContext;
import org.keycloak.services.clientregistration.ClientRegistrationProvider;
import org.keycloak.services.clientregistration.oidc.OIDCClientRegistrationContext;
import org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy;
import org.keycloak.services.clientregistration.policy.ClientRegistrationPolicyException;
import org.keycloak.services.managers.ClientManager;
import org.keycloak.services.managers.RealmManager;

/**
 * The anonymous client registration policy of an organisation's authorization server (issue 14):
 * an RqP client of any organisation registers itself (RFC 7591, Keycloak's
 * {@code /clients-registrations/openid-connect}) and gets a client that can do the uma-ticket grant
 * and nothing else, for a limited time, within a cap on their number. The registration grants
 * nothing by itself: every permission still needs the claims-token policy's verified claims token.
 *
 * <ul>
 * <li>only OpenID Connect registrations; the request may ask for nothing but uma-ticket
 * ({@link RegistrationRules#refusal});</li>
 * <li>before each registration, registrations of this policy whose time is up are deleted (with
 * their service accounts), then the live ones are counted against {@code max-registrations};</li>
 * <li>after it, the client secret expires with the registration ({@code client.secret.expiration},
 * which Keycloak's client authenticator enforces and the registration response announces as
 * {@code client_secret_expires_at}), and the service account loses the realm's default roles;</li>
 * <li>a registration cannot be updated (RFC 7592 PUT): register anew; reading and deleting it with
 * the registration access token stay Keycloak's.</li>
 * </ul>
 */
final class UmaTicketOnlyPolicy implements ClientRegistrationPolicy {

    private static final Logger LOG = Logger.getLogger(UmaTicketOnlyPolicy.class);
    /** Expired registrations deleted per registration at most: the sweep stays cheap. */
    static final int SWEEP_BATCH = 200;

    private final KeycloakSession session;
    private final int maxRegistrations;
    private final int lifetimeSeconds;

    UmaTicketOnlyPolicy(KeycloakSession session, ComponentModel model) {
        this.session = session;
        this.maxRegistrations = UmaTicketOnlyPolicyFactory.intConfig(model, UmaTicketOnlyPolicyFactory.MAX_REGISTRATIONS);
        this.lifetimeSeconds = UmaTicketOnlyPolicyFactory.intConfig(model, UmaTicketOnlyPolicyFactory.LIFETIME_SECONDS);
    }

    @Override
    public void beforeRegister(ClientRegistrationContext context) throws ClientRegistrationPolicyException {
        if (!(context instanceof OIDCClientRegistrationContext)) {
            throw new ClientRegistrationPolicyException("only OpenID Connect dynamic client registration (clients-registrations/openid-connect) is offered");
        }
        OIDCClientRepresentation request = OidcRequest.of((OIDCClientRegistrationContext) context);
        if (request == null) {
            throw new ClientRegistrationPolicyException("the registration request cannot be read on this Keycloak version");
        }
        String refusal = RegistrationRules.refusal(request, context.getClient());
        if (refusal != null) {
            throw new ClientRegistrationPolicyException(refusal);
        }
        RealmModel realm = session.getContext().getRealm();
        long live = sweep(realm, Time.currentTime());
        if (live >= maxRegistrations) {
            LOG.warnf("client registration refused: %d live registrations, the cap is %d (realm %s)", live, maxRegistrations, realm.getName());
            throw new ClientRegistrationPolicyException("the authorization server holds the most registrations it allows (" + maxRegistrations + "); try again later");
        }
        RegistrationRules.bound(context.getClient());
    }

    /**
     * Deletes up to {@link #SWEEP_BATCH} registrations of this policy whose time is up and counts the
     * others.
     */
    private long sweep(RealmModel realm, long now) {
        List<ClientModel> expired = new ArrayList<>();
        long[] live = {0};
        // Keycloak's JPA store searches only configured attributes (spi-client-jpa-searchable-attributes):
        // registrations are found by their client id prefix, then checked by their marker.
        session.clients().searchClientsByClientIdStream(realm, RegistrationRules.CLIENT_ID_PREFIX, null, null)
                .filter(c -> c.getClientId().startsWith(RegistrationRules.CLIENT_ID_PREFIX)
                        && RegistrationRules.MARKER_VALUE.equals(c.getAttribute(RegistrationRules.MARKER)))
                .forEach(c -> {
                    if (RegistrationRules.expiry(c.getAttributes()) <= now) {
                        if (expired.size() < SWEEP_BATCH) {
                            expired.add(c);
                        }
                    } else {
                        live[0]++;
                    }
                });
        if (!expired.isEmpty()) {
            ClientManager manager = new ClientManager(new RealmManager(session));
            for (ClientModel c : expired) {
                manager.removeClient(realm, c);
            }
            LOG.infof("deleted %d expired client registrations (realm %s)", expired.size(), realm.getName());
        }
        return live[0];
    }

    @Override
    public void afterRegister(ClientRegistrationContext context, ClientModel client) {
        int expires = Time.currentTime() + lifetimeSeconds;
        client.setAttribute(RegistrationRules.EXPIRES, Integer.toString(expires));
        // The attribute OIDCClientSecretConfigWrapper.setClientSecretExpirationTime writes, set
        // directly: that method's signature changed in Keycloak 26.7 (NoSuchMethodError there with a
        // JAR built against 26.5); the constant is inlined at compile time.
        client.setAttribute(ClientSecretConstants.CLIENT_SECRET_EXPIRATION, Integer.toString(expires));
        // Keycloak gives every new user, service accounts included, the realm's default roles
        // (offline_access, uma_authorization): a registration needs none of them.
        UserModel account = session.users().getServiceAccount(client);
        if (account != null) {
            account.deleteRoleMapping(client.getRealm().getDefaultRole());
        }
    }

    @Override
    public void beforeUpdate(ClientRegistrationContext context, ClientModel client) throws ClientRegistrationPolicyException {
        throw new ClientRegistrationPolicyException("a registration cannot be changed: register anew");
    }

    @Override
    public void afterUpdate(ClientRegistrationContext context, ClientModel client) {
    }

    @Override
    public void beforeView(ClientRegistrationProvider provider, ClientModel client) {
    }

    @Override
    public void beforeDelete(ClientRegistrationProvider provider, ClientModel client) {
    }
}
