package dev.umawide.keycloak.claims;

import java.util.Map;

/**
 * What one granted evaluation puts into the permission: the verified sender and the vetted
 * pushed values ({@code content_sha256}, {@code content_length}, {@code incoming_uri}, and where
 * well-formed {@code content_type}, {@code file_name}), one value each.
 */
record Grant(Sender sender, Map<String, String> vetted) {
}
