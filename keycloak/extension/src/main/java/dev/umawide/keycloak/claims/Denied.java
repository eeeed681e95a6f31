package dev.umawide.keycloak.claims;

/**
 * A refusal with its {@link Reason}. Carries no stack trace (it is control flow, and cheap)
 * and no token material; the optional detail is sanitized for the log.
 */
public final class Denied extends Exception {
    private static final long serialVersionUID = 1L;

    private final Reason reason;
    private final String detail;

    public Denied(Reason reason) {
        this(reason, null);
    }

    public Denied(Reason reason, String detail) {
        super(reason.code(), null, false, false);
        this.reason = reason;
        this.detail = detail == null ? null : LogSafe.clip(detail);
    }

    public Reason reason() {
        return reason;
    }

    /** A short, log-safe detail (e.g. the untrusted issuer or the refused alg), or null. */
    public String detail() {
        return detail;
    }
}
