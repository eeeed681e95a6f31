package dev.umawide.keycloak.claims;

import java.net.URI;
import java.util.Set;

/**
 * A Claims Provider this realm trusts: tokens with {@code iss} equal to {@code issuer} are
 * verified with the keys at {@code jwksUri} and are trusted for email addresses in {@code domains}.
 */
record ClaimsProviderEntry(String issuer, URI jwksUri, Set<String> domains) {
    ClaimsProviderEntry {
        domains = Set.copyOf(domains);
    }
}
