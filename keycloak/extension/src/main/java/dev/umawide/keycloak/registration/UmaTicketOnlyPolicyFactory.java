package dev.umawide.keycloak.registration;

import java.util.List;

import org.keycloak.component.ComponentModel;
import org.keycloak.component.ComponentValidationException;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.provider.ProviderConfigProperty;
import org.keycloak.provider.ProviderConfigurationBuilder;
import org.keycloak.services.clientregistration.policy.AbstractClientRegistrationPolicyFactory;
import org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy;

/**
 * Client registration policy {@value #ID}: see {@link UmaTicketOnlyPolicy}. In a realm file, a
 * component of type {@code org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy}
 * with {@code "providerId": "umawide-uma-ticket-only"} and {@code "subType": "anonymous"}
 * (keycloak/realms/org/organisation-realm.json).
 */
public final class UmaTicketOnlyPolicyFactory extends AbstractClientRegistrationPolicyFactory {

    public static final String ID = "umawide-uma-ticket-only";
    public static final String MAX_REGISTRATIONS = "max-registrations";
    public static final String LIFETIME_SECONDS = "lifetime-seconds";

    /** A numeric key: default and accepted range. */
    private record IntKey(String name, int def, int min, int max) {
    }

    private static final List<IntKey> KEYS = List.of(
            new IntKey(MAX_REGISTRATIONS, 1000, 1, 1_000_000),
            new IntKey(LIFETIME_SECONDS, 604_800, 1, 31_536_000));

    @Override
    public ClientRegistrationPolicy create(KeycloakSession session, ComponentModel model) {
        return new UmaTicketOnlyPolicy(session, model);
    }

    @Override
    public String getId() {
        return ID;
    }

    @Override
    public String getHelpText() {
        return "umawide: anonymous registrations get the uma-ticket grant only, expire, and are capped in number";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return ProviderConfigurationBuilder.create()
                .property().name(MAX_REGISTRATIONS).label("Max registrations").type(ProviderConfigProperty.STRING_TYPE)
                .defaultValue("1000").helpText("Live registrations of this policy at most (1 to 1000000)").add()
                .property().name(LIFETIME_SECONDS).label("Lifetime (seconds)").type(ProviderConfigProperty.STRING_TYPE)
                .defaultValue("604800").helpText("How long a registration and its secret live (1 to 31536000)").add()
                .build();
    }

    @Override
    public void validateConfiguration(KeycloakSession session, RealmModel realm, ComponentModel model) throws ComponentValidationException {
        for (IntKey k : KEYS) {
            try {
                value(model.get(k.name()), k);
            } catch (IllegalArgumentException e) {
                throw new ComponentValidationException(e.getMessage());
            }
        }
    }

    /** The component's value of {@code name} (its default when unset); configuration is validated at creation. */
    static int intConfig(ComponentModel model, String name) {
        for (IntKey k : KEYS) {
            if (k.name().equals(name)) {
                try {
                    return value(model.get(name), k);
                } catch (IllegalArgumentException e) {
                    return k.def();
                }
            }
        }
        throw new IllegalArgumentException(name);
    }

    private static int value(String v, IntKey k) {
        if (v == null || v.isBlank()) {
            return k.def();
        }
        String t = v.trim();
        if (t.length() > 9 || !t.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new IllegalArgumentException(k.name() + " must be a whole number from " + k.min() + " to " + k.max());
        }
        int n = Integer.parseInt(t);
        if (n < k.min() || n > k.max()) {
            throw new IllegalArgumentException(k.name() + " must be a whole number from " + k.min() + " to " + k.max());
        }
        return n;
    }
}
