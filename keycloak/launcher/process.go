package launcher

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/umawide/umawide/internal/logtail"
	"github.com/umawide/umawide/internal/procgroup"
)

// DefaultFeaturesDisabled is KC_FEATURES_DISABLED of a Keycloak started in
// process mode, unless KC_FEATURES_DISABLED or KC_FEATURES is set (in the
// environment or Options.Env) or UMAWIDE_KEYCLOAK_PERSISTENT_SESSIONS=true.
const DefaultFeaturesDisabled = "persistent-user-sessions"

// persistentSessionsOff says whether to add DefaultFeaturesDisabled.
func persistentSessionsOff(getenv func(string) string, env map[string]string) bool {
	for _, k := range []string{"KC_FEATURES_DISABLED", "KC_FEATURES"} {
		if getenv(k) != "" || env[k] != "" {
			return false
		}
	}
	return getenv("UMAWIDE_KEYCLOAK_PERSISTENT_SESSIONS") != "true"
}

// JVMMarker is a system property on every Keycloak JVM this package starts, so
// that a stray one can be found (pgrep -f umawide.launcher).
const JVMMarker = "-Dumawide.launcher=keycloak"

// jvmMarkers adds, when UMAWIDE_RUN_ID is set, -Dumawide.run=<id>: CI sets it
// to find exactly the Keycloaks its own run started.
func jvmMarkers() string {
	m := JVMMarker
	if id := os.Getenv("UMAWIDE_RUN_ID"); id != "" {
		m += " -Dumawide.run=" + id
	}
	return m
}

// CacheDir is where the downloaded distribution is kept, outside the source tree.
func CacheDir() (string, error) {
	if dir := os.Getenv("UMAWIDE_CACHE_DIR"); dir != "" {
		return filepath.Abs(dir)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("launcher: no cache folder (set UMAWIDE_CACHE_DIR): %w", err)
	}
	return filepath.Join(base, "umawide"), nil
}

// Distribution returns the unpacked keycloak-quarkus-dist of Version, fetching
// it with Maven on first use (saying so on slog.Default()). Concurrent
// callers share one download.
func Distribution(ctx context.Context) (string, error) {
	return distribution(ctx, slog.Default(), Version)
}

// DistributionOf is Distribution for another Keycloak version (the
// federation test runs three).
func DistributionOf(ctx context.Context, version string) (string, error) {
	return distribution(ctx, slog.Default(), version)
}

func distribution(ctx context.Context, log *slog.Logger, version string) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	dist := filepath.Join(cache, "keycloak-"+version)
	if _, err := os.Stat(filepath.Join(dist, "bin", "kc.sh")); err == nil {
		return dist, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(filepath.Join(cache, "download.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dist, "bin", "kc.sh")); err == nil {
		return dist, nil // another process finished it while we waited
	}
	log.Info("preparing the Keycloak distribution (first use only)", "version", version, "cache", cache)
	dl := filepath.Join(cache, "download")
	zipPath := filepath.Join(dl, "keycloak-quarkus-dist-"+version+".zip")
	if _, err := os.Stat(zipPath); err != nil {
		if err := fetchDistribution(ctx, log, dl, version); err != nil {
			return "", err
		}
	}
	tmp, err := os.MkdirTemp(cache, "unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := unzip(zipPath, tmp); err != nil {
		return "", err
	}
	// The zip holds one top folder, keycloak-<version>.
	if err := os.Rename(filepath.Join(tmp, "keycloak-"+version), dist); err != nil {
		return "", fmt.Errorf("launcher: unpacking %s: %w", zipPath, err)
	}
	return dist, nil
}

func unzip(src, dst string) error {
	r, err := zip.OpenReader(src)
	if err != nil {
		return fmt.Errorf("launcher: open %s: %w", src, err)
	}
	defer r.Close()
	for _, f := range r.File {
		path := filepath.Join(dst, f.Name)
		if !strings.HasPrefix(path, filepath.Clean(dst)+string(os.PathSeparator)) {
			return fmt.Errorf("launcher: %s: entry %q escapes the folder", src, f.Name)
		}
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := extract(f, path); err != nil {
			return err
		}
	}
	return nil
}

func extract(f *zip.File, path string) error {
	in, err := f.Open()
	if err != nil {
		return err
	}
	defer in.Close()
	mode := f.Mode().Perm() | 0o600
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// newInstance makes a private copy of the distribution: Keycloak re-augments
// into lib/quarkus and reads providers/ and data/import/ from its home, so
// parallel instances cannot share one. The JARs under lib/lib are only read,
// so they are hard links (fast, no extra disk).
func newInstance(dist string, providers, realmFiles []string) (string, error) {
	cache := filepath.Dir(dist)
	instances := filepath.Join(cache, "instances")
	if err := os.MkdirAll(instances, 0o755); err != nil {
		return "", err
	}
	home, err := os.MkdirTemp(instances, "kc-")
	if err != nil {
		return "", err
	}
	shared := filepath.Join(dist, "lib", "lib")
	err = filepath.WalkDir(dist, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dist, path)
		target := filepath.Join(home, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if strings.HasPrefix(path, shared+string(os.PathSeparator)) {
			if err := os.Link(path, target); err == nil {
				return nil
			}
		}
		return copyFile(path, target)
	})
	if err == nil {
		err = copyInto(filepath.Join(home, "providers"), providers)
	}
	if err == nil {
		err = copyInto(filepath.Join(home, "data", "import"), realmFiles)
	}
	if err != nil {
		os.RemoveAll(home)
		return "", fmt.Errorf("launcher: preparing instance: %w", err)
	}
	return home, nil
}

func copyInto(dir string, files []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := copyFile(f, filepath.Join(dir, filepath.Base(f))); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// FreePort asks the kernel for a free TCP port on loopback.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// errExitedEarly says Keycloak's process ended before it was ready.
var errExitedEarly = errors.New("Keycloak exited before it was ready")

// startProcess starts the distribution as a process. A process that dies
// during its start (seen now and then on loaded machines, and when a free port
// was taken by someone else in the meantime) gets one more try.
func startProcess(ctx context.Context, opts Options) (*Keycloak, error) {
	kc, err := startProcessOnce(ctx, opts)
	if errors.Is(err, errExitedEarly) && ctx.Err() == nil {
		opts.Logger.Warn("Keycloak exited during its start; trying once more", "err", err)
		kc, err = startProcessOnce(ctx, opts)
	}
	return kc, err
}

func startProcessOnce(ctx context.Context, opts Options) (*Keycloak, error) {
	log := opts.Logger
	dist, err := distribution(ctx, log, opts.version())
	if err != nil {
		return nil, err
	}
	realms, err := RealmFiles(opts.RealmDir)
	if err != nil {
		return nil, err
	}
	home, err := newInstance(dist, opts.Providers, realms)
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(home) }
	for _, p := range []*int{&opts.HTTPPort, &opts.ManagementPort} {
		if *p == 0 {
			if *p, err = FreePort(); err != nil {
				cleanup()
				return nil, err
			}
		}
	}
	if opts.Cluster != nil && opts.Cluster.BindPort == 0 {
		c := *opts.Cluster // the caller's options stay as given (a retry picks anew)
		if c.BindPort, err = FreeClusterPort(); err != nil {
			cleanup()
			return nil, err
		}
		opts.Cluster = &c
	}
	logPath := opts.LogPath
	if logPath == "" {
		logPath = filepath.Join(home, "keycloak.log")
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		cleanup()
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		cleanup()
		return nil, err
	}
	defer logFile.Close()

	// Wrap runs kc.sh through another command (ip netns exec <ns>): it
	// execs kc.sh, so the process group and the stop stay the same.
	argv := append(append([]string(nil), opts.Wrap...), filepath.Join(home, "bin", "kc.sh"))
	argv = append(argv, processArgs(opts)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = home
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(),
		"KC_BOOTSTRAP_ADMIN_USERNAME="+DefaultAdminUser,
		"KC_BOOTSTRAP_ADMIN_PASSWORD="+DefaultAdminPassword,
		"JAVA_OPTS_KC_HEAP=-Xms64m -Xmx"+opts.MaxHeap+" -XX:MaxMetaspaceSize=256m",
		"JAVA_OPTS_APPEND="+strings.Join(strings.Fields(jvmMarkers()+" "+opts.JavaOpts+" "+os.Getenv("UMAWIDE_KEYCLOAK_JAVA_OPTS")), " "),
	)
	cmd.Env = append(cmd.Env, clusterEnv(opts.Cluster)...)
	if persistentSessionsOff(os.Getenv, opts.Env) {
		// A dev-mem database keeps nothing across restarts, so persisting
		// user sessions buys nothing here and costs every uma-ticket grant a
		// database look-up of its transient client session (15-20% of
		// Keycloak's CPU per flow in make bench, docs/BENCHMARKS.md).
		cmd.Env = append(cmd.Env, "KC_FEATURES_DISABLED="+DefaultFeaturesDisabled)
	}
	for k, v := range opts.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	exited, err := procgroup.Start(cmd, opts.Detached)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("launcher: starting %s: %w", cmd.Path, err)
	}
	kc := &Keycloak{
		BaseURL:       or(opts.PublicURL, "http://127.0.0.1:"+strconv.Itoa(opts.HTTPPort)),
		ManagementURL: or(opts.ManagementURL, "http://127.0.0.1:"+strconv.Itoa(opts.ManagementPort)),
		AdminUser:     DefaultAdminUser,
		AdminPassword: DefaultAdminPassword,
		Mode:          ModeProcess,
		PID:           cmd.Process.Pid,
		InstanceDir:   home,
		LogPath:       logPath,
		Version:       opts.version(),
	}
	kc.stop = func(ctx context.Context) error {
		err := procgroup.Stop(ctx, kc.PID, exited)
		if opts.LogPath == "" {
			// The log lives in the instance folder: keep it readable after a
			// failure by moving it next to the cache.
			_ = os.Rename(logPath, filepath.Join(filepath.Dir(home), filepath.Base(home)+".log"))
		}
		os.RemoveAll(home)
		return err
	}
	log.Info("starting Keycloak", "version", opts.version(), "url", kc.BaseURL, "log", logPath)
	readyCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel() // no use waiting for a dead process
		case <-readyCtx.Done():
		}
	}()
	if err := waitHTTPWith(readyCtx, opts.ReadyClient, kc.ManagementURL+"/health/ready", 500*time.Millisecond); err != nil {
		select {
		case <-exited:
			err = fmt.Errorf("%w: %w", errExitedEarly, err)
		default:
		}
		lastLines := logtail.Tail(logPath, 30) // read before Stop moves the log
		_ = kc.Stop(context.Background())
		return nil, fmt.Errorf("launcher: Keycloak did not become ready (log %s): %w\n%s", logPath, err, lastLines)
	}
	log.Info("Keycloak ready", "url", kc.BaseURL)
	return kc, nil
}
