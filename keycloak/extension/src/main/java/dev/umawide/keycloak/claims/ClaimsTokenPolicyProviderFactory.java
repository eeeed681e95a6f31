package dev.umawide.keycloak.claims;

import java.util.HashMap;
import java.util.Map;

import org.keycloak.Config;
import org.keycloak.authorization.AuthorizationProvider;
import org.keycloak.authorization.model.Policy;
import org.keycloak.authorization.policy.provider.PolicyProvider;
import org.keycloak.authorization.policy.provider.PolicyProviderFactory;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.models.ModelValidationException;
import org.keycloak.representations.idm.authorization.PolicyRepresentation;

/**
 * Registers the {@code claims-token} policy type. The configuration is the generic policy
 * config map (see {@link PolicyConfig}); it is validated whenever a policy is created, updated
 * or imported, so a typo fails loudly (400 from the admin REST API) instead of denying silently.
 * The JWKS and discovery caches live here, shared by all sessions.
 */
public final class ClaimsTokenPolicyProviderFactory implements PolicyProviderFactory<PolicyRepresentation> {

    public static final String ID = "claims-token";

    private final JwksCache jwksCache = new JwksCache(System::currentTimeMillis, 256);
    private final DiscoveryCache discoveryCache = new DiscoveryCache(System::currentTimeMillis, 1024);
    private final ClaimsTokenPolicyProvider provider = new ClaimsTokenPolicyProvider(jwksCache, discoveryCache);

    @Override
    public String getId() {
        return ID;
    }

    @Override
    public String getName() {
        return "Claims token (UMA Wide Ecosystem)";
    }

    @Override
    public String getGroup() {
        return "Others";
    }

    @Override
    public PolicyProvider create(AuthorizationProvider authorization) {
        return provider;
    }

    @Override
    public PolicyProvider create(KeycloakSession session) {
        return provider;
    }

    @Override
    public PolicyRepresentation toRepresentation(Policy policy, AuthorizationProvider authorization) {
        PolicyRepresentation representation = new PolicyRepresentation();
        representation.setConfig(new HashMap<>(policy.getConfig()));
        return representation;
    }

    @Override
    public Class<PolicyRepresentation> getRepresentationType() {
        return PolicyRepresentation.class;
    }

    @Override
    public void onCreate(Policy policy, PolicyRepresentation representation, AuthorizationProvider authorization) {
        copyConfig(policy, representation);
    }

    @Override
    public void onUpdate(Policy policy, PolicyRepresentation representation, AuthorizationProvider authorization) {
        copyConfig(policy, representation);
    }

    @Override
    public void onImport(Policy policy, PolicyRepresentation representation, AuthorizationProvider authorization) {
        copyConfig(policy, representation);
    }

    /** Validates the representation's config strictly and stores a copy of it on the policy. */
    static void copyConfig(Policy policy, PolicyRepresentation representation) {
        Map<String, String> config = representation.getConfig() == null ? new HashMap<>() : new HashMap<>(representation.getConfig());
        try {
            PolicyConfig.parse(config, true);
        } catch (InvalidConfigException e) {
            throw new ModelValidationException("claims-token policy '" + LogSafe.clip(representation.getName()) + "': " + e.getMessage());
        }
        policy.setConfig(config);
    }

    @Override
    public void init(Config.Scope config) {
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
    }

    @Override
    public void close() {
    }
}
