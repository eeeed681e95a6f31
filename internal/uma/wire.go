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
