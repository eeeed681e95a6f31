package uma

// The bodies and form fields that travel between the parts (docs/PROTOCOL.md),
// defined once: the Claims Provider and the Resource Server answer with these
// types, the RqP client, the tests and the bench read them.

// Form fields of the claims token request (seed step 5): POST
// ClaimsTokenPath, application/x-www-form-urlencoded, Bearer access token.
const (
	// FormTicketDigest is the ticket digest of sub-step 5.1 (TicketDigest).
	FormTicketDigest = "ticket_digest"
	// FormAudience is the owner's authorization server (the challenge's
	// as_uri): the claims token's aud.
	FormAudience = "audience"
	// FormEmail is the sender's address; optional when the access token is
	// the person's own.
	FormEmail = "email"
)

// Form fields of the UMA grant (seed step 7) at the owner's token endpoint,
// as UMA 2.0 Grant 3.3.1 and Keycloak name them.
const (
	FormGrantType        = "grant_type" // GrantTypeUMATicket
	FormTicket           = "ticket"
	FormClaimToken       = "claim_token"        // PushedClaims.Encode
	FormClaimTokenFormat = "claim_token_format" // ClaimTokenFormatJWT
	// FormSubmitRequest "false": a denial must not turn into a permission
	// request for the owner to approve.
	FormSubmitRequest = "submit_request"
)

// ClaimsTokenPath is where a Claims Provider issues claims tokens (seed
// step 5), relative to its issuer URL.
const ClaimsTokenPath = "/claims/token"

// ClaimsTokenResponse is the Claims Provider's answer of seed step 6.
type ClaimsTokenResponse struct {
	// ClaimsToken is the signed claims token (compact JWS).
	ClaimsToken string `json:"claims_token"`
	// TokenType is TokenTypeClaimsToken.
	TokenType string `json:"token_type"`
	// ExpiresIn is the claims token's life in seconds.
	ExpiresIn int64 `json:"expires_in"`
}

// ClaimsProviderDiscovery is a Claims Provider's discovery document, served
// at DiscoveryPath by the Claims Provider and, naming it, by a domain (8.5).
type ClaimsProviderDiscovery struct {
	Issuer                    string   `json:"issuer"`
	ClaimsEndpoint            string   `json:"claims_endpoint"`
	JWKSURI                   string   `json:"jwks_uri"`
	Domains                   []string `json:"domains"`
	SigningAlgValuesSupported []string `json:"signing_alg_values_supported"`
}

// Message is a stored message as the Resource Server shows it: the receipt
// of seed step 10 (201 Created) and each entry of a MessageList.
type Message struct {
	ID          string `json:"id"`
	Owner       string `json:"owner"` // the username it was posted to
	SenderEmail string `json:"sender_email"`
	SenderIss   string `json:"sender_iss"`
	SenderSub   string `json:"sender_sub,omitempty"`
	ContentType string `json:"content_type"`
	FileName    string `json:"file_name,omitempty"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`      // hex
	ReceivedAt  string `json:"received_at"` // RFC 3339
}

// MessageList is the answer of GET /incoming/{owner}/messages, newest first.
type MessageList struct {
	Messages []Message `json:"messages"`
}

// Owner rules of one Incoming (issue 15): who may push, enforced by the
// claims-token policy at the owner's AS after the sender is verified. The
// Resource Server serves them at RulesPath (GET, PUT; the owner's own token)
// and keeps them as attributes of the Incoming resource in Keycloak
// (the RulesAttr* names), where the policy reads them.
type OwnerRules struct {
	// Default is RulesAnyone, RulesListed or RulesNobody.
	Default string `json:"default"`
	// Allow and Deny are sender addresses (alice@foo.example) or domains
	// (foo.example, matching that domain only, not its subdomains),
	// normalised; Deny wins over Allow and over the default.
	Allow []string `json:"allow"`
	Deny  []string `json:"deny"`
	// Quota per sender and UTC day.
	Quota RulesQuota `json:"quota"`
}

// RulesQuota bounds what one sender may push into one Incoming per UTC day,
// counted at the grant (an RPT that is never used still counts); 0 is no
// limit.
type RulesQuota struct {
	MessagesPerDay int64 `json:"messages_per_day"`
	BytesPerDay    int64 `json:"bytes_per_day"`
}

// Values of OwnerRules.Default.
const (
	RulesAnyone = "anyone" // every verified sender not denied
	RulesListed = "listed" // only senders the allow list names
	RulesNobody = "nobody" // no one, the allow list included
)

// Names of the Incoming resource's attributes that hold its OwnerRules
// (one attribute value per list entry: Keycloak stores each value in a
// column of 255 characters). Absent attributes are the defaults: anyone,
// no lists, no quota, which is how an Incoming behaved before rules.
const (
	RulesAttrDefault        = "umawide.rules.default"
	RulesAttrAllow          = "umawide.rules.allow"
	RulesAttrDeny           = "umawide.rules.deny"
	RulesAttrMessagesPerDay = "umawide.rules.messages_per_day"
	RulesAttrBytesPerDay    = "umawide.rules.bytes_per_day"
	// RulesAttrPrefix starts every rules attribute name.
	RulesAttrPrefix = "umawide.rules."
)

// Reasons the AS gives a refused sender on the UMA grant's 403 in the
// RefusalHeader response header: only owner-rule refusals, never why a
// token was found forged (no oracle for attackers).
const (
	RefusalOwnerRefused  = "owner_refused"
	RefusalQuotaExceeded = "quota_exceeded"
	// RefusalHeader carries the reason on the token endpoint's 403.
	RefusalHeader = "Umawide-Refusal"
)

// RulesPath is the owner's rules of an Incoming on the Resource Server.
func RulesPath(owner string) string { return IncomingPath(owner) + "/rules" }
