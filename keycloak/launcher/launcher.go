package launcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is the pinned Keycloak version: the Maven distribution, the container
// image and the extension's SPI artifacts all use it.
const Version = "26.5.6"

// Mode says how a Keycloak was obtained.
type Mode string

const (
	ModeExternal Mode = "external" // KEYCLOAK_URL: somebody else's server
	ModeDocker   Mode = "docker"   // testcontainers-go
	ModeProcess  Mode = "process"  // the Maven distribution as a child process
)

// Default admin credentials of a Keycloak this package starts.
const (
	DefaultAdminUser     = "admin"
	DefaultAdminPassword = "admin"
)

// Options configure Start. The zero value starts Keycloak with the repository's
// realm files and built providers on free ports.
type Options struct {
	// Mode forces a mode; empty means UMAWIDE_KEYCLOAK_MODE, then automatic.
	Mode Mode
	// RealmDir holds the realm files to import; default <repo>/keycloak/realms.
	RealmDir string
	// Providers are provider JARs to load; nil means DefaultProviders(repo),
	// which builds the extension with Maven when its JAR is missing or stale.
	Providers []string
	// Env is passed to Keycloak: realm-file placeholders (${VAR:default}) and
	// KC_* options.
	Env map[string]string
	// HTTPPort and ManagementPort; 0 picks free ports.
	HTTPPort, ManagementPort int
	// MaxHeap is the JVM's -Xmx; default "640m" (2-core, shared machines).
	MaxHeap string
	// JavaOpts are more JVM options, after kc.sh's defaults (which select
	// G1: switch with "-XX:-UseG1GC -XX:+UseParallelGC") and before
	// UMAWIDE_KEYCLOAK_JAVA_OPTS.
	JavaOpts string
	// TestClock lets a realm move the claims-token policy's quota clock
	// (realm attribute umawide.testClockOffsetSeconds; JVM option
	// TestClockJavaOpt): for the tests' Keycloak only, never a deployment.
	TestClock bool
	// LogPath receives Keycloak's output in process mode; default a file in
	// the instance folder.
	LogPath string
	// Detached leaves the process running after this Go process exits (make up);
	// Stop or StopDetached ends it.
	Detached bool
	// StartTimeout bounds download, start and readiness; default 10 minutes
	// (a start took 8.5 minutes on this 2-core machine under a load of 28).
	StartTimeout time.Duration
	// Logger receives progress; default slog.Default().
	Logger *slog.Logger
	// Cluster, in process mode, makes this Keycloak a node of a cluster on
	// an external PostgreSQL (see Cluster); nil: a lone server on dev-mem.
	Cluster *Cluster

	// The options below serve a Keycloak that is not on this host's
	// loopback (the federation test's organisations, each in its own
	// network namespace, on HTTPS); process mode only.

	// Version of the distribution; default the pinned Version.
	Version string
	// Wrap is a command that runs kc.sh (e.g. ip netns exec <ns>); it must
	// exec it, not fork.
	Wrap []string
	// BindHost is --http-host (both HTTP and HTTPS listeners); default
	// 127.0.0.1.
	BindHost string
	// ExtraArgs go to kc.sh after the launcher's own (--https-*,
	// --truststore-paths, --hostname...).
	ExtraArgs []string
	// PublicURL is Keycloak.BaseURL (e.g. https://sso.foo.example:8443);
	// default http://127.0.0.1:<HTTPPort>.
	PublicURL string
	// ManagementURL and ReadyClient: where and how readiness is asked
	// (GET <ManagementURL>/health/ready); defaults http://127.0.0.1:<port>
	// and a plain client.
	ManagementURL string
	ReadyClient   *http.Client
}

func (o Options) version() string { return or(o.Version, Version) }

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// TestClockJavaOpt enables the quota test clock of the claims-token policy
// (keycloak/extension QuotaClock.java).
const TestClockJavaOpt = "-Dumawide.test-clock=enabled"

// Keycloak is a running server.
type Keycloak struct {
	// BaseURL is where clients reach it, without a trailing slash.
	BaseURL string
	// ManagementURL serves /health/ready (empty for an external server).
	ManagementURL string
	// AdminUser and AdminPassword log into the master realm's admin-cli.
	AdminUser, AdminPassword string
	// Mode says how it was obtained.
	Mode Mode
	// PID is the process (and process group) id in process mode.
	PID int
	// InstanceDir is the private copy of the distribution in process mode.
	InstanceDir string
	// LogPath is where its output goes in process mode.
	LogPath string
	// TestClock says the quota test clock is enabled (Options.TestClock; for
	// an external server, KEYCLOAK_TEST_CLOCK=enabled says so).
	TestClock bool
	// Version is the Keycloak version it runs (for an external server,
	// KEYCLOAK_VERSION, else the pinned Version): tests of Keycloak's own
	// behaviour expect what that version does.
	Version string

	stop     func(context.Context) error
	stopOnce sync.Once
	stopErr  error
}

// AtLeast says whether its Version is version or later (dotted numbers;
// a part that is no number counts as 0).
func (k *Keycloak) AtLeast(version string) bool {
	have, want := strings.Split(or(k.Version, Version), "."), strings.Split(version, ".")
	for i := 0; i < len(want); i++ {
		var h int
		if i < len(have) {
			h, _ = strconv.Atoi(have[i])
		}
		w, _ := strconv.Atoi(want[i])
		if h != w {
			return h > w
		}
	}
	return true
}

// IssuerURL is the issuer of a realm as this server's clients see it.
func (k *Keycloak) IssuerURL(realm string) string {
	return k.BaseURL + "/realms/" + realm
}

// Stop ends a Keycloak this package started; for an external one it does nothing.
func (k *Keycloak) Stop(ctx context.Context) error {
	if k == nil {
		return nil
	}
	k.stopOnce.Do(func() {
		if k.stop != nil {
			k.stopErr = k.stop(ctx)
		}
	})
	return k.stopErr
}

// Start returns a running, ready Keycloak as the package documentation describes.
func Start(ctx context.Context, opts Options) (*Keycloak, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 10 * time.Minute
	}
	if opts.MaxHeap == "" {
		opts.MaxHeap = "640m"
	}
	if opts.TestClock {
		opts.JavaOpts = strings.TrimSpace(opts.JavaOpts + " " + TestClockJavaOpt)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	mode, err := chooseMode(ctx, opts.Mode)
	if err != nil {
		return nil, err
	}
	if mode == ModeExternal {
		return external(ctx)
	}
	kc, err := start(ctx, mode, opts)
	if kc != nil {
		kc.TestClock = opts.TestClock
	}
	return kc, err
}

func start(ctx context.Context, mode Mode, opts Options) (*Keycloak, error) {
	if mode != ModeProcess && (opts.Version != "" && opts.Version != Version || opts.Wrap != nil || opts.PublicURL != "") {
		return nil, fmt.Errorf("launcher: Version, Wrap and PublicURL need process mode, not %s", mode)
	}
	if opts.Cluster != nil && mode != ModeProcess {
		return nil, fmt.Errorf("launcher: a cluster node runs in process mode, not %s", mode)
	}
	if err := opts.Cluster.check(); err != nil {
		return nil, err
	}
	if err := opts.resolveFiles(); err != nil {
		return nil, err
	}
	switch mode {
	case ModeDocker:
		return startContainer(ctx, opts)
	case ModeProcess:
		return startProcess(ctx, opts)
	default:
		return nil, fmt.Errorf("launcher: unknown mode %q (want external, docker or process)", mode)
	}
}

// chooseMode applies the documented order: forced mode, KEYCLOAK_URL, a
// running Docker engine, the Maven distribution.
func chooseMode(ctx context.Context, forced Mode) (Mode, error) {
	if forced == "" {
		forced = Mode(os.Getenv("UMAWIDE_KEYCLOAK_MODE"))
	}
	switch forced {
	case ModeExternal, ModeDocker, ModeProcess:
		if forced == ModeDocker && !DockerAvailable(ctx) {
			return "", ErrNoDocker
		}
		return forced, nil
	case "":
	default:
		return "", fmt.Errorf("launcher: UMAWIDE_KEYCLOAK_MODE=%q: want external, docker or process", forced)
	}
	if os.Getenv("KEYCLOAK_URL") != "" {
		return ModeExternal, nil
	}
	if DockerAvailable(ctx) {
		return ModeDocker, nil
	}
	return ModeProcess, nil
}

// ErrNoDocker says the docker mode was asked for where no Docker engine answers.
var ErrNoDocker = errors.New("launcher: no Docker engine is running (testcontainers path unavailable)")

func (o *Options) resolveFiles() error {
	if o.RealmDir != "" && o.Providers != nil {
		return nil
	}
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	if o.RealmDir == "" {
		o.RealmDir = RealmDir(root)
	}
	if o.Providers == nil {
		o.Providers, err = DefaultProviders(context.Background(), root, o.Logger)
		if err != nil {
			return err
		}
	}
	return nil
}

func external(ctx context.Context) (*Keycloak, error) {
	base := strings.TrimRight(os.Getenv("KEYCLOAK_URL"), "/")
	if base == "" {
		return nil, errors.New("launcher: mode external needs KEYCLOAK_URL")
	}
	kc := &Keycloak{
		BaseURL:       base,
		ManagementURL: strings.TrimRight(os.Getenv("KEYCLOAK_MANAGEMENT_URL"), "/"),
		AdminUser:     envOr("KEYCLOAK_ADMIN_USER", DefaultAdminUser),
		AdminPassword: envOr("KEYCLOAK_ADMIN_PASSWORD", DefaultAdminPassword),
		Mode:          ModeExternal,
		TestClock:     os.Getenv("KEYCLOAK_TEST_CLOCK") == "enabled",
		Version:       envOr("KEYCLOAK_VERSION", Version),
	}
	// An external server must already be up: one look at the master realm.
	if err := waitHTTP(ctx, kc.BaseURL+"/realms/master", 0); err != nil {
		return nil, fmt.Errorf("launcher: KEYCLOAK_URL=%s does not answer: %w", base, err)
	}
	return kc, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// waitHTTP polls url until it answers 200 or ctx ends. A zero interval asks once.
func waitHTTP(ctx context.Context, url string, interval time.Duration) error {
	return waitHTTPWith(ctx, nil, url, interval)
}

// waitHTTPWith is waitHTTP with a client of the caller's (nil: a plain one).
func waitHTTPWith(ctx context.Context, client *http.Client, url string, interval time.Duration) error {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if interval == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
