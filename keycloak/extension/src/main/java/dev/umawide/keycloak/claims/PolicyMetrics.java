package dev.umawide.keycloak.claims;

import java.util.concurrent.TimeUnit;

import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.Timer;

/**
 * The policy's own time per evaluation, by outcome, in Keycloak's metrics registry (Micrometer's
 * global registry, which Keycloak's {@code /metrics} on the management interface exposes as
 * {@code umawide_claims_token_policy_seconds_count} and {@code ..._sum} with the label
 * {@code outcome="grant"} or {@code "deny"}). {@code make bench} reads it so that a regression of
 * the policy's cost shows in every run. Without a registry (unit tests) recording is a no-op.
 */
final class PolicyMetrics {

    static final String NAME = "umawide.claims_token.policy";

    private static final Timer GRANT = timer("grant");
    private static final Timer DENY = timer("deny");

    private PolicyMetrics() {
    }

    private static Timer timer(String outcome) {
        try {
            return Timer.builder(NAME).description("claims-token policy: own time per evaluation").tag("outcome", outcome)
                    .register(Metrics.globalRegistry);
        } catch (RuntimeException | LinkageError e) {
            return null; // no Micrometer: nothing is recorded, the policy works the same
        }
    }

    static void record(boolean granted, long nanos) {
        Timer t = granted ? GRANT : DENY;
        if (t != null) {
            t.record(nanos, TimeUnit.NANOSECONDS);
        }
    }
}
