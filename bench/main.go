// Command bench measures the umawide push flow against the real stack and,
// in the same run, the stock Keycloak UMA baseline (`make bench`).
//
// It builds the services, starts Keycloak (keycloak/launcher: process mode,
// or KEYCLOAK_URL), imports two copies of realm bar (one whose create
// permission applies the claims-token policy trusting this run's Claims
// Provider, one applying the stock client policy), starts the Claims Provider
// and one Resource Server per copy as processes (internal/stack), then runs
// -n pushes of each variant at concurrency -c in alternating batches:
//
//   - ours: the rqp library in this process, steps 1-10;
//   - stock: the same ticket (1-2), the same uma-ticket grant (7-8) with the
//     sender pushed as unsigned claims and no Claims Provider, the same POST
//     (9-10).
//
// It reports flows/s, per-step latency, CPU seconds per component (Keycloak's
// process group, the Claims Provider, the Resource Server: /proc/<pid>/stat;
// the client: getrusage) and peak memory (VmHWM, maxrss), then runs the Go
// benchmarks of the hot paths, and writes a JSON file and a table. Targets
// are reported met or missed, never asserted.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/umawide/umawide/internal/stack"
	"github.com/umawide/umawide/keycloak/launcher"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// Demo secrets of the realm files (keycloak/realms).
const rqpSecret = "rqp-client-secret"

// rsSecret is the resource-server client's secret in the realm copies (the
// import placeholder's default): the key of grant_mac.
const rsSecret = "resource-server-secret"

type options struct {
	n, c, batch, warmup, size int
	out                       string
	workDir                   string
	keep                      bool
	kcMode                    string
	kcPID                     int
	kcHeap                    string
	kcJavaOpts                string
	cpAlg                     string
	rsFlags                   string
	cmpHeap, cmpJavaOpts      string
	kcEnv, cmpEnv             string
	goBench                   bool
	goBenchtime               string
	flows                     bool
	latencyN                  int
	profile                   bool
	profileSeconds            int
	profileDir                string
	largeSize                 int64
	largeOnly                 bool
	kcStartTimeout            time.Duration
}

func main() {
	var o options
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.IntVar(&o.n, "n", 500, "pushes per variant (measured)")
	fs.IntVar(&o.c, "c", 8, "concurrent pushes")
	fs.IntVar(&o.batch, "batch", 50, "pushes per batch; batches of the two variants alternate")
	fs.IntVar(&o.warmup, "warmup", 3000, "pushes per variant before measuring: Keycloak compiles the policy's code only after about 1,300 grants (JIT), and caches and connections warm up")
	fs.IntVar(&o.size, "size", 1024, "message size in bytes")
	fs.StringVar(&o.out, "out", "bench/results/latest.json", "JSON result file (relative to the repository root)")
	fs.StringVar(&o.workDir, "work-dir", "", "folder for binaries, logs, keys and databases (default a fresh one under .run/bench)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work folder (logs) after the run")
	fs.StringVar(&o.kcMode, "keycloak-mode", "", "external, docker or process (default: external when KEYCLOAK_URL is set, else process, so that Keycloak's CPU can be read)")
	fs.IntVar(&o.kcPID, "keycloak-pid", 0, "process group of an external Keycloak, to measure its CPU and memory")
	fs.StringVar(&o.kcHeap, "keycloak-heap", "", "Keycloak's -Xmx in process mode (default the launcher's)")
	fs.StringVar(&o.kcJavaOpts, "keycloak-java-opts", "", "more JVM options for Keycloak in process mode (UMAWIDE_KEYCLOAK_JAVA_OPTS)")
	fs.StringVar(&o.cmpHeap, "compare-keycloak-heap", "", "also run the flow against a second Keycloak with this -Xmx (variants ours_B and stock_B, alternating with the others)")
	fs.StringVar(&o.cmpJavaOpts, "compare-keycloak-java-opts", "", "also run the flow against a second Keycloak with these JVM options, e.g. \"-XX:-UseG1GC -XX:+UseParallelGC\" (variants ours_B and stock_B)")
	fs.StringVar(&o.kcEnv, "keycloak-env", "", "environment of Keycloak in process mode, NAME=value[,NAME=value] (KC_* options, e.g. KC_FEATURES_DISABLED=persistent-user-sessions)")
	fs.StringVar(&o.cmpEnv, "compare-keycloak-env", "", "also run the flow against a second Keycloak with this environment (as -keycloak-env; variants ours_B and stock_B)")
	fs.StringVar(&o.cpAlg, "claims-alg", "ES256", "the Claims Provider's signing algorithm")
	fs.StringVar(&o.rsFlags, "rs-flags", "", "more flags for both Resource Servers (space-separated)")
	fs.BoolVar(&o.goBench, "go-bench", true, "also run the Go benchmarks of the hot paths")
	fs.StringVar(&o.goBenchtime, "go-benchtime", "300ms", "-benchtime of the Go benchmarks")
	fs.BoolVar(&o.flows, "flows", true, "run the flows against the real stack (false: Go benchmarks only)")
	fs.IntVar(&o.latencyN, "latency-n", 200, "pushes per variant at concurrency 1 (warm, one push at a time: latency as a person feels it), alternating in batches; 0 skips")
	fs.BoolVar(&o.profile, "profile", true, "profile each variant for -profile-seconds after the measurements: Keycloak with Java Flight Recorder (jcmd), the Resource Server, the Claims Provider and the client with pprof")
	fs.IntVar(&o.profileSeconds, "profile-seconds", 30, "length of each variant's profile")
	fs.StringVar(&o.profileDir, "profile-dir", "bench/results/profile", "where the profiles, folded stacks and flame graphs go (relative to the repository root)")
	fs.Int64Var(&o.largeSize, "large-size", 1<<30, "bytes of the large-content run: one push of generated content through the whole flow against copying the same bytes on the same disk; 0 skips it")
	fs.DurationVar(&o.kcStartTimeout, "keycloak-start-timeout", 10*time.Minute, "how long Keycloak may take to start (download, build, readiness): a loaded machine needs more than the launcher's 5 minutes")
	fs.BoolVar(&o.largeOnly, "large-only", false, "run only the large-content run (no flows of -n, no Go benchmarks)")
	fs.Parse(os.Args[1:])
	if o.n < 1 || o.c < 1 || o.batch < 1 || o.size < 1 || o.warmup < 0 || o.latencyN < 0 || o.profileSeconds < 1 || o.largeSize < 0 {
		fmt.Fprintln(os.Stderr, "bench: -n, -c, -batch, -size and -profile-seconds must be positive, -latency-n and -large-size not negative")
		os.Exit(2)
	}
	if o.largeOnly {
		if o.largeSize == 0 {
			fmt.Fprintln(os.Stderr, "bench: -large-only with -large-size 0 runs nothing")
			os.Exit(2)
		}
		o.goBench = false
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	root, err := launcher.RepoRoot()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := &Result{StartedAt: time.Now().UTC(), Machine: describeMachine(), Config: RunConfig{
		Pushes: o.n, Concurrency: o.c, Batch: o.batch, Warmup: o.warmup, MessageBytes: o.size,
		KeycloakHeap: o.kcHeap, KeycloakOpts: o.kcJavaOpts, ClaimsAlg: o.cpAlg, KeycloakVer: launcher.Version,
		StoreBackend: "sqlite", ExtraRSFlags: o.rsFlags, KeycloakEnv: o.kcEnv,
	}}
	if out, err := exec.Command("java", "-version").CombinedOutput(); err == nil {
		r.Machine.Java = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	if out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
		r.Config.GitDescription = strings.TrimSpace(string(out))
	}
	if o.flows {
		if err := runFlows(ctx, o, root, log, r); err != nil {
			return err
		}
	}
	if o.goBench {
		r.Config.GoBenchtime = o.goBenchtime
		fmt.Println("\n== Go benchmarks of the hot paths")
		res, err := runGoBenchmarks(ctx, root, o.goBenchtime, os.Stdout)
		r.GoBenchmark = res
		if err != nil {
			r.Notes = append(r.Notes, "Go benchmarks: "+err.Error())
		}
	}
	var ours, stock *Variant
	for _, v := range r.Variants {
		switch v.Name {
		case "ours":
			ours = v
		case "stock":
			stock = v
		}
	}
	evaluate(r, ours, stock)
	r.Seconds = round3(time.Since(r.StartedAt).Seconds())
	printTable(os.Stdout, r)
	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nresults: %s\n", out)
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr() (string, error) {
	p, err := launcher.FreePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// env is one run's working folder, binaries and what to undo at the end.
type env struct {
	o       options
	dir     string
	bin     map[string]string
	log     *slog.Logger
	closers []func()
}

func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// deployment is one Keycloak with a Claims Provider, a Resource Server for
// a realm copy applying the claims-token policy and, optionally, one for a
// copy applying the stock policy.
type deployment struct {
	kc                      *launcher.Keycloak
	kcC, cpC, rsC, rsStockC component
	cpURL, ourTo, stockTo   string
	ourRealm, stockRealm    string
	rsPprof, rsStockPprof   string // the Resource Servers' profiling addresses (-profile)
	cpPprof                 string // the Claims Provider's (-profile)
}

// deploy starts a deployment; label ("" or "_B") names its components.
func (e *env) deploy(ctx context.Context, label, heap, javaOpts, kcEnv string, withStock bool) (*deployment, error) {
	mode := launcher.Mode(e.o.kcMode)
	if mode == "" {
		mode = launcher.ModeProcess
		if os.Getenv("KEYCLOAK_URL") != "" {
			mode = launcher.ModeExternal
		}
	}
	if e.o.profile {
		// Keycloak's request stacks run deeper than JFR's default of 64
		// frames: without this the samples lose the frames that say which
		// endpoint and which policy they belong to.
		javaOpts = strings.TrimSpace(javaOpts + " -XX:FlightRecorderOptions=stackdepth=1024")
	}
	e.log.Info("starting Keycloak", "mode", mode, "deployment", label, "heap", heap, "java_opts", javaOpts, "env", kcEnv)
	vars := map[string]string{}
	for _, kv := range strings.Split(kcEnv, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k != "" {
			vars[k] = v
		} else if strings.TrimSpace(kv) != "" {
			return nil, fmt.Errorf("Keycloak environment %q: want NAME=value", kv)
		}
	}
	kc, err := launcher.Start(ctx, launcher.Options{Mode: mode, MaxHeap: heap, JavaOpts: javaOpts, Env: vars, Logger: e.log, StartTimeout: e.o.kcStartTimeout,
		LogPath: filepath.Join(e.dir, "logs", "keycloak"+label+".log")})
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() {
		if err := kc.Stop(context.Background()); err != nil {
			e.log.Warn("stopping Keycloak", "err", err)
		}
	})
	d := &deployment{kc: kc, kcC: component{Name: compKeycloak + label, PID: kc.PID, Group: true}}
	if kc.Mode != launcher.ModeProcess {
		d.kcC.PID = e.o.kcPID
	}
	cpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	d.cpURL = "http://" + cpAddr
	suffix := randomHex(4)
	d.ourRealm, d.stockRealm = "bar-bench-"+suffix, "bar-bench-stock-"+suffix
	copies := []launcher.BarCopy{{Name: d.ourRealm, ClaimsProviderURL: d.cpURL}}
	if withStock {
		copies = append(copies, launcher.BarCopy{Name: d.stockRealm, Stock: true, ClaimsProviderURL: d.cpURL})
	}
	for _, c := range copies {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := kc.ImportBarCopy(ictx, c)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("importing realm %s: %w", c.Name, err)
		}
		name := c.Name
		e.closers = append(e.closers, func() {
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := kc.DeleteRealm(dctx, name); err != nil {
				e.log.Warn("deleting realm", "realm", name, "err", err)
			}
		})
	}
	start := func(spec stack.Spec) (component, error) {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		s, err := stack.Start(sctx, spec)
		if err != nil {
			return component{}, err
		}
		e.closers = append(e.closers, func() {
			if err := s.Stop(context.Background()); err != nil {
				e.log.Warn("stopping service", "name", s.Name, "err", err)
			}
		})
		return component{Name: spec.Name, PID: s.PID}, nil
	}
	cpExtra := []string{"-alg", e.o.cpAlg}
	if e.o.profile {
		if d.cpPprof, err = freeAddr(); err != nil {
			return nil, err
		}
		cpExtra = append(cpExtra, "-pprof-listen", d.cpPprof)
	}
	cpSpec := stack.ClaimsProvider{
		Binary: e.bin["claims-provider"], Listen: cpAddr, KeycloakURL: kc.BaseURL, Realm: "foo",
		KeyDir: filepath.Join(e.dir, "claims-provider-keys"+label), LogPath: stack.LogPath(e.dir, "claims-provider"+label),
		Extra: cpExtra,
	}.Spec()
	cpSpec.Name = compClaimsProvider + label
	if d.cpC, err = start(cpSpec); err != nil {
		return nil, err
	}
	startRS := func(name, realm string) (component, string, string, error) {
		addr, err := freeAddr()
		if err != nil {
			return component{}, "", "", err
		}
		extra := strings.Fields(e.o.rsFlags)
		pprofAddr := ""
		if e.o.profile {
			if pprofAddr, err = freeAddr(); err != nil {
				return component{}, "", "", err
			}
			extra = append(extra, "-pprof-listen", pprofAddr)
		}
		spec := stack.ResourceServer{
			Binary: e.bin["resource-server"], Listen: addr, KeycloakURL: kc.BaseURL, Realm: realm,
			DB: filepath.Join(e.dir, name+".db"), LogPath: stack.LogPath(e.dir, name), Extra: extra,
		}.Spec()
		spec.Name = name
		c, err := start(spec)
		return c, "http://" + addr + "/incoming/bob", pprofAddr, err
	}
	if d.rsC, d.ourTo, d.rsPprof, err = startRS(compResourceServer+label, d.ourRealm); err != nil {
		return nil, err
	}
	if withStock {
		if d.rsStockC, d.stockTo, d.rsStockPprof, err = startRS(compResourceServer+"_stock"+label, d.stockRealm); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// variantRun is a variant with what it runs on: its flow, the components
// whose CPU it is charged (by role), its Keycloak's management URL and its
// client's dial counter.
type variantRun struct {
	v     *Variant
	c1    *Variant // the same flow at concurrency 1
	flow  flow
	comps map[string]component
	mgmt  string
	dials *atomic.Int64
	// rsURL is the Resource Server's base URL (its /metrics, allocations).
	rsURL string
	// rsPprof is its profiling address, when it serves one; cpPprof the
	// Claims Provider's, for the variant that uses it.
	rsPprof, cpPprof string
}

// ourVariant is the umawide flow on deployment d.
func ourVariant(d *deployment, name, desc string) (*variantRun, error) {
	// The client counts its connects: connection reuse shows as few of them per flow.
	hc := rqp.DefaultHTTPClient()
	dials := countDials(hc)
	client, err := rqp.New(rqp.Config{
		AuthN:          rqp.AuthN{Issuer: d.kc.IssuerURL("foo"), ClientID: "rqp-client", ClientSecret: rqpSecret},
		ClaimsProvider: rqp.ClaimsProvider{URL: d.cpURL},
		Registrations:  []rqp.Registration{{Issuer: d.kc.IssuerURL(d.ourRealm), ClientID: "rqp-client", ClientSecret: rqpSecret}},
		HTTPClient:     hc,
	})
	if err != nil {
		return nil, err
	}
	return &variantRun{
		v:    &Variant{Name: name, Description: desc, cpu: map[string]time.Duration{}},
		flow: &ourFlow{client: client, to: d.ourTo},
		comps: map[string]component{compKeycloak: d.kcC, compClaimsProvider: d.cpC, compResourceServer: d.rsC,
			compClient: {Name: compClient, Self: true}},
		mgmt: d.kc.ManagementURL, dials: dials, rsURL: baseOf(d.ourTo), rsPprof: d.rsPprof, cpPprof: d.cpPprof,
	}, nil
}

// baseOf is scheme://host of an Incoming URL.
func baseOf(incoming string) string {
	i := strings.Index(incoming, "/incoming/")
	if i < 0 {
		return incoming
	}
	return incoming[:i]
}

// stockVariant is the baseline on deployment d.
func stockVariant(ctx context.Context, d *deployment, name string) (*variantRun, error) {
	hc := rqp.DefaultHTTPClient()
	dials := countDials(hc)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	f, err := newStockFlow(ctx, hc, d.stockTo, d.kc.IssuerURL(d.stockRealm), "rqp-client", rqpSecret, d.cpURL)
	if err != nil {
		return nil, err
	}
	return &variantRun{
		v: &Variant{Name: name, Description: "stock Keycloak UMA: ticket, uma-ticket grant with unsigned pushed claims (stock client policy), POST; no AuthN token, no Claims Provider",
			cpu: map[string]time.Duration{}},
		flow:  f,
		comps: map[string]component{compKeycloak: d.kcC, compResourceServer: d.rsStockC, compClient: {Name: compClient, Self: true}},
		mgmt:  d.kc.ManagementURL, dials: dials, rsURL: baseOf(d.stockTo), rsPprof: d.rsStockPprof,
	}, nil
}

// runFlows starts the stack, runs the variants and stops everything.
func runFlows(ctx context.Context, o options, root string, log *slog.Logger, r *Result) (err error) {
	e := &env{o: o, dir: o.workDir, log: log}
	if e.dir == "" {
		base := filepath.Join(root, ".run", "bench")
		if err := os.MkdirAll(base, 0o755); err != nil {
			return err
		}
		if e.dir, err = os.MkdirTemp(base, "run-"); err != nil {
			return err
		}
		if !o.keep {
			defer func() {
				if err == nil {
					os.RemoveAll(e.dir)
				} else {
					fmt.Fprintf(os.Stderr, "bench: logs kept in %s\n", e.dir)
				}
			}()
		}
	}
	defer e.close()
	log.Info("building the services", "dir", e.dir)
	if e.bin, err = stack.Build(ctx, filepath.Join(e.dir, "bin"), "claims-provider", "resource-server", "rqp-client"); err != nil {
		return err
	}
	a, err := e.deploy(ctx, "", o.kcHeap, o.kcJavaOpts, o.kcEnv, !o.largeOnly)
	if err != nil {
		return err
	}
	if o.largeOnly {
		r.Config.KeycloakMode = string(a.kc.Mode)
		runLarge(ctx, e, a, o, r)
		return nil
	}
	r.Config.KeycloakMode = string(a.kc.Mode)
	if r.Config.KeycloakHeap == "" && a.kc.Mode == launcher.ModeProcess {
		r.Config.KeycloakHeap = "640m (launcher default)"
	}
	ours, err := ourVariant(a, "ours", "umawide: rqp library, steps 1-10, claims-token policy, Claims Provider")
	if err != nil {
		return err
	}
	stock, err := stockVariant(ctx, a, "stock")
	if err != nil {
		return err
	}
	runs := []*variantRun{ours, stock}
	if o.cmpHeap != "" || o.cmpJavaOpts != "" || o.cmpEnv != "" {
		// A second deployment whose Keycloak differs only in its options:
		// both flows against both, alternating, so that noise hits both
		// alike and each Keycloak is busy half of the time (a Keycloak idle
		// longer than the other runs colder).
		b, err := e.deploy(ctx, "_B", o.cmpHeap, o.cmpJavaOpts, o.cmpEnv, true)
		if err != nil {
			return err
		}
		heapB := o.cmpHeap
		if heapB == "" {
			heapB = "launcher default"
		}
		ob, err := ourVariant(b, "ours_B", fmt.Sprintf("the umawide flow against a second Keycloak: heap %s, JVM options %q, environment %q", heapB, o.cmpJavaOpts, o.cmpEnv))
		if err != nil {
			return err
		}
		sb, err := stockVariant(ctx, b, "stock_B")
		if err != nil {
			return err
		}
		runs = append(runs, ob, sb)
		r.Config.CompareHeap, r.Config.CompareOpts, r.Config.CompareEnv = o.cmpHeap, o.cmpJavaOpts, o.cmpEnv
	}

	log.Info("warming up", "pushes_per_variant", o.warmup)
	var stopInit func(context.Context, string) error
	if o.profile {
		// Java Flight Recorder's first recording loads and compiles its own
		// code: a throwaway one during the warm-up keeps that out of the
		// profiles.
		stopInit = startJFR(ctx, javaPID(a.kcC.PID), "umawide-init")
		defer func() { _ = stopInit(ctx, "") }() // on an early return
	}
	for _, vr := range runs {
		if o.warmup == 0 {
			break
		}
		b := runBatch(ctx, vr.flow, o.warmup, o.c, o.size)
		if b.errors > 0 {
			return fmt.Errorf("warm-up of %s: %d of %d pushes failed, first: %s", vr.v.Name, b.errors, o.warmup, b.errSample[0])
		}
	}
	if stopInit != nil {
		if err := stopInit(ctx, ""); err != nil {
			log.Warn("JFR", "err", err)
		}
	}

	log.Info("measuring", "pushes_per_variant", o.n, "concurrency", o.c, "batch", o.batch)
	r.Load.Before = loadAvg()
	busy0, total0, _ := machineCPU()
	var loads []float64
	oursCPU, err := measure(ctx, runs, o.n, o.c, o.batch, o.size, func(vr *variantRun) *Variant { return vr.v }, &loads)
	if err != nil {
		return err
	}
	busy1, total1, _ := machineCPU()
	r.Load.After = loadAvg()
	if len(loads) > 0 {
		r.Load.Min1, r.Load.Max1 = loads[0], loads[0]
		sum := 0.0
		for _, l := range loads {
			r.Load.Min1, r.Load.Max1 = min(r.Load.Min1, l), max(r.Load.Max1, l)
			sum += l
		}
		r.Load.Mean1 = round3(sum / float64(len(loads)))
	}
	if total1 > total0 {
		r.Load.Busy = ratio(float64(busy1-busy0), float64(total1-total0))
		r.Load.Ours = ratio(float64(oursCPU), float64(total1-total0))
		r.Load.Others = round3(max(0, r.Load.Busy-r.Load.Ours))
	}
	if r.Load.Others > 0.1 || r.Load.Max1 > float64(r.Machine.NProc) {
		r.Load.Disclaim = fmt.Sprintf("other processes used %.0f%% of the machine's CPU during the run (load average up to %.1f on %d cores): absolute figures are inflated; the ratios, taken from alternating batches, less so",
			100*r.Load.Others, r.Load.Max1, r.Machine.NProc)
	}

	if o.latencyN > 0 {
		// Latency as a person feels it: one push at a time on a warm stack,
		// alternating batches as above.
		log.Info("measuring at concurrency 1", "pushes_per_variant", o.latencyN)
		for _, vr := range runs {
			vr.c1 = &Variant{Name: vr.v.Name, cpu: map[string]time.Duration{}}
		}
		var c1loads []float64
		if _, err := measure(ctx, runs, o.latencyN, 1, max(1, min(o.batch/2, o.latencyN)), o.size, func(vr *variantRun) *Variant { return vr.c1 }, &c1loads); err != nil {
			return err
		}
		for _, vr := range runs {
			vr.c1.finish()
			vr.v.AtConcurrency1 = vr.c1.concurrency1()
		}
	}

	r.CPJWKSFetches = jwksFetches(ctx, a.cpURL)

	if o.profile {
		dir := o.profileDir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
		log.Info("profiling each variant", "seconds", o.profileSeconds, "dir", dir)
		if r.Profiles, err = profileVariants(ctx, log, dir, []*variantRun{ours, stock}, a, o); err != nil {
			r.Notes = append(r.Notes, "profiles: "+err.Error())
		}
	}

	r.PeakMemMiB = map[string]float64{}
	for _, vr := range runs {
		for role, c := range vr.comps {
			if m, ok := c.peakMemory(); ok {
				name := c.Name
				if role == compClient {
					name = compClient
				}
				r.PeakMemMiB[name] = round3(float64(m) / (1 << 20))
			}
		}
	}
	for _, vr := range runs {
		vr.v.finish()
		r.Variants = append(r.Variants, vr.v)
	}
	if o.largeSize > 0 {
		runLarge(ctx, e, a, o, r)
	}
	return nil
}

// measure runs n pushes of every variant at concurrency c in alternating
// batches (each round starting with the next variant, so that load from
// elsewhere hits all alike), charging each batch to target(vr); it returns
// the CPU all components used and appends the load average after each batch
// to loads.
func measure(ctx context.Context, runs []*variantRun, n, c, batch, size int, target func(*variantRun) *Variant, loads *[]float64) (time.Duration, error) {
	var used time.Duration
	done := make([]int, len(runs))
	for round := 0; ; round++ {
		progressed := false
		for k := range runs {
			vi := (k + round) % len(runs)
			vr := runs[vi]
			m := min(batch, n-done[vi])
			if m <= 0 {
				continue
			}
			progressed = true
			if err := ctx.Err(); err != nil {
				return used, err
			}
			v := target(vr)
			mBefore := scrapeKeycloak(ctx, vr.mgmt)
			opens, dialed := tcpActiveOpens(), vr.dials.Load()
			allocBefore := vr.allocs(ctx)
			before := snapshot(vr.comps)
			b := runBatch(ctx, vr.flow, m, c, size)
			after := snapshot(vr.comps)
			v.addAllocs(allocBefore, vr.allocs(ctx))
			v.kc.add(mBefore, scrapeKeycloak(ctx, vr.mgmt))
			v.tcpOpens += tcpActiveOpens() - opens
			v.clientDials += vr.dials.Load() - dialed
			v.wall += b.wall
			v.samples = append(v.samples, b.samples...)
			v.Flows += len(b.samples)
			v.Errors += b.errors
			v.Retried += b.retried
			if len(v.ErrorSample) < 5 {
				v.ErrorSample = append(v.ErrorSample, b.errSample[:min(len(b.errSample), 5-len(v.ErrorSample))]...)
			}
			for role := range vr.comps {
				a, okA := after[role]
				bb, okB := before[role]
				if okA && okB {
					v.cpu[role] += a - bb
					used += a - bb
				}
			}
			done[vi] += m
			*loads = append(*loads, loadAvg()[0])
			fmt.Fprintf(os.Stderr, "  %-6s c=%-2d batch of %3d: %6.1f flows/s, %d errors\n", v.Name, c, m, float64(len(b.samples))/b.wall.Seconds(), b.errors)
		}
		if !progressed {
			return used, nil
		}
	}
}

// allocs reads the bytes and objects allocated so far by the client (this
// process) and the variant's Resource Server, by role.
func (vr *variantRun) allocs(ctx context.Context) map[string][2]float64 {
	out := map[string][2]float64{}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out[compClient] = [2]float64{float64(ms.TotalAlloc), float64(ms.Mallocs)}
	if vr.rsURL != "" {
		if b, n, ok := goAllocs(ctx, vr.rsURL); ok {
			out[compResourceServer] = [2]float64{b, n}
		}
	}
	return out
}

// snapshot reads the CPU time of each component, by role.
func snapshot(comps map[string]component) map[string]time.Duration {
	out := map[string]time.Duration{}
	for role, c := range comps {
		if d, ok := c.cpu(); ok {
			out[role] = d
		}
	}
	return out
}

type batchResult struct {
	samples   []sample
	errors    int
	retried   int
	errSample []string
	wall      time.Duration
}

// runBatch runs n pushes of f with c workers, each with a fresh random
// message.
func runBatch(ctx context.Context, f flow, n, c, size int) batchResult {
	var mu sync.Mutex
	var res batchResult
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range min(c, n) {
		wg.Go(func() {
			rng := mrand.NewChaCha8([32]byte(randBytes(32)))
			data := make([]byte, size)
			for range jobs {
				_, _ = rng.Read(data)
				s, err := f.push(ctx, data)
				mu.Lock()
				if err != nil {
					res.errors++
					if len(res.errSample) < 5 {
						res.errSample = append(res.errSample, err.Error())
					}
				} else {
					res.samples = append(res.samples, s)
					if s.attempts > 1 {
						res.retried++
					}
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	res.wall = time.Since(start)
	return res
}

// countDials counts the connections hc's transport opens.
func countDials(hc *http.Client) *atomic.Int64 {
	var n atomic.Int64
	t := hc.Transport.(*http.Transport)
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return dial(ctx, network, addr)
	}
	return &n
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
