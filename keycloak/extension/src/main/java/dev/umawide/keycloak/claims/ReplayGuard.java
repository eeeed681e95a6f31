package dev.umawide.keycloak.claims;

import java.nio.charset.StandardCharsets;
import java.util.Set;

/**
 * Single use of jtis and tickets through Keycloak's cluster-wide single-use store, made
 * idempotent within one request: a policy may be evaluated several times per token request
 * (one per permission), and a key this very request consumed is not a replay.
 */
final class ReplayGuard {

    /** The single-use store: true when the key was absent and is now recorded for the lifespan. */
    interface Store {
        boolean putIfAbsent(String key, long lifespanSeconds);
    }

    static final String PREFIX = "umawide:claims-token:";

    private final Store store;
    private final Set<String> consumedByThisRequest;

    ReplayGuard(Store store, Set<String> consumedByThisRequest) {
        this.store = store;
        this.consumedByThisRequest = consumedByThisRequest;
    }

    /** True when the key is used for the first time (or was consumed earlier in this same request). */
    boolean firstUse(String key, long lifespanSeconds) {
        if (consumedByThisRequest.contains(key)) {
            return true;
        }
        if (store.putIfAbsent(key, Math.max(1L, lifespanSeconds))) {
            consumedByThisRequest.add(key);
            return true;
        }
        return false;
    }

    static String jtiKey(String realmId, String issuer, String jti) {
        byte[] id = (issuer + "\u0000" + jti).getBytes(StandardCharsets.UTF_8);
        return PREFIX + "jti:" + realmId + ":" + Base64Url.encodeNoPad(Base64Url.sha256(id));
    }

    /** {@code ticketIdentity}: {@link Tickets#identity}, the same for every spelling of one ticket. */
    static String ticketKey(String realmId, String ticketIdentity) {
        return PREFIX + "ticket-id:" + realmId + ":" + ticketIdentity;
    }
}
