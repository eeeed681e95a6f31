package dev.umawide.keycloak.registration;

import java.lang.reflect.Field;

import org.jboss.logging.Logger;
import org.keycloak.representations.oidc.OIDCClientRepresentation;
import org.keycloak.services.clientregistration.oidc.OIDCClientRegistrationContext;

/**
 * The registration request as the client sent it. Keycloak hands registration policies only the
 * client representation it derived, whose flow flags cannot say whether {@code authorization_code}
 * was asked for (see {@link RegistrationRules}); the request itself is the private field
 * {@code oidcRep} of {@link OIDCClientRegistrationContext} (Keycloak 26), read here. Where a
 * Keycloak version has no such field, null: the policy then refuses every registration (deny by
 * default) and logs why once.
 */
final class OidcRequest {

    private static final Logger LOG = Logger.getLogger(OidcRequest.class);
    private static final Field FIELD = field();

    private OidcRequest() {
    }

    private static Field field() {
        try {
            Field f = OIDCClientRegistrationContext.class.getDeclaredField("oidcRep");
            if (!OIDCClientRepresentation.class.isAssignableFrom(f.getType())) {
                throw new NoSuchFieldException("oidcRep has type " + f.getType().getName());
            }
            f.setAccessible(true);
            return f;
        } catch (ReflectiveOperationException | RuntimeException e) {
            LOG.errorf("umawide-uma-ticket-only: cannot read the registration request on this Keycloak (%s); every anonymous registration is refused",
                    e.toString());
            return null;
        }
    }

    /** The request of an OIDC registration; null when it cannot be read. */
    static OIDCClientRepresentation of(OIDCClientRegistrationContext context) {
        if (FIELD == null) {
            return null;
        }
        try {
            return (OIDCClientRepresentation) FIELD.get(context);
        } catch (IllegalAccessException | RuntimeException e) {
            return null;
        }
    }
}
