package rqp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/umawide/umawide/internal/uma"
)

// DynamicRegistration makes the client get its credentials at an
// authorization server it has no registration for, by OAuth 2.0 Dynamic
// Client Registration (RFC 7591) at the registration_endpoint of the
// server's UMA metadata. It keeps one registration per AS issuer in Dir,
// registers again when the AS no longer knows it (invalid_client, once per
// push) or its secret expired, and never sends one AS's credentials to
// another: the registration and token endpoints must lie under the issuer
// the challenge named, and a stored registration is used only for the
// issuer it was made at.
type DynamicRegistration struct {
	// Dir holds the registrations, one 0600 file per issuer (created 0700).
	Dir string
	// ClientName sent with the registration; default "umawide rqp-client".
	ClientName string
}

// Bounds of a registration.
const (
	maxRegistrationBytes = 64 << 10
	maxClientIDBytes     = 1024
	maxSecretBytes       = 4096
)

// storedRegistration is a registration as kept in Dir.
type storedRegistration struct {
	Issuer                  string    `json:"issuer"`
	ClientID                string    `json:"client_id"`
	ClientSecret            string    `json:"client_secret"`
	ClientSecretExpiresAt   int64     `json:"client_secret_expires_at,omitempty"`
	RegistrationClientURI   string    `json:"registration_client_uri,omitempty"`
	RegistrationAccessToken string    `json:"registration_access_token,omitempty"`
	RegisteredAt            time.Time `json:"registered_at"`
}

// usable: a secret that has not expired (with a minute to spare).
func (s *storedRegistration) usable() bool {
	return s.ClientID != "" && s.ClientSecret != "" &&
		(s.ClientSecretExpiresAt == 0 || time.Now().Add(time.Minute).Before(time.Unix(s.ClientSecretExpiresAt, 0)))
}

// registrar serialises registrations of one Client: concurrent pushes to a
// new AS register once.
type registrar struct {
	mu sync.Mutex
}

// RegistrationFile is where Dir keeps the registration at issuer.
func (d *DynamicRegistration) RegistrationFile(issuer string) string {
	sum := sha256.Sum256([]byte(strings.TrimSuffix(issuer, "/")))
	return filepath.Join(d.Dir, "as-"+hex.EncodeToString(sum[:16])+".json")
}

func (d *DynamicRegistration) load(issuer string) (*storedRegistration, error) {
	fh, err := os.Open(d.RegistrationFile(issuer))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := readLimited(fh, maxRegistrationBytes)
	if err != nil {
		return nil, err
	}
	var s storedRegistration
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", fh.Name(), err)
	}
	if !sameIssuer(s.Issuer, issuer) {
		// Never another AS's credentials, whatever the file says.
		return nil, nil
	}
	return &s, nil
}

// save writes the file under a temporary name, then renames it: a crash
// leaves the old registration or the new one, never half of one.
func (d *DynamicRegistration) save(s *storedRegistration) error {
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.Dir, ".as-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), d.RegistrationFile(s.Issuer))
}

func (d *DynamicRegistration) forget(issuer string) error {
	err := os.Remove(d.RegistrationFile(issuer))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// belongsTo reports whether endpoint is a URL of the server whose issuer is
// issuer: same scheme, host and port, and a path at or under the issuer's.
// Keycloak's endpoints are all under its realm's issuer URL.
func belongsTo(endpoint, issuer string) bool {
	e, err1 := url.Parse(endpoint)
	i, err2 := url.Parse(issuer)
	if err1 != nil || err2 != nil || e.User != nil || e.Fragment != "" {
		return false
	}
	if e.Scheme != i.Scheme || !strings.EqualFold(e.Host, i.Host) {
		return false
	}
	ip := strings.TrimSuffix(i.EscapedPath(), "/")
	ep := e.EscapedPath()
	return ep == ip || strings.HasPrefix(ep, ip+"/")
}

// asRegistration finds the client's registration at the AS of as_uri: a
// configured one, else (with DynamicRegistration) the stored one, else a
// new one. fresh says the registration was made just now. how describes it
// for the step's detail.
func (c *Client) asRegistration(ctx context.Context, asURI string, meta *serverMeta) (reg Registration, fresh bool, how string, se *StepError) {
	if r, ok := c.registration(asURI); ok {
		return r, false, "configured registration " + r.ClientID, nil
	}
	d := c.cfg.Register
	if d == nil {
		return Registration{}, false, "", &StepError{Step: StepGrant, Name: StepName(StepGrant), Service: ServiceAuthZ, Kind: KindConfig,
			URL: asURI, Attempt: attemptOf(ctx),
			Err: fmt.Errorf("the Resource Server names the authorization server %s, and this client has no registration there", asURI)}
	}
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	s, err := d.load(asURI)
	if err != nil {
		return Registration{}, false, "", &StepError{Step: StepGrant, Name: StepName(StepGrant), Service: ServiceClient, Kind: KindConfig,
			URL: asURI, Attempt: attemptOf(ctx), Err: fmt.Errorf("reading the registration at %s: %w", asURI, err)}
	}
	if s != nil && s.usable() {
		return Registration{Issuer: s.Issuer, ClientID: s.ClientID, ClientSecret: s.ClientSecret, dynamic: true}, false,
			"stored registration " + s.ClientID, nil
	}
	return c.register(ctx, asURI, meta)
}

// register is RFC 7591 at the AS of asURI; the caller holds c.reg.mu.
func (c *Client) register(ctx context.Context, asURI string, meta *serverMeta) (Registration, bool, string, *StepError) {
	d := c.cfg.Register
	ep := meta.RegistrationEndpoint
	fail := func(format string, args ...any) *StepError {
		return protocolError(ctx, StepGrant, ServiceAuthZ, ep, 0, format, args...)
	}
	if ep == "" {
		return Registration{}, false, "", &StepError{Step: StepGrant, Name: StepName(StepGrant), Service: ServiceAuthZ, Kind: KindConfig,
			URL: asURI, Attempt: attemptOf(ctx),
			Err: fmt.Errorf("the authorization server %s offers no dynamic client registration (no registration_endpoint) and this client has no registration there", asURI)}
	}
	if !belongsTo(ep, asURI) {
		return Registration{}, false, "", fail("the registration_endpoint %s is not a URL of the authorization server %s", clip(ep, 300), asURI)
	}
	name := d.ClientName
	if name == "" {
		name = "umawide rqp-client"
	}
	body, err := json.Marshal(uma.ClientRegistrationRequest{
		ClientName:              name,
		GrantTypes:              []string{uma.GrantTypeUMATicket},
		ResponseTypes:           []string{"none"},
		TokenEndpointAuthMethod: uma.TokenEndpointAuthClientSecretBasic,
	})
	if err != nil {
		return Registration{}, false, "", fail("%v", err)
	}
	req, err := http.NewRequest(http.MethodPost, ep, bytes.NewReader(body))
	if err != nil {
		return Registration{}, false, "", fail("%v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	a, se := c.do(ctx, StepGrant, ServiceAuthZ, req, c.cfg.Timeout, maxRegistrationBytes)
	if se != nil {
		return Registration{}, false, "", se
	}
	if a.resp.StatusCode != http.StatusCreated && a.resp.StatusCode != http.StatusOK {
		se := statusError(ctx, StepGrant, ServiceAuthZ, req, a)
		se.Err = fmt.Errorf("dynamic client registration at %s refused", asURI)
		if se.Kind == KindRefused {
			se.Kind = KindConfig
		}
		return Registration{}, false, "", se
	}
	var r uma.ClientRegistrationResponse
	if err := decodeJSON(a.body, &r); err != nil {
		return Registration{}, false, "", protocolError(ctx, StepGrant, ServiceAuthZ, ep, a.resp.StatusCode, "registration answer: %v", err)
	}
	if r.ClientID == "" || r.ClientSecret == "" || len(r.ClientID) > maxClientIDBytes || len(r.ClientSecret) > maxSecretBytes {
		return Registration{}, false, "", protocolError(ctx, StepGrant, ServiceAuthZ, ep, a.resp.StatusCode, "registration answer without a usable client_id and client_secret")
	}
	s := &storedRegistration{Issuer: strings.TrimSuffix(asURI, "/"), ClientID: r.ClientID, ClientSecret: r.ClientSecret,
		ClientSecretExpiresAt: r.ClientSecretExpiresAt, RegisteredAt: time.Now().UTC()}
	if r.RegistrationClientURI != "" && belongsTo(r.RegistrationClientURI, asURI) && len(r.RegistrationAccessToken) <= maxTokenBytes {
		s.RegistrationClientURI, s.RegistrationAccessToken = r.RegistrationClientURI, r.RegistrationAccessToken
	}
	if err := d.save(s); err != nil {
		return Registration{}, false, "", &StepError{Step: StepGrant, Name: StepName(StepGrant), Service: ServiceClient, Kind: KindConfig,
			URL: asURI, Attempt: attemptOf(ctx), Err: fmt.Errorf("keeping the registration at %s: %w", asURI, err)}
	}
	c.cfg.Logger.Debug("registered dynamically", "as", asURI, "client_id", r.ClientID)
	return Registration{Issuer: s.Issuer, ClientID: s.ClientID, ClientSecret: s.ClientSecret, dynamic: true}, true,
		"registered dynamically as " + r.ClientID, nil
}

// reregister drops a registration the AS refused (invalid_client) and
// makes a new one.
func (c *Client) reregister(ctx context.Context, asURI string, meta *serverMeta, refused Registration) (Registration, string, *StepError) {
	c.reg.mu.Lock()
	defer c.reg.mu.Unlock()
	// Another push may have renewed it meanwhile.
	if s, err := c.cfg.Register.load(asURI); err == nil && s != nil && s.usable() && s.ClientID != refused.ClientID {
		return Registration{Issuer: s.Issuer, ClientID: s.ClientID, ClientSecret: s.ClientSecret, dynamic: true}, "stored registration " + s.ClientID, nil
	}
	if err := c.cfg.Register.forget(asURI); err != nil {
		return Registration{}, "", &StepError{Step: StepGrant, Name: StepName(StepGrant), Service: ServiceClient, Kind: KindConfig,
			URL: asURI, Attempt: attemptOf(ctx), Err: fmt.Errorf("dropping the refused registration at %s: %w", asURI, err)}
	}
	reg, _, how, se := c.register(ctx, asURI, meta)
	return reg, how, se
}
