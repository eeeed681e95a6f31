package dev.umawide.keycloak.claims;

import java.util.Locale;

/**
 * Why the claims-token policy denied a request. The code is what the deny log line carries;
 * it never contains token material.
 */
public enum Reason {
    /** The policy ran outside an HTTP request (nothing to read the ticket and claim_token from). */
    NO_REQUEST,
    /** The policy configuration could not be parsed. */
    CONFIG_INVALID,
    /** No {@code ticket} form field, or more than one, or an absurd one. */
    NO_TICKET,
    /** No {@code claim_token} form field, or more than one. */
    NO_CLAIM_TOKEN,
    /**
     * An {@code rpt} form field: an RPT upgrade. Keycloak merges the previous RPT's permissions,
     * claims included, into the evaluated ones, so the new RPT would carry claims of two pushes.
     */
    RPT_UPGRADE,
    /** The {@code claim_token} form field is longer than {@code maxClaimTokenLength}. */
    CLAIM_TOKEN_TOO_LARGE,
    /** The {@code claim_token} is not BASE64URL of a JSON object whose values are arrays of strings. */
    CLAIM_TOKEN_MALFORMED,
    /** The pushed claims carry no {@code claims_token}, or more than one. */
    NO_CLAIMS_TOKEN,
    /** The claims token is longer than {@code maxClaimsTokenLength}. */
    CLAIMS_TOKEN_TOO_LARGE,
    /** The claims token is not a well-formed compact JWS with JSON header and payload. */
    JWS_MALFORMED,
    /** The JWS {@code alg} is not in the allowlist (this covers none and every HMAC). */
    ALG_NOT_ALLOWED,
    /** The JWS header has no usable {@code kid}. */
    KID_MISSING,
    /** The {@code iss} is missing or is no trusted Claims Provider. */
    UNTRUSTED_ISSUER,
    /** Discovery of the Claims Provider for the email domain failed. */
    DISCOVERY_FAILED,
    /** The trusted issuer's JWKS could not be fetched or parsed. */
    JWKS_UNAVAILABLE,
    /** No key of the trusted issuer matches the {@code kid} and the key type of {@code alg}. */
    UNKNOWN_KID,
    /** The signature does not verify. */
    BAD_SIGNATURE,
    /** {@code aud} is not exactly this realm's issuer. */
    AUDIENCE_MISMATCH,
    /** {@code exp} is missing or not a number. */
    EXP_MISSING,
    /** {@code exp} is in the past (beyond the clock skew). */
    EXPIRED,
    /** {@code iat} is missing or not a number. */
    IAT_MISSING,
    /** {@code iat} is in the future beyond the clock skew. */
    IAT_IN_FUTURE,
    /** {@code nbf} is in the future beyond the clock skew. */
    NOT_YET_VALID,
    /** {@code exp - iat} is over {@code maxTokenLifetimeSeconds}, or negative. */
    LIFETIME_TOO_LONG,
    /** {@code jti} is missing, empty or over 256 characters. */
    JTI_MISSING,
    /** {@code sub} is missing or empty. */
    SUB_MISSING,
    /** {@code ticket_digest} does not equal BASE64URL-NOPAD(SHA-256(ticket)). */
    TICKET_DIGEST_MISMATCH,
    /** {@code email} is missing. */
    EMAIL_MISSING,
    /** {@code email} is not one address with exactly one {@code @} and a valid domain. */
    EMAIL_INVALID,
    /** {@code email_verified} is not the JSON value true. */
    EMAIL_NOT_VERIFIED,
    /** The email domain is not one the issuer is trusted for. */
    EMAIL_DOMAIN_NOT_TRUSTED,
    /** The email domain is in {@code blockedDomains}: refused whoever signed, nothing fetched. */
    EMAIL_DOMAIN_BLOCKED,
    /**
     * The email domain is pinned (listed in a {@code claimsProviders} entry) to another issuer: a
     * pinned domain is never looked up by discovery.
     */
    DOMAIN_PINNED,
    /** The {@code jti} was accepted before. */
    JTI_REPLAYED,
    /** The ticket was used for an RPT before. */
    TICKET_REUSED,
    /**
     * The permission's resource has {@code ownerManagedAccess} true: Keycloak would let owner-approved
     * or shared permissions on it skip this policy, so the honest path is refused too and the
     * misconfiguration shows at once.
     */
    OWNER_MANAGED_RESOURCE,
    /** The pushed claims carry no {@code incoming_uri}, or more than one value. */
    INCOMING_URI_MISSING,
    /** The pushed {@code incoming_uri} is not an absolute http(s) URI without user info, query or fragment, of at most 2048 characters. */
    INCOMING_URI_INVALID,
    /** The pushed {@code incoming_uri} differs from the one the Resource Server put into the ticket (or the ticket has none). */
    INCOMING_URI_MISMATCH,
    /** {@code content_sha256} or {@code content_length} is not pushed with exactly one well-formed value. */
    CONTENT_BINDING_MISSING,
    /**
     * The Resource Server's client has no secret to key {@code grant_mac} with (e.g. it
     * authenticates with a signed JWT): the Resource Server could not tell this policy's grants
     * from a road that skips it, so nothing is granted.
     */
    GRANT_KEY_MISSING,
    /**
     * The owner's rules refuse this verified sender (deny list, default {@code nobody}, or default
     * {@code listed} without an allow entry for the sender). Told to the client: see {@link #toClient()}.
     */
    OWNER_REFUSED,
    /** The sender's quota on this Incoming for this UTC day would be exceeded. Told to the client. */
    QUOTA_EXCEEDED,
    /** The Incoming's rules attributes are not valid rules (changed behind the Resource Server's back): nobody is admitted. */
    OWNER_RULES_INVALID,
    /** The quota counter of this sender and Incoming stayed locked (or the store failed): nothing is granted. */
    QUOTA_UNAVAILABLE,
    /** Anything unexpected: the policy denies rather than fail the request. */
    INTERNAL_ERROR;

    /**
     * Whether the client may be told this reason (header {@link OwnerRules#REFUSAL_HEADER} on the
     * token endpoint's 403): only the owner's decisions about a sender already verified. Why a token
     * failed verification is never told: it would be an oracle for forging one.
     */
    public boolean toClient() {
        return this == OWNER_REFUSED || this == QUOTA_EXCEEDED;
    }

    /** The code as logged, e.g. {@code bad_signature}. */
    public String code() {
        return name().toLowerCase(Locale.ROOT);
    }
}
