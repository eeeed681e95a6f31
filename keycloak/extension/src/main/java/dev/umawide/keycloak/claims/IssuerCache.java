package dev.umawide.keycloak.claims;

import java.net.URI;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Keycloak's {@code Urls.realmIssuer} per (request base URI, realm name): the issuer is a pure
 * function of the two, but Keycloak computes it with a JAX-RS {@code UriBuilder} that reads the
 * resource class's annotations each time, about 8% of the policy's time in the profile of
 * docs/BENCHMARKS.md (issue 17). The base URI is part of the key because Keycloak derives it from
 * the request (its hostname settings, or the request's own host when the hostname is not fixed):
 * two requests may see two issuers. The request's host can be anything a client sends, so the
 * map is bounded (cleared when full: a lost entry only costs one computation).
 */
final class IssuerCache {

    /** The computation cached, {@code Urls::realmIssuer} in Keycloak. */
    interface Compute {
        String issuer(URI baseUri, String realmName);
    }

    private record Key(String baseUri, String realmName) {
    }

    private final Compute compute;
    private final int maxEntries;
    private final ConcurrentHashMap<Key, String> issuers = new ConcurrentHashMap<>();

    IssuerCache(Compute compute, int maxEntries) {
        this.compute = compute;
        this.maxEntries = maxEntries;
    }

    String issuer(URI baseUri, String realmName) {
        Key key = new Key(baseUri.toString(), realmName);
        String issuer = issuers.get(key);
        if (issuer == null) {
            issuer = compute.issuer(baseUri, realmName);
            if (issuers.size() >= maxEntries) {
                issuers.clear();
            }
            issuers.put(key, issuer);
        }
        return issuer;
    }

    int size() {
        return issuers.size();
    }
}
