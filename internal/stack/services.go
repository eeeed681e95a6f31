package stack

import (
	"path/filepath"
	"strings"
)

// ClaimsProvider configures a Claims Provider process (claims-provider -h
// documents every flag).
type ClaimsProvider struct {
	Binary      string
	Listen      string // host:port
	Issuer      string // its public URL; default http://<Listen>
	KeycloakURL string
	Realm       string // default foo
	Secret      string // client secret of claims-provider; default the demo realm's
	KeyDir      string
	Domains     []string // default foo.example
	Extra       []string // more flags
	LogPath     string
	Detached    bool
}

// Spec gives the process spec.
func (c ClaimsProvider) Spec() Spec {
	issuer := c.Issuer
	if issuer == "" {
		issuer = "http://" + c.Listen
	}
	args := []string{
		"-listen", c.Listen,
		"-issuer", issuer,
		"-keycloak-url", c.KeycloakURL,
		"-realm", or(c.Realm, "foo"),
		"-key-dir", c.KeyDir,
		"-domains", strings.Join(orList(c.Domains, "foo.example"), ","),
	}
	return Spec{
		Name:     "claims-provider",
		Binary:   c.Binary,
		Args:     append(args, c.Extra...),
		Env:      []string{"CLAIMS_PROVIDER_CLIENT_SECRET=" + or(c.Secret, "claims-provider-secret")},
		URL:      issuer,
		ReadyURL: "http://" + c.Listen + "/readyz",
		LogPath:  c.LogPath,
		Detached: c.Detached,
	}
}

// ResourceServer configures a Resource Server process (resource-server -h).
type ResourceServer struct {
	Binary string
	Listen string // host:port
	// PublicURL is the base URL clients push to (-public-url): the Incoming
	// URL tickets carry and RPTs must name; default http://<Listen>, the URL
	// the stack's clients use.
	PublicURL   string
	KeycloakURL string
	Realm       string // default bar
	// Domain is the organisation's email domain (-domain): WebFinger
	// answers for the realm's users at it; empty answers none.
	Domain      string
	Secret      string // client secret of resource-server; default the demo realm's
	DB          string // SQLite file, unless DatabaseURL is set
	DatabaseURL string
	Extra       []string
	LogPath     string
	Detached    bool
}

// Spec gives the process spec.
func (r ResourceServer) Spec() Spec {
	args := []string{
		"-listen", r.Listen,
		"-public-url", or(r.PublicURL, "http://"+r.Listen),
		"-keycloak-url", r.KeycloakURL,
		"-realm", or(r.Realm, "bar"),
	}
	if r.Domain != "" {
		args = append(args, "-domain", r.Domain)
	}
	if r.DatabaseURL != "" {
		args = append(args, "-database-url", r.DatabaseURL)
	} else {
		args = append(args, "-db", r.DB)
	}
	return Spec{
		Name:     "resource-server",
		Binary:   r.Binary,
		Args:     append(args, r.Extra...),
		Env:      []string{"RESOURCE_SERVER_CLIENT_SECRET=" + or(r.Secret, "resource-server-secret")},
		URL:      "http://" + r.Listen,
		ReadyURL: "http://" + r.Listen + "/readyz",
		LogPath:  r.LogPath,
		Detached: r.Detached,
	}
}

// Paths of the state a stack keeps in a folder.
func KeyDir(dir string) string        { return filepath.Join(dir, "claims-provider-keys") }
func DBPath(dir string) string        { return filepath.Join(dir, "resource-server.db") }
func LogPath(dir, name string) string { return filepath.Join(dir, "logs", name+".log") }

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func orList(v []string, def ...string) []string {
	if len(v) == 0 {
		return def
	}
	return v
}
