package dev.umawide.keycloak.claims;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.Timer;

/**
 * The policy's own time per evaluation, by outcome, in Keycloak's metrics registry (Micrometer's
 * global registry, which Keycloak's {@code /metrics} on the management interface exposes as
 * {@code umawide_claims_token_policy_seconds_count} and {@code ..._sum} with the label
 * {@code outcome="grant"} or {@code "deny"}, and the histogram {@code ..._bucket}). {@code make bench}
 * reads it so that a regression of the policy's cost shows in every run. Without a registry (unit tests) recording is a no-op.
 */
final class PolicyMetrics {

    static final String NAME = "umawide.claims_token.policy";

    /**
     * Histogram buckets ({@code ..._bucket{le=...}}): a median besides the mean, which one GC pause
     * or a thread that waited for a core moves. Fine where the target (0.3 ms) lies. A fixed
     * handful, so that recording stays a binary search and an increment.
     */
    static final Duration[] BUCKETS = {micros(100), micros(150), micros(200),
            micros(250), micros(300), micros(400), micros(500),
            micros(750), Duration.ofMillis(1), Duration.ofMillis(2), Duration.ofMillis(5), Duration.ofMillis(10),
            Duration.ofMillis(50)};

    private static Duration micros(long us) {
        return Duration.ofNanos(us * 1000);
    }

    private static final Timer GRANT = timer("grant");
    private static final Timer DENY = timer("deny");

    private PolicyMetrics() {
    }

    private static Timer timer(String outcome) {
        try {
            return Timer.builder(NAME).description("claims-token policy: own time per evaluation").tag("outcome", outcome)
                    .serviceLevelObjectives(BUCKETS).register(Metrics.globalRegistry);
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
