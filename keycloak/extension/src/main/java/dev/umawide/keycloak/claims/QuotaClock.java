package dev.umawide.keycloak.claims;

import org.keycloak.models.RealmModel;

/**
 * The clock of the owner quota's UTC day: Keycloak's time, moved by a realm's test offset only
 * where the JVM runs with {@code -Dumawide.test-clock=enabled} (the test launcher sets it; no
 * deployment does). Keycloak's own {@code Time.setOffset} would move every token's clock on a
 * Keycloak that many tests share; this moves only the quota's day, only for one realm (each
 * test imports its own copy of realm bar).
 */
final class QuotaClock {

    static final String PROPERTY = "umawide.test-clock";
    static final String ENABLED = "enabled";
    /** Realm attribute: seconds added to the quota's clock, e.g. 86400 for "tomorrow". */
    static final String REALM_ATTRIBUTE = "umawide.testClockOffsetSeconds";
    /** Ten years: more is a typo. */
    static final long MAX_OFFSET = 10L * 366 * 86_400;

    private QuotaClock() {
    }

    static boolean enabled() {
        return ENABLED.equals(System.getProperty(PROPERTY));
    }

    static long now(RealmModel realm, long keycloakNowSeconds) {
        if (!enabled()) {
            return keycloakNowSeconds;
        }
        String v = realm.getAttribute(REALM_ATTRIBUTE);
        if (v == null || !v.matches("-?[0-9]{1,10}")) {
            return keycloakNowSeconds;
        }
        long offset = Long.parseLong(v);
        return Math.abs(offset) > MAX_OFFSET ? keycloakNowSeconds : keycloakNowSeconds + offset;
    }
}
