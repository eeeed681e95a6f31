package dev.umawide.keycloak.claims;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;
import org.keycloak.authorization.model.Policy;
import org.keycloak.authorization.policy.provider.PolicyProviderFactory;
import org.keycloak.models.ModelValidationException;
import org.keycloak.representations.idm.authorization.PolicyRepresentation;

class ClaimsTokenPolicyProviderFactoryTest {

    final ClaimsTokenPolicyProviderFactory factory = new ClaimsTokenPolicyProviderFactory();
    final AtomicReference<Map<String, String>> stored = new AtomicReference<>();

    @SuppressWarnings("unchecked")
    private Policy policy() {
        Map<String, java.util.function.Function<Object[], Object>> m = Stubs.methods();
        m.put("setConfig", a -> {
            stored.set((Map<String, String>) a[0]);
            return null;
        });
        m.put("getConfig", a -> stored.get());
        return Stubs.stub(Policy.class, m);
    }

    private static PolicyRepresentation rep(Map<String, String> config) {
        PolicyRepresentation r = new PolicyRepresentation();
        r.setName("claims token");
        r.setType("claims-token");
        r.setConfig(config);
        return r;
    }

    static final Map<String, String> GOOD = Map.of("claimsProviders", TokenFixture.PROVIDERS, "maxTokenLifetimeSeconds", "120");

    @Test
    void registeredAsPolicyTypeClaimsToken() {
        assertEquals("claims-token", factory.getId());
        boolean found = false;
        for (PolicyProviderFactory<?> f : ServiceLoader.load(PolicyProviderFactory.class)) {
            if (f instanceof ClaimsTokenPolicyProviderFactory) {
                found = true;
            }
        }
        assertTrue(found, "META-INF/services registers the factory");
        assertEquals(PolicyRepresentation.class, factory.getRepresentationType());
        assertSame(factory.create((org.keycloak.authorization.AuthorizationProvider) null), factory.create((org.keycloak.models.KeycloakSession) null));
    }

    @Test
    void createUpdateImportCopyTheConfig() {
        Map<String, String> config = new HashMap<>(GOOD);
        factory.onCreate(policy(), rep(config), null);
        assertEquals(GOOD, stored.get());
        assertNotSame(config, stored.get(), "a copy");
        stored.set(null);
        factory.onUpdate(policy(), rep(config), null);
        assertEquals(GOOD, stored.get());
        stored.set(null);
        factory.onImport(policy(), rep(config), null);
        assertEquals(GOOD, stored.get());
    }

    @Test
    void invalidConfigIsRefusedWithA400Exception() {
        Map<String, String> bad = Map.of("allowedAlgorithms", "[\"none\"]");
        assertThrows(ModelValidationException.class, () -> factory.onCreate(policy(), rep(bad), null));
        assertThrows(ModelValidationException.class, () -> factory.onUpdate(policy(), rep(bad), null));
        assertThrows(ModelValidationException.class, () -> factory.onImport(policy(), rep(bad), null));
        ModelValidationException typo = assertThrows(ModelValidationException.class,
                () -> factory.onCreate(policy(), rep(Map.of("claimsProvider", "[]")), null));
        assertTrue(typo.getMessage().contains("claimsProvider"));
        assertNull(stored.get(), "nothing stored");
    }

    @Test
    void nullConfigMeansDefaults() {
        PolicyRepresentation r = rep(null);
        factory.onCreate(policy(), r, null);
        assertEquals(Map.of(), stored.get());
    }

    @Test
    void representationCarriesTheConfig() {
        stored.set(new HashMap<>(GOOD));
        PolicyRepresentation r = factory.toRepresentation(policy(), null);
        assertEquals(GOOD, r.getConfig());
    }
}
