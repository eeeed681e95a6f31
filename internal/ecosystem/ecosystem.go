// Package ecosystem builds a wide ecosystem of organisations on one
// machine, for the federation test (e2e/federation) and make
// demo-federation: each organisation (foo.example, bar.example, ...) gets
// its own network namespace and address, its own Keycloak (any Keycloak 26
// version, importing the one organisation bundle
// keycloak/realms/org/organisation-realm.json for its domain), Claims Provider and Resource
// Server, and an HTTPS front for its domain and host names. Certificates
// come from a CA the harness makes (internal/testca): Keycloak trusts it
// through --truststore-paths, the Go services through SSL_CERT_FILE, the
// client through --ca-file. No organisation is configured with another's
// issuer, keys, clients or URLs: they find each other by WebFinger and
// discovery only, as in a real ecosystem. The only thing they share is the
// hosts file that stands in for DNS.
//
// It needs root and iproute2 (Available says why not). Everything it
// starts and makes (processes, namespaces, hosts files) is removed by Close,
// also after a failed start.
package ecosystem

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/umawide/umawide/internal/stack"
	"github.com/umawide/umawide/internal/testca"
	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/keycloak/launcher"
)

// Ports inside an organisation's namespace. The front serves 443.
const (
	KeycloakPort = 8443 // Keycloak's HTTPS: https://sso.<domain>:8443
	kcHTTPPort   = 8080 // Keycloak's plain HTTP, inside the namespace only
	kcManagePort = 9000
	cpPort       = 9081
	rsPort       = 9082
)

// Person is a user of an organisation's realm.
type Person struct {
	Username, Password string
}

// OrgSpec says what to build for one organisation.
type OrgSpec struct {
	// Domain, e.g. foo.example; its first label names the realm and the
	// namespace.
	Domain string
	// KeycloakVersion; default launcher.Version.
	KeycloakVersion string
	// People: users with verified addresses <username>@<domain>.
	People []Person
	// Backend, when set, makes a rogue organisation with no Keycloak or
	// services of its own: its front passes every request for its domain
	// and cp.<domain> to Backend (a test Claims Provider on this host).
	Backend *url.URL
}

// Options of New.
type Options struct {
	// Dir holds certificates, realm files, logs and state; required.
	Dir string
	// Bin are the built programs: claims-provider, resource-server,
	// rqp-client (stack.Build).
	Bin map[string]string
	// MaxHeap of each Keycloak; default the launcher's.
	MaxHeap string
	Logger  *slog.Logger
}

// Ecosystem is the running set of organisations.
type Ecosystem struct {
	CA *testca.CA
	// CAFile is the CA's certificate (PEM), the one trust anchor of all.
	CAFile string
	Orgs   map[string]*Org // by domain
	opts   Options
	net    *network
	mu     sync.Mutex
	closes []func()
}

// Org is one running organisation.
type Org struct {
	Domain, Label, NS, IP string
	KeycloakVersion       string
	People                []Person
	KC                    *launcher.Keycloak
	CP, RS                *stack.Service
	Dir                   string
	// RQPClientSecret is the secret of the organisation's own rqp-client
	// at its own realm (step 3), the one credential its members' client
	// is configured with.
	RQPClientSecret string
	front           *front
	rogue           bool
}

// Realm is the organisation's realm name.
func (o *Org) Realm() string { return o.Label }

// Issuer of the organisation's realm (its AuthN server and UMA AS).
func (o *Org) Issuer() string {
	return "https://sso." + o.Domain + ":" + strconv.Itoa(KeycloakPort) + "/realms/" + o.Realm()
}

// CPURL is the Claims Provider's public URL (its issuer).
func (o *Org) CPURL() string { return "https://cp." + o.Domain }

// RSURL is the Resource Server's public URL.
func (o *Org) RSURL() string { return "https://rs." + o.Domain }

// Address of one of its people.
func (o *Org) Address(username string) string { return username + "@" + o.Domain }

// Incoming is a person's Incoming URL.
func (o *Org) Incoming(username string) string { return o.RSURL() + uma.IncomingPath(username) }

// SetDiscoveryDown makes the domain's discovery document answer 503 (down)
// or serve again.
func (o *Org) SetDiscoveryDown(down bool) { o.front.discoveryDown.Store(down) }

// hostNames are the organisation's names, all on its address.
func (o *Org) hostNames() []string {
	return []string{o.Domain, "sso." + o.Domain, "cp." + o.Domain, "rs." + o.Domain}
}

// New builds the network and starts every organisation, the Keycloaks in
// parallel. On error everything started is stopped again.
func New(ctx context.Context, opts Options, specs ...OrgSpec) (_ *Ecosystem, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	e := &Ecosystem{Orgs: map[string]*Org{}, opts: opts}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.CA, err = testca.New("umawide ecosystem test CA"); err != nil {
		return nil, err
	}
	e.CAFile = filepath.Join(opts.Dir, "ca.pem")
	if err := os.WriteFile(e.CAFile, e.CA.CertPEM, 0o644); err != nil {
		return nil, err
	}
	id := randomHex(2)
	if e.net, err = newNetwork(id); err != nil {
		return nil, err
	}
	e.onClose(func() {
		if err := e.net.close(); err != nil {
			opts.Logger.Error("removing the ecosystem's namespaces", "err", err)
		}
	})
	var hosts []string
	for _, s := range specs {
		label, _, _ := strings.Cut(s.Domain, ".")
		o := &Org{Domain: s.Domain, Label: label, KeycloakVersion: s.KeycloakVersion, People: s.People,
			Dir: filepath.Join(opts.Dir, s.Domain), RQPClientSecret: randomHex(16), rogue: s.Backend != nil}
		if o.KeycloakVersion == "" {
			o.KeycloakVersion = launcher.Version
		}
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return nil, err
		}
		if o.NS, o.IP, err = e.net.addNS(label); err != nil {
			return nil, err
		}
		hosts = append(hosts, o.IP+" "+strings.Join(o.hostNames(), " "))
		e.Orgs[s.Domain] = o
	}
	if err := e.net.writeHosts(hosts); err != nil {
		return nil, err
	}
	// Keycloaks first, in parallel (the slow part); then each
	// organisation's services and front.
	var wg sync.WaitGroup
	errs := make([]error, len(specs))
	for i, s := range specs {
		if s.Backend != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.startKeycloak(ctx, e.Orgs[s.Domain])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, s := range specs {
		if err := e.startServices(ctx, e.Orgs[s.Domain], s.Backend); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *Ecosystem) onClose(f func()) {
	e.mu.Lock()
	e.closes = append(e.closes, f)
	e.mu.Unlock()
}

// Close stops everything in the reverse order of its start and removes the
// namespaces; safe to call more than once.
func (e *Ecosystem) Close() {
	e.mu.Lock()
	closes := e.closes
	e.closes = nil
	e.mu.Unlock()
	for i := len(closes) - 1; i >= 0; i-- {
		closes[i]()
	}
}

// orgRealmFile writes the organisation bundle for o
// (launcher.OrganisationRealmJSON: placeholders expanded, o's people added)
// where its Keycloak imports it at start.
func (e *Ecosystem) orgRealmFile(o *Org) (string, error) {
	users := make([]launcher.OrganisationUser, 0, len(o.People))
	for _, p := range o.People {
		users = append(users, launcher.OrganisationUser{Username: p.Username, Password: p.Password})
	}
	data, err := launcher.OrganisationRealmJSON(launcher.Organisation{
		Realm: o.Realm(), Domain: o.Domain, Users: users,
		Vars: map[string]string{
			"UMAWIDE_SSL_REQUIRED":           "all",
			"UMAWIDE_RQP_CLIENT_SECRET":      o.RQPClientSecret,
			"UMAWIDE_CLAIMS_PROVIDER_SECRET": o.secret("claims-provider"),
			"UMAWIDE_RESOURCE_SERVER_SECRET": o.secret("resource-server"),
		},
	})
	if err != nil {
		return "", fmt.Errorf("ecosystem: %s: %w", o.Domain, err)
	}
	dir := filepath.Join(o.Dir, "realms")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, o.Label+"-realm.json"), data, 0o600)
}

// Client is an HTTP client that reaches the ecosystem from inside the
// namespace of org (a domain): names resolve as the hosts file says,
// certificates are checked against the test CA.
func (e *Ecosystem) Client(from string) *http.Client {
	o := e.Orgs[from]
	names := map[string]string{}
	for _, x := range e.Orgs {
		for _, h := range x.hostNames() {
			names[h] = x.IP
		}
	}
	dial := dialer(o.NS)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: e.CA.Pool(), MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if ip, ok := names[strings.ToLower(host)]; ok {
				host = ip
			}
			return dial(ctx, network, net.JoinHostPort(host, port))
		},
		ResponseHeaderTimeout: 2 * time.Minute,
	}
	return &http.Client{Transport: tr, Timeout: 3 * time.Minute}
}

// Exec is the command prefix that runs a program inside org's namespace
// (with the ecosystem's hosts file).
func (e *Ecosystem) Exec(domain string) []string {
	return []string{"ip", "netns", "exec", e.Orgs[domain].NS}
}

func (e *Ecosystem) startKeycloak(ctx context.Context, o *Org) error {
	cert, err := e.CA.Issue(append(o.hostNames(), o.IP)...)
	if err != nil {
		return err
	}
	certFile, keyFile, err := cert.WriteFiles(o.Dir, "keycloak-")
	if err != nil {
		return err
	}
	realmDir, err := e.orgRealmFile(o)
	if err != nil {
		return err
	}
	kc, err := launcher.Start(ctx, launcher.Options{
		Mode:           launcher.ModeProcess,
		Version:        o.KeycloakVersion,
		Wrap:           e.Exec(o.Domain),
		BindHost:       "0.0.0.0",
		HTTPPort:       kcHTTPPort,
		ManagementPort: kcManagePort,
		RealmDir:       realmDir,
		MaxHeap:        e.opts.MaxHeap,
		PublicURL:      "https://sso." + o.Domain + ":" + strconv.Itoa(KeycloakPort),
		ManagementURL:  "https://" + o.IP + ":" + strconv.Itoa(kcManagePort),
		ReadyClient:    e.Client(o.Domain),
		LogPath:        filepath.Join(o.Dir, "keycloak.log"),
		StartTimeout:   20 * time.Minute,
		Logger:         e.opts.Logger.With("org", o.Domain),
		ExtraArgs: []string{
			"--https-port=" + strconv.Itoa(KeycloakPort),
			"--https-certificate-file=" + certFile,
			"--https-certificate-key-file=" + keyFile,
			"--truststore-paths=" + e.CAFile,
			"--hostname=https://sso." + o.Domain + ":" + strconv.Itoa(KeycloakPort),
		},
	})
	if err != nil {
		return fmt.Errorf("ecosystem: %s: Keycloak %s: %w", o.Domain, o.KeycloakVersion, err)
	}
	o.KC = kc
	e.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = kc.Stop(ctx)
	})
	return nil
}

// secret is a per-run secret of one of the organisation's clients, known
// only to its Keycloak and its own service.
func (o *Org) secret(client string) string {
	return o.RQPClientSecret[:8] + "-" + client + "-" + o.RQPClientSecret[8:]
}

func (e *Ecosystem) startServices(ctx context.Context, o *Org, backend *url.URL) error {
	cert, err := e.CA.Issue(append(o.hostNames(), o.IP)...)
	if err != nil {
		return err
	}
	tc, err := cert.TLS()
	if err != nil {
		return err
	}
	if backend != nil {
		// A rogue organisation: its front passes everything to the test
		// Claims Provider on this host.
		f, err := startFront(o.NS, o.IP, tc, []route{
			{host: o.Domain, prefix: uma.DiscoveryPath, target: backend},
			{host: "cp." + o.Domain, target: backend},
		}, (&net.Dialer{Timeout: 10 * time.Second}).DialContext)
		if err != nil {
			return err
		}
		o.front = f
		e.onClose(f.close)
		return nil
	}
	wrap := func(spec stack.Spec) stack.Spec {
		spec.Args = append(append(e.Exec(o.Domain)[1:], spec.Binary), spec.Args...)
		spec.Binary = "ip"
		spec.Env = append(spec.Env, "SSL_CERT_FILE="+e.CAFile)
		spec.ReadyClient = e.Client(o.Domain)
		spec.ReadyTimeout = 2 * time.Minute
		return spec
	}
	kcURL := o.KC.BaseURL
	cpAddr := net.JoinHostPort(o.IP, strconv.Itoa(cpPort))
	cp, err := stack.Start(ctx, wrap(stack.ClaimsProvider{
		Binary: e.opts.Bin["claims-provider"], Listen: cpAddr, Issuer: o.CPURL(),
		KeycloakURL: kcURL, Realm: o.Realm(), Secret: o.secret("claims-provider"),
		KeyDir: filepath.Join(o.Dir, "claims-provider-keys"), Domains: []string{o.Domain},
		LogPath: filepath.Join(o.Dir, "claims-provider.log"),
	}.Spec()))
	if err != nil {
		return fmt.Errorf("ecosystem: %s: %w", o.Domain, err)
	}
	o.CP = cp
	e.onClose(func() { _ = cp.Stop(context.Background()) })
	rsAddr := net.JoinHostPort(o.IP, strconv.Itoa(rsPort))
	rs, err := stack.Start(ctx, wrap(stack.ResourceServer{
		Binary: e.opts.Bin["resource-server"], Listen: rsAddr, PublicURL: o.RSURL(),
		KeycloakURL: kcURL, Realm: o.Realm(), Secret: o.secret("resource-server"),
		DB: filepath.Join(o.Dir, "resource-server.db"), Domain: o.Domain,
		LogPath: filepath.Join(o.Dir, "resource-server.log"),
	}.Spec()))
	if err != nil {
		return fmt.Errorf("ecosystem: %s: %w", o.Domain, err)
	}
	o.RS = rs
	e.onClose(func() { _ = rs.Stop(context.Background()) })
	cpURL, rsURL := &url.URL{Scheme: "http", Host: cpAddr}, &url.URL{Scheme: "http", Host: rsAddr}
	f, err := startFront(o.NS, o.IP, tc, []route{
		{host: o.Domain, prefix: uma.WebFingerPath, target: rsURL},
		{host: o.Domain, prefix: uma.DiscoveryPath, target: cpURL},
		{host: "cp." + o.Domain, target: cpURL},
		{host: "rs." + o.Domain, target: rsURL},
	}, dialer(o.NS))
	if err != nil {
		return err
	}
	o.front = f
	e.onClose(f.close)
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// PushCommand is `rqp-client push` run by a member of the organisation
// from, inside its namespace, configured as its own organisation would
// configure it and nothing more: its realm's issuer and its rqp-client
// secret (in a 0600 file), the CA, a registrations folder of its own. The
// recipient's organisation is found from the address to alone.
func (e *Ecosystem) PushCommand(ctx context.Context, from, username, to, file string, extra ...string) (*exec.Cmd, error) {
	o := e.Orgs[from]
	secretFile := filepath.Join(o.Dir, "rqp-client-secret")
	if err := os.WriteFile(secretFile, []byte(o.RQPClientSecret), 0o600); err != nil {
		return nil, err
	}
	args := append([]string{"push", "--to", to, "--email", o.Address(username),
		"--authn-issuer", o.Issuer(), "--authn-client-id", "rqp-client", "--authn-client-secret-file", secretFile,
		"--ca-file", e.CAFile, "--registrations-dir", filepath.Join(o.Dir, "registrations"),
	}, extra...)
	return e.command(ctx, from, nil, append(args, file)...), nil
}

// InboxCommand is `rqp-client inbox` of a person of domain, logging in at
// their own realm (the password goes through the environment).
func (e *Ecosystem) InboxCommand(ctx context.Context, domain string, p Person, extra ...string) *exec.Cmd {
	o := e.Orgs[domain]
	args := append([]string{"inbox", "--incoming", o.Incoming(p.Username), "--issuer", o.Issuer(), "--login-user", p.Username}, extra...)
	return e.command(ctx, domain, []string{"SSL_CERT_FILE=" + e.CAFile, "RQP_CLIENT_INBOX_LOGIN_PASSWORD=" + p.Password}, args...)
}

// command runs rqp-client inside domain's namespace, without the caller's
// RQP_CLIENT_* settings.
func (e *Ecosystem) command(ctx context.Context, domain string, env []string, args ...string) *exec.Cmd {
	argv := append(append(e.Exec(domain), e.opts.Bin["rqp-client"]), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RQP_CLIENT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}
