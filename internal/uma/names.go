package uma

// Protocol names (shared/PROTOCOL.md).
const (
	// GrantTypeUMATicket is the UMA 2.0 grant (seed step 7).
	GrantTypeUMATicket = "urn:ietf:params:oauth:grant-type:uma-ticket"
	// ClaimTokenFormatJWT is the claim_token_format Keycloak expects for
	// pushed claims: despite the name, BASE64URL of a JSON object.
	ClaimTokenFormatJWT = "urn:ietf:params:oauth:token-type:jwt"
	// TokenTypeClaimsToken is the token_type of the Claims Provider's answer.
	TokenTypeClaimsToken = "urn:umawide:token-type:claims-token"
	// ResourceTypeIncoming is the type of every Incoming resource.
	ResourceTypeIncoming = "urn:umawide:resource-type:incoming"
	// ScopeCreate is the scope that lets a sender post into an Incoming.
	ScopeCreate = "create"
	// ClaimsProviderScope puts the Claims Provider into an access token's aud.
	ClaimsProviderScope = "claims-provider"
	// ClaimsProviderAudience is the Claims Provider's client id.
	ClaimsProviderAudience = "claims-provider"
	// DiscoveryPath is where a Claims Provider (and a domain) publishes its
	// discovery document.
	DiscoveryPath = "/.well-known/uma-wide-ecosystem-claims-provider"
)

// Pushed claims (seed step 7) and the claims the AS writes into the RPT's
// permission on grant (step 8).
const (
	ClaimClaimsToken   = "claims_token"
	ClaimContentSHA256 = "content_sha256"
	ClaimContentLength = "content_length"
	ClaimContentType   = "content_type"
	ClaimFileName      = "file_name"
	// ClaimIncomingURI is the canonical Incoming URL (CanonicalIncomingURL):
	// the Resource Server puts it on each permission ticket it asks for, the
	// client pushes the URL it POSTs to, and the policy grants only when
	// the two are equal and copies it into the permission.
	ClaimIncomingURI = "incoming_uri"
	// ClaimGrantID is the policy's random id of one grant, written into the
	// permission; the Resource Server keys single use on it. Never pushed.
	ClaimGrantID     = "grant_id"
	ClaimSenderEmail = "sender_email"
	ClaimSenderIss   = "sender_iss"
	ClaimSenderSub   = "sender_sub"
)

// IncomingResourceName is the protection-API name of an owner's Incoming.
func IncomingResourceName(owner string) string { return "incoming:" + owner }

// IncomingPath is the Resource Server path of an owner's Incoming.
func IncomingPath(owner string) string { return "/incoming/" + owner }
