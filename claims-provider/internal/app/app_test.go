package app

import (
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	good := func() Config {
		c := Config{
			Listen: "127.0.0.1:0", Issuer: "https://cp.foo.example/", KeycloakURL: "https://kc.foo.example", Realm: "foo",
			ClientID: "claims-provider", ClientSecret: "x", Domains: []string{"foo.example"}, KeyDir: "k", Alg: "ES256",
		}
		c.Defaults()
		return c
	}
	c := good()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://cp.foo.example" || c.RealmIssuer != "https://kc.foo.example/realms/foo" || c.Audience != "claims-provider" {
		t.Fatalf("derived %+v", c)
	}
	for name, edit := range map[string]func(*Config){
		"issuer with query":      func(c *Config) { c.Issuer = "https://cp.example/?x" },
		"issuer not http":        func(c *Config) { c.Issuer = "ftp://cp.example" },
		"keycloak relative":      func(c *Config) { c.KeycloakURL = "/kc" },
		"realm with slash":       func(c *Config) { c.Realm = "foo/bar" },
		"no domains":             func(c *Config) { c.Domains = nil },
		"upper-case domain":      func(c *Config) { c.Domains = []string{"Foo.example"} },
		"domain with @":          func(c *Config) { c.Domains = []string{"a@foo.example"} },
		"alg HS256":              func(c *Config) { c.Alg = "HS256" },
		"lifetime 0.5s":          func(c *Config) { c.Lifetime = 500 * time.Millisecond },
		"lifetime 301s":          func(c *Config) { c.Lifetime = 301 * time.Second },
		"lifetime fractional":    func(c *Config) { c.Lifetime = 90500 * time.Millisecond },
		"grace under lifetime":   func(c *Config) { c.RotationGrace = time.Minute },
		"no key dir":             func(c *Config) { c.KeyDir = "" },
		"empty on-behalf client": func(c *Config) { c.OnBehalfClients = []string{""} },
	} {
		c := good()
		edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// New wires every part without contacting Keycloak; a bad key directory or
// configuration stops it.
func TestNew(t *testing.T) {
	cfg := Config{
		Listen: "127.0.0.1:0", Issuer: "http://127.0.0.1:1", KeycloakURL: "http://127.0.0.1:2", Realm: "foo",
		ClientID: "claims-provider", ClientSecret: "x", Domains: []string{"foo.example"},
		KeyDir: t.TempDir() + "/keys", Alg: "ES256",
	}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Keys.Current() == nil || a.Handler() == nil || a.Users == nil {
		t.Fatal("parts missing")
	}
	bad := cfg
	bad.ClientSecret = ""
	if _, err := New(bad, nil); err == nil {
		t.Fatal("no secret accepted")
	}
}
