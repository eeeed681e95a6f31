package dev.umawide.keycloak.grant;

import org.keycloak.models.KeycloakSession;
import org.keycloak.protocol.oidc.grants.OAuth2GrantType;
import org.keycloak.protocol.oidc.grants.PermissionGrantTypeFactory;

/**
 * Replaces Keycloak's uma-ticket grant type with {@link UmaTicketGrantType}: the same provider id
 * ({@code urn:ietf:params:oauth:grant-type:uma-ticket}) and shortcut, inherited. Of two factories
 * with one id, Keycloak's {@code ProviderManager.compareFactories} keeps the higher
 * {@link #order()}, and at equal order the one outside {@code org.keycloak}; this one is higher
 * (Keycloak's is 0) so that the choice does not rest on the second rule.
 */
public class UmaTicketGrantTypeFactory extends PermissionGrantTypeFactory {

    @Override
    public OAuth2GrantType create(KeycloakSession session) {
        return new UmaTicketGrantType();
    }

    @Override
    public int order() {
        return 10;
    }
}
