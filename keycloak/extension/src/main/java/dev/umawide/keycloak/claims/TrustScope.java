package dev.umawide.keycloak.claims;

/**
 * What a cached JWKS or discovery document is trusted for: one realm, one policy, and the
 * security settings under which it was fetched. The caches are shared by every realm and policy
 * of the Keycloak node; keying them by this scope means a lax policy ({@code allowInsecureUrls})
 * or another realm's policy never fills the cache that a strict policy then reads (issue 12,
 * finding 5).
 */
record TrustScope(String realmId, String policyId, boolean allowInsecureUrls, boolean allowPrivateAddresses) {
    TrustScope(String realmId, String policyId, boolean allowInsecureUrls) {
        this(realmId, policyId, allowInsecureUrls, false);
    }

    static TrustScope of(String realmId, String policyId, PolicyConfig config) {
        return new TrustScope(realmId, policyId, config.allowInsecureUrls(), config.allowPrivateAddresses());
    }
}
