package dev.umawide.keycloak.claims;

/** The policy configuration is not acceptable; the message names the key and never a secret. */
public final class InvalidConfigException extends Exception {
    private static final long serialVersionUID = 1L;

    InvalidConfigException(String message) {
        super(message);
    }
}
