package uma

// OAuth 2.0 Dynamic Client Registration (RFC 7591): how the RqP client gets
// its credentials at an authorization server it has never met. It POSTs a
// ClientRegistrationRequest to the registration_endpoint of the server's
// metadata and gets a ClientRegistrationResponse (201). The registration
// grants nothing by itself: the AS bounds it to the uma-ticket grant and the
// claims token stays the authority.

// ClientRegistrationRequest is the client metadata sent (RFC 7591 2).
type ClientRegistrationRequest struct {
	ClientName              string   `json:"client_name,omitempty"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	SoftwareID              string   `json:"software_id,omitempty"`
}

// ClientRegistrationResponse is the AS's answer (RFC 7591 3.2.1, RFC 7592's
// management fields).
type ClientRegistrationResponse struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at,omitempty"`
	ClientSecretExpiresAt   int64  `json:"client_secret_expires_at"` // 0: never
	RegistrationClientURI   string `json:"registration_client_uri,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
}

// TokenEndpointAuthClientSecretBasic is the one method the RqP client uses.
const TokenEndpointAuthClientSecretBasic = "client_secret_basic"
