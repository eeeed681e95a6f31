package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/patternmatcher"

	"github.com/umawide/umawide/keycloak/launcher"
)

// variant is one way the deployment runs.
type variant struct {
	files    []string // relative to the repository root
	profiles []string
	// want are services it must run.
	want []string
}

func (v variant) String() string {
	s := strings.Join(v.files, " + ")
	if len(v.profiles) > 0 {
		s += " (profiles " + strings.Join(v.profiles, ",") + ")"
	}
	return s
}

var variants = []variant{
	{files: []string{"compose.yaml"}, want: []string{"keycloak", "claims-provider", "resource-server"}},
	{files: []string{"compose.yaml"}, profiles: []string{"tools"},
		want: []string{"keycloak", "claims-provider", "resource-server", "rqp-client"}},
	{files: []string{"compose.yaml", "compose.scale.yaml"}, profiles: []string{"tools"},
		want: []string{"postgres", "keycloak", "keycloak-2", "claims-provider", "resource-server", "rqp-client"}},
}

// toolProfile marks services that run on demand (docker compose run), not
// as long-running services.
const toolProfile = "tools"

// keycloakHTTPPort and keycloakManagementPort are Keycloak's defaults.
const (
	keycloakHTTPPort       = 8080
	keycloakManagementPort = 9000
	postgresPort           = 5432
)

// kcEnvAllowed are Keycloak variables that are no option of `kc.sh start`.
var kcEnvAllowed = map[string]bool{
	"KC_BOOTSTRAP_ADMIN_USERNAME": true, // documented bootstrap admin (also used by the launcher)
	"KC_BOOTSTRAP_ADMIN_PASSWORD": true,
	"JAVA_OPTS_KC_HEAP":           true, // kc.sh's JVM heap options
	"JAVA_OPTS_APPEND":            true,
}

type report struct{ problems []string }

func (r *report) add(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// checkDeployment checks the deployment files under root (the repository,
// or a copy of its deployment files) with the variables env set for
// compose's interpolation. It returns every problem found.
func checkDeployment(root string, tl *tools, env map[string]string) []string {
	r := &report{}
	c := &checker{root: root, tl: tl, r: r, dockerfiles: map[string]*dockerfile{}}
	ig, err := dockerignore(root)
	if err != nil {
		r.add(".dockerignore: %v", err)
	} else {
		c.ignore = ig
		for _, f := range tl.neededFiles {
			if ignored(ig, f) {
				r.add(".dockerignore excludes %s, which the Dockerfile's go build needs", f)
			}
		}
	}
	for _, v := range variants {
		p, err := loadProject(root, v.files, v.profiles, env)
		if err != nil {
			r.add("%s: does not load: %v", v, err)
			continue
		}
		c.checkProject(v, p)
	}
	return r.problems
}

func loadProject(root string, files, profiles []string, env map[string]string) (*types.Project, error) {
	var paths, envList []string
	for _, f := range files {
		paths = append(paths, filepath.Join(root, f))
	}
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	o, err := cli.NewProjectOptions(paths, cli.WithWorkingDirectory(root), cli.WithEnv(envList), cli.WithProfiles(profiles))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return o.LoadProject(ctx)
}

type checker struct {
	root        string
	tl          *tools
	r           *report
	ignore      *patternmatcher.PatternMatcher // nil: .dockerignore unreadable
	dockerfiles map[string]*dockerfile
}

// kind says what a service runs: "claims-provider", "resource-server",
// "rqp-client" (the root Dockerfile's targets), "keycloak", "postgres", or "".
func (c *checker) kind(s types.ServiceConfig) string {
	if s.Build != nil {
		df := c.dockerfilePath(s)
		switch {
		case df == filepath.Join(c.root, "Dockerfile") && c.tl.bins[s.Build.Target] != "":
			return s.Build.Target
		case df == filepath.Join(c.root, "keycloak", "Dockerfile"):
			return "keycloak"
		}
		return ""
	}
	name, _, _ := strings.Cut(s.Image, "@")
	name, _, _ = strings.Cut(name, ":")
	switch name {
	case "quay.io/keycloak/keycloak":
		return "keycloak"
	case "postgres", "docker.io/library/postgres":
		return "postgres"
	}
	return ""
}

func isGo(kind string) bool {
	return kind == "claims-provider" || kind == "resource-server" || kind == "rqp-client"
}

func (c *checker) dockerfilePath(s types.ServiceConfig) string {
	df := s.Build.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	if !filepath.IsAbs(df) {
		df = filepath.Join(s.Build.Context, df)
	}
	return filepath.Clean(df)
}

// dockerfile parses (once) and checks the Dockerfile of a service.
func (c *checker) dockerfile(s types.ServiceConfig) *dockerfile {
	path := c.dockerfilePath(s)
	if df, ok := c.dockerfiles[path]; ok {
		return df
	}
	df, err := parseDockerfile(path)
	c.dockerfiles[path] = df
	if err != nil {
		c.r.add("service %s: Dockerfile: %v", s.Name, err)
		return nil
	}
	c.checkDockerfile(df, s.Build.Context)
	return df
}

func (c *checker) rel(path string) string {
	if r, err := filepath.Rel(c.root, path); err == nil {
		return r
	}
	return path
}

// pinned says whether an image reference names one version: a digest, or a
// tag with a digit that is not "latest".
func pinned(ref string) bool {
	if strings.Contains(ref, "@sha256:") {
		return true
	}
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return false
	}
	tag := ref[i+1:]
	return tag != "latest" && strings.ContainsAny(tag, "0123456789")
}

func (c *checker) checkDockerfile(df *dockerfile, context string) {
	where := c.rel(df.path)
	for _, st := range df.stages {
		switch {
		case st.base == "scratch" || df.isStage(st.base):
		case !pinned(st.base):
			c.r.add("%s: FROM %s is not pinned to a version", where, st.base)
		}
		if strings.HasPrefix(st.base, "quay.io/keycloak/keycloak:") && st.base != launcher.Image {
			c.r.add("%s: FROM %s, but the project pins Keycloak %s (launcher.Version)", where, st.base, launcher.Version)
		}
		for _, in := range st.instrs {
			if in.cmd != "COPY" && in.cmd != "ADD" {
				continue
			}
			flags, srcs, _ := copyArgs(in.args)
			if from, ok := flags["from"]; ok {
				if !df.isStage(from) && !pinned(from) {
					c.r.add("%s:%d: COPY --from=%s is neither an earlier stage nor a pinned image", where, in.line, from)
				}
				continue
			}
			for _, src := range srcs {
				if src == "." || src == "./" {
					continue
				}
				rel := filepath.Clean(src)
				if _, err := os.Stat(filepath.Join(context, rel)); err != nil {
					c.r.add("%s:%d: %s %s: not in the build context (%v)", where, in.line, in.cmd, src, err)
				} else if c.ignore != nil && ignored(c.ignore, rel) {
					c.r.add("%s:%d: %s %s: excluded from the build context by .dockerignore", where, in.line, in.cmd, src)
				}
			}
		}
	}
}

// nonRoot says whether a user spec (name or uid, optional group) is not root.
func nonRoot(u string) bool {
	user, _, _ := strings.Cut(strings.TrimSpace(u), ":")
	return user != "" && user != "0" && user != "root"
}

// envOf is a service's environment with unset values as "".
func envOf(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		} else {
			out[k] = ""
		}
	}
	return out
}

// names are the DNS names of a service inside its networks.
func names(s types.ServiceConfig) []string {
	out := []string{s.Name}
	for _, n := range s.Networks {
		if n != nil {
			out = append(out, n.Aliases...)
		}
	}
	return out
}

func (c *checker) checkProject(v variant, p *types.Project) {
	services := map[string]types.ServiceConfig{}
	for _, s := range p.Services {
		services[s.Name] = s
	}
	for _, want := range v.want {
		if _, ok := services[want]; !ok {
			c.r.add("%s: no service %s", v, want)
		}
	}
	pc := &projectChecker{checker: c, v: v, p: p, services: services, kinds: map[string]string{}}
	for name, s := range services {
		pc.kinds[name] = c.kind(s)
	}
	for _, name := range sortedKeys(services) {
		pc.checkService(services[name])
	}
	pc.checkAgreement()
}

type projectChecker struct {
	*checker
	v        variant
	p        *types.Project
	services map[string]types.ServiceConfig
	kinds    map[string]string
}

func (pc *projectChecker) add(s types.ServiceConfig, format string, args ...any) {
	pc.r.add("%s: service %s: %s", pc.v, s.Name, fmt.Sprintf(format, args...))
}

func (pc *projectChecker) replicas(s types.ServiceConfig) int {
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		return *s.Deploy.Replicas
	}
	return 1
}

func (pc *projectChecker) isTool(s types.ServiceConfig) bool {
	return slices.Contains(s.Profiles, toolProfile)
}

func (pc *projectChecker) checkService(s types.ServiceConfig) {
	kind := pc.kinds[s.Name]
	if kind == "" {
		pc.add(s, "unknown service (neither a target of ./Dockerfile, Keycloak nor PostgreSQL): these checks do not cover it")
		return
	}
	env := envOf(s)

	// Build or image.
	var df *dockerfile
	var st *stage
	if s.Build != nil {
		if fi, err := os.Stat(s.Build.Context); err != nil || !fi.IsDir() {
			pc.add(s, "build context %s is not a folder", s.Build.Context)
			return
		}
		if df = pc.dockerfile(s); df == nil {
			return
		}
		if st = df.stage(s.Build.Target); st == nil {
			pc.add(s, "build target %q is no stage of %s", s.Build.Target, pc.rel(df.path))
			return
		}
	} else if !pinned(s.Image) {
		pc.add(s, "image %q is not pinned to a version", s.Image)
	}
	if s.Image != "" && strings.HasPrefix(s.Image, "quay.io/keycloak/keycloak:") && s.Image != launcher.Image {
		pc.add(s, "image %s, but the project pins %s", s.Image, launcher.Image)
	}

	// Non-root.
	user := s.User
	if user == "" && st != nil {
		user, _ = df.last(st, "USER")
	}
	if !nonRoot(user) {
		pc.add(s, "runs as root (user %q): set USER in its Dockerfile stage or user: in compose", user)
	}

	// Health check, and what depends on it waits for it.
	if !pc.isTool(s) {
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
			pc.add(s, "no health check")
		} else {
			pc.checkHealthcheck(s, kind, df, st, env)
		}
	}
	for dep, d := range s.DependsOn {
		if _, ok := pc.services[dep]; !ok {
			pc.add(s, "depends on %s, which does not run", dep)
			continue
		}
		if d.Condition != types.ServiceConditionHealthy {
			pc.add(s, "depends on %s with condition %q: want service_healthy (the dependency must be ready, not only started)", dep, d.Condition)
		}
	}

	// Ports: the published port is the one the service listens on, on the
	// host's loopback only; replicas publish no fixed host port.
	listen := pc.listenPort(s, kind, env)
	var exposed []string
	if st != nil {
		for _, in := range df.all(st, "EXPOSE") {
			exposed = append(exposed, strings.Fields(in.args)...)
		}
	}
	for _, port := range s.Ports {
		if int(port.Target) != listen {
			pc.add(s, "publishes container port %d, but it listens on %d", port.Target, listen)
		}
		if port.HostIP != "127.0.0.1" && port.HostIP != "::1" {
			pc.add(s, "publishes port %d on %q: publish on the host's loopback (127.0.0.1) only", port.Target, port.HostIP)
		}
		if st != nil && !slices.Contains(exposed, strconv.Itoa(int(port.Target))) && !slices.Contains(exposed, fmt.Sprintf("%d/tcp", port.Target)) {
			pc.add(s, "publishes port %d, which its image does not EXPOSE (%v)", port.Target, exposed)
		}
		if pc.replicas(s) > 1 && port.Published != "" {
			pc.add(s, "has %d replicas but publishes the fixed host port %s", pc.replicas(s), port.Published)
		}
	}

	// Mounts.
	for _, m := range s.Volumes {
		switch m.Type {
		case types.VolumeTypeBind:
			if _, err := os.Stat(m.Source); err != nil {
				pc.add(s, "mounts %s, which does not exist", pc.rel(m.Source))
			}
		case types.VolumeTypeVolume:
			if _, ok := pc.p.Volumes[m.Source]; !ok {
				pc.add(s, "mounts volume %q, which is not declared", m.Source)
			}
		}
	}
	if s.ReadOnly && !slices.Contains(s.Tmpfs, "/tmp") {
		pc.add(s, "has a read-only root file system but no tmpfs on /tmp")
	}

	// Environment.
	switch {
	case isGo(kind):
		pc.checkGoEnv(s, kind, env)
		pc.checkGoState(s, kind, env, df, st)
		pc.runWithEnv(s, kind, env)
	case kind == "keycloak":
		pc.checkKeycloakEnv(s, env)
		if st != nil {
			jar := filepath.Base(launcher.ExtensionJAR(pc.root))
			found := false
			for _, in := range df.all(st, "COPY") {
				if _, srcs, dst := copyArgs(in.args); len(srcs) == 1 && filepath.Base(srcs[0]) == jar &&
					(dst == "/opt/keycloak/providers/" || dst == "/opt/keycloak/providers/"+jar) {
					found = true
				}
			}
			if !found {
				pc.add(s, "its image does not COPY %s (what Maven builds) into /opt/keycloak/providers/", jar)
			}
		}
	case kind == "postgres":
		if env["POSTGRES_PASSWORD"] == "" {
			pc.add(s, "POSTGRES_PASSWORD is not set (the image refuses to start without it)")
		}
	}
}

func (pc *projectChecker) listenPort(s types.ServiceConfig, kind string, env map[string]string) int {
	switch kind {
	case "claims-provider", "resource-server":
		_, port, err := net.SplitHostPort(env[envPrefix(kind)+"LISTEN"])
		if err != nil {
			return -1
		}
		n, _ := strconv.Atoi(port)
		return n
	case "keycloak":
		if p, err := strconv.Atoi(env["KC_HTTP_PORT"]); err == nil {
			return p
		}
		return keycloakHTTPPort
	case "postgres":
		return postgresPort
	}
	return -1
}

func envPrefix(kind string) string {
	return strings.ToUpper(strings.ReplaceAll(kind, "-", "_")) + "_"
}

func (pc *projectChecker) checkHealthcheck(s types.ServiceConfig, kind string, df *dockerfile, st *stage, env map[string]string) {
	test := s.HealthCheck.Test
	switch {
	case isGo(kind):
		entry := []string(s.Entrypoint)
		if len(entry) == 0 && st != nil {
			a, _ := df.last(st, "ENTRYPOINT")
			entry = execForm(a)
		}
		if len(entry) == 0 {
			pc.add(s, "its image has no ENTRYPOINT in exec form")
			return
		}
		want := []string{"CMD", entry[0], "healthcheck"}
		if !slices.Equal(test, want) {
			pc.add(s, "health check %q: want %q (the binary checks its own /readyz; the image has no shell)", test, want)
		}
		// The entrypoint binary is what the stage copies in.
		found := false
		for _, in := range df.all(st, "COPY") {
			if _, _, dst := copyArgs(in.args); dst == entry[0] {
				found = true
			}
		}
		if !found {
			pc.add(s, "its image's ENTRYPOINT %s is not COPYed into the stage", entry[0])
		}
	case kind == "keycloak":
		script := strings.Join(test, " ")
		if !strings.Contains(script, fmt.Sprintf("/dev/tcp/127.0.0.1/%d", keycloakManagementPort)) || !strings.Contains(script, "/health/ready") {
			pc.add(s, "health check %q does not ask /health/ready on the management port %d", test, keycloakManagementPort)
		}
		enabled := env["KC_HEALTH_ENABLED"]
		if enabled == "" && st != nil {
			enabled = df.env(st)["KC_HEALTH_ENABLED"]
		}
		if enabled != "true" {
			pc.add(s, "KC_HEALTH_ENABLED is not true: /health/ready does not exist")
		}
	case kind == "postgres":
		if !strings.Contains(strings.Join(test, " "), "pg_isready") {
			pc.add(s, "health check %q does not use pg_isready", test)
		}
	}
}

func (pc *projectChecker) checkGoEnv(s types.ServiceConfig, kind string, env map[string]string) {
	known := pc.tl.envNames[kind]
	for _, k := range sortedKeys(env) {
		if !known[k] {
			pc.add(s, "environment variable %s is none that %s reads (see %s -h)", k, kind, kind)
		}
	}
	var required []string
	switch kind {
	case "claims-provider":
		required = []string{"LISTEN", "ISSUER", "KEYCLOAK_URL", "REALM", "CLIENT_SECRET", "DOMAINS", "KEY_DIR"}
	case "resource-server":
		required = []string{"LISTEN", "KEYCLOAK_URL", "REALM", "CLIENT_SECRET"}
	case "rqp-client":
		required = []string{"AUTHN_ISSUER", "AUTHN_CLIENT_SECRET", "AS_ISSUER", "AS_CLIENT_SECRET", "CLAIMS_PROVIDER", "INBOX_ISSUER"}
	}
	for _, k := range required {
		if env[envPrefix(kind)+k] == "" {
			pc.add(s, "%s%s is not set (the default is for a laptop, not for compose)", envPrefix(kind), k)
		}
	}
}

// checkGoState: what a service keeps must be on a named volume mounted
// where its image prepared a folder owned by its user (a VOLUME of the
// stage), or it is lost with the container, or not writable.
func (pc *projectChecker) checkGoState(s types.ServiceConfig, kind string, env map[string]string, df *dockerfile, st *stage) {
	var state string
	switch kind {
	case "claims-provider":
		state = env["CLAIMS_PROVIDER_KEY_DIR"]
	case "resource-server":
		if env["RESOURCE_SERVER_DATABASE_URL"] != "" {
			return
		}
		state = filepath.Dir(env["RESOURCE_SERVER_DB"])
	default:
		return
	}
	if !filepath.IsAbs(state) {
		pc.add(s, "keeps its state in %q: want an absolute path on a volume", state)
		return
	}
	var volumes []string
	for _, in := range df.all(st, "VOLUME") {
		if a := execForm(in.args); a != nil {
			volumes = append(volumes, a...)
		} else {
			volumes = append(volumes, strings.Fields(in.args)...)
		}
	}
	for _, m := range s.Volumes {
		if m.Type != types.VolumeTypeVolume || (state != m.Target && !strings.HasPrefix(state, m.Target+"/")) {
			continue
		}
		if !slices.Contains(volumes, m.Target) {
			pc.add(s, "mounts volume %s at %s, which its image does not prepare (VOLUME %v): the volume would be root's", m.Source, m.Target, volumes)
		}
		return
	}
	pc.add(s, "keeps its state in %s, which is on no named volume", state)
}

// runWithEnv runs the real binary with the service's environment (and
// nothing else of this process's): it must accept the configuration.
func (pc *projectChecker) runWithEnv(s types.ServiceConfig, kind string, env map[string]string) {
	closed, err := closedAddr()
	if err != nil {
		pc.add(s, "no free port: %v", err)
		return
	}
	var args []string
	wantCode, wantOut := 1, "healthcheck:"
	switch kind {
	case "claims-provider", "resource-server":
		// The configuration is parsed in full, then the check finds no server.
		args = []string{"healthcheck", "-listen", closed}
	case "rqp-client":
		file := filepath.Join(os.TempDir(), "umawide-deploy-push.txt")
		if err := os.WriteFile(file, []byte("hello\n"), 0o644); err != nil {
			pc.add(s, "%v", err)
			return
		}
		args = []string{"push", "--to", "http://" + closed + "/incoming/bob", "--file", file, "--email", "alice@foo.example", "-q"}
		wantCode, wantOut = 5, "" // the Resource Server is unreachable: the configuration was accepted
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pc.tl.bins[kind], args...)
	cmd.Env = []string{}
	for _, k := range sortedKeys(env) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		pc.add(s, "running %s: %v", kind, err)
		return
	}
	if code != wantCode || !strings.Contains(out.String(), wantOut) {
		pc.add(s, "%s refuses its compose environment (%s %s: exit %d, want %d): %s", kind, kind, strings.Join(args[:1], " "), code, wantCode, strings.TrimSpace(out.String()))
	}
}

func closedAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

var placeholderRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::[^}]*)?\}`)

// realmPlaceholders are the UMAWIDE_ import placeholders of the realm files.
func (c *checker) realmPlaceholders() map[string]bool {
	out := map[string]bool{}
	files, _ := launcher.RealmFiles(launcher.RealmDir(c.root))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			c.r.add("%v", err)
			continue
		}
		for _, m := range placeholderRE.FindAllStringSubmatch(string(data), -1) {
			if strings.HasPrefix(m[1], "UMAWIDE_") {
				out[m[1]] = true
			}
		}
	}
	return out
}

func (pc *projectChecker) checkKeycloakEnv(s types.ServiceConfig, env map[string]string) {
	placeholders := pc.realmPlaceholders()
	for _, k := range sortedKeys(env) {
		switch {
		case strings.HasPrefix(k, "KC_"):
			opt := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "KC_"), "_", "-"))
			if !pc.tl.kcOptions[opt] && !kcEnvAllowed[k] {
				pc.add(s, "%s names no Keycloak option (--%s is not in kc.sh start --help-all of Keycloak %s)", k, opt, launcher.Version)
			}
		case strings.HasPrefix(k, "UMAWIDE_"):
			if !placeholders[k] {
				pc.add(s, "%s is no import placeholder of keycloak/realms/*-realm.json", k)
			}
		case kcEnvAllowed[k]:
		default:
			pc.add(s, "environment variable %s is neither a Keycloak option nor a realm placeholder", k)
		}
	}
	for _, k := range sortedKeys(placeholders) {
		if _, ok := env[k]; !ok {
			pc.add(s, "realm placeholder %s is not set: its default is for a laptop, set it here", k)
		}
	}
	cmd := []string(s.Command)
	if len(cmd) == 0 || (cmd[0] != "start" && cmd[0] != "start-dev") {
		pc.add(s, "command %q: want start or start-dev", cmd)
		return
	}
	for _, a := range cmd[1:] {
		opt, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !pc.tl.kcOptions[opt] {
			pc.add(s, "command argument %q is no option of kc.sh %s", a, cmd[0])
		}
	}
	if !slices.Contains(cmd, "--import-realm") {
		pc.add(s, "command %q lacks --import-realm: realms foo and bar would not exist", cmd)
	}
	mounted := false
	for _, m := range s.Volumes {
		if m.Type == types.VolumeTypeBind && m.Target == "/opt/keycloak/data/import" && filepath.Clean(m.Source) == launcher.RealmDir(pc.root) {
			mounted = true
		}
	}
	if !mounted {
		pc.add(s, "does not mount keycloak/realms at /opt/keycloak/data/import")
	}
	if env["KC_DB"] != "" && env["KC_DB"] != "dev-file" && env["KC_DB"] != "dev-mem" && env["KC_DB_URL"] == "" {
		pc.add(s, "KC_DB=%s without KC_DB_URL", env["KC_DB"])
	}
}

// parsedURL parses an absolute http(s) URL.
func parsedURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return u, nil
}

// resolves checks that a URL's host is a name of a running service of the
// given kind and its port the port that service listens on. It returns the
// service.
func (pc *projectChecker) resolves(raw, kind string) (types.ServiceConfig, error) {
	u, err := parsedURL(raw)
	if err != nil {
		return types.ServiceConfig{}, err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, name := range sortedKeys(pc.services) {
		s := pc.services[name]
		if !slices.Contains(names(s), u.Hostname()) {
			continue
		}
		if pc.kinds[name] != kind {
			return s, fmt.Errorf("%s: host %s is service %s, not %s", raw, u.Hostname(), name, kind)
		}
		if want := strconv.Itoa(pc.listenPort(s, kind, envOf(s))); port != want {
			return s, fmt.Errorf("%s: port %s, but %s listens on %s", raw, port, name, want)
		}
		return s, nil
	}
	return types.ServiceConfig{}, fmt.Errorf("%s: host %s is no service of this deployment", raw, u.Hostname())
}

// dependsOn says whether from waits (transitively) for to being healthy.
func (pc *projectChecker) dependsOn(from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(n string) bool {
		if seen[n] {
			return false
		}
		seen[n] = true
		for dep, d := range pc.services[n].DependsOn {
			if d.Condition == types.ServiceConditionHealthy && (dep == to || walk(dep)) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

type realmFile struct {
	Realm   string `json:"realm"`
	Clients []struct {
		ClientID               string `json:"clientId"`
		Secret                 string `json:"secret"`
		ServiceAccountsEnabled bool   `json:"serviceAccountsEnabled"`
		AuthorizationSettings  *struct {
			Policies []struct {
				Type   string            `json:"type"`
				Config map[string]string `json:"config"`
			} `json:"policies"`
		} `json:"authorizationSettings"`
	} `json:"clients"`
}

func (rf *realmFile) secret(clientID string) (string, bool) {
	for _, c := range rf.Clients {
		if c.ClientID == clientID {
			return c.Secret, true
		}
	}
	return "", false
}

// realms reads the realm files as Keycloak imports them with env.
func (c *checker) realms(env map[string]string) (map[string]*realmFile, error) {
	files, err := launcher.RealmFiles(launcher.RealmDir(c.root))
	if err != nil {
		return nil, err
	}
	out := map[string]*realmFile{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var rf realmFile
		if err := json.Unmarshal(launcher.ExpandPlaceholders(data, env), &rf); err != nil {
			return nil, fmt.Errorf("%s: %w", c.rel(f), err)
		}
		out[rf.Realm] = &rf
	}
	return out, nil
}

func (pc *projectChecker) ofKind(kind string) []types.ServiceConfig {
	var out []types.ServiceConfig
	for _, name := range sortedKeys(pc.services) {
		if pc.kinds[name] == kind {
			out = append(out, pc.services[name])
		}
	}
	return out
}

// checkAgreement: Keycloak's issuer, the services' URLs, the trusted Claims
// Provider of realm bar's claims-token policy and the secrets agree.
func (pc *projectChecker) checkAgreement() {
	kcs := pc.ofKind("keycloak")
	if len(kcs) == 0 {
		pc.r.add("%s: no Keycloak", pc.v)
		return
	}
	kc := kcs[0]
	kcEnv := envOf(kc)
	for _, other := range kcs[1:] {
		for _, k := range []string{"KC_HOSTNAME", "KC_DB", "KC_DB_URL", "KC_DB_USERNAME", "KC_DB_PASSWORD", "KC_CACHE", "KC_CACHE_STACK"} {
			if envOf(other)[k] != kcEnv[k] {
				pc.add(other, "%s=%q differs from %s's %q: the nodes of one Keycloak share them", k, envOf(other)[k], kc.Name, kcEnv[k])
			}
		}
	}
	hostname := strings.TrimRight(kcEnv["KC_HOSTNAME"], "/")
	if hostname == "" {
		pc.add(kc, "KC_HOSTNAME is not set: the tokens' iss would follow whatever Host each caller used")
		return
	}
	if _, err := pc.resolves(hostname, "keycloak"); err != nil {
		pc.add(kc, "KC_HOSTNAME: %v (the services and the RqP client reach Keycloak at its issuer)", err)
	}
	issuerOf := func(realm string) string { return hostname + "/realms/" + realm }
	realms, err := pc.realms(kcEnv)
	if err != nil {
		pc.add(kc, "realm files: %v", err)
		return
	}
	clientSecret := func(s types.ServiceConfig, realm, clientID, secret string) {
		rf, ok := realms[realm]
		if !ok {
			pc.add(s, "realm %q: no such realm file", realm)
			return
		}
		want, ok := rf.secret(clientID)
		switch {
		case !ok:
			pc.add(s, "realm %s has no client %s", realm, clientID)
		case want != secret:
			pc.add(s, "the secret of client %s differs from the one realm %s is imported with (%q vs %q)", clientID, realm, secret, want)
		}
	}
	needKeycloak := func(s types.ServiceConfig, what, raw string) {
		if _, err := pc.resolves(raw, "keycloak"); err != nil {
			pc.add(s, "%s: %v", what, err)
		} else if !pc.dependsOn(s.Name, kc.Name) {
			pc.add(s, "calls Keycloak (%s) but does not wait for it to be healthy", what)
		}
	}
	def := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}

	type cpInfo struct {
		issuer, realm string
		domains       []string
	}
	var cp *cpInfo
	for _, s := range pc.ofKind("claims-provider") {
		e := envOf(s)
		kcURL := strings.TrimRight(e["CLAIMS_PROVIDER_KEYCLOAK_URL"], "/")
		needKeycloak(s, "CLAIMS_PROVIDER_KEYCLOAK_URL", kcURL)
		realm := e["CLAIMS_PROVIDER_REALM"]
		if ri := def(e["CLAIMS_PROVIDER_REALM_ISSUER"], kcURL+"/realms/"+realm); ri != issuerOf(realm) {
			pc.add(s, "expects Alice's tokens from %s, but Keycloak issues them as %s", ri, issuerOf(realm))
		}
		issuer := strings.TrimRight(e["CLAIMS_PROVIDER_ISSUER"], "/")
		if got, err := pc.resolves(issuer, "claims-provider"); err != nil {
			pc.add(s, "CLAIMS_PROVIDER_ISSUER: %v (Keycloak fetches the JWKS and the RqP client the claims tokens there)", err)
		} else if got.Name != s.Name {
			pc.add(s, "CLAIMS_PROVIDER_ISSUER names service %s", got.Name)
		}
		clientSecret(s, realm, def(e["CLAIMS_PROVIDER_CLIENT_ID"], "claims-provider"), e["CLAIMS_PROVIDER_CLIENT_SECRET"])
		var domains []string
		for _, d := range strings.Split(strings.ToLower(e["CLAIMS_PROVIDER_DOMAINS"]), ",") {
			if d = strings.TrimSpace(d); d != "" {
				domains = append(domains, d)
			}
		}
		cp = &cpInfo{issuer: issuer, realm: realm, domains: domains}
	}
	var rsIssuer, rsRealm string
	for _, s := range pc.ofKind("resource-server") {
		e := envOf(s)
		kcURL := strings.TrimRight(e["RESOURCE_SERVER_KEYCLOAK_URL"], "/")
		needKeycloak(s, "RESOURCE_SERVER_KEYCLOAK_URL", kcURL)
		rsRealm = e["RESOURCE_SERVER_REALM"]
		rsIssuer = strings.TrimRight(def(e["RESOURCE_SERVER_ISSUER"], kcURL+"/realms/"+rsRealm), "/")
		if rsIssuer != issuerOf(rsRealm) {
			pc.add(s, "announces as_uri %s and expects RPTs from it, but Keycloak issues them as %s", rsIssuer, issuerOf(rsRealm))
		}
		clientSecret(s, rsRealm, def(e["RESOURCE_SERVER_CLIENT_ID"], "resource-server"), e["RESOURCE_SERVER_CLIENT_SECRET"])
		if db := e["RESOURCE_SERVER_DATABASE_URL"]; db != "" {
			pc.checkDatabaseURL(s, db)
		}
	}
	if cp == nil || rsRealm == "" {
		return // reported as missing services
	}

	// Realm bar's claims-token policy trusts this Claims Provider.
	if rf, ok := realms[rsRealm]; ok {
		found := false
		for _, c := range rf.Clients {
			if c.AuthorizationSettings == nil {
				continue
			}
			for _, pol := range c.AuthorizationSettings.Policies {
				if pol.Type != "claims-token" {
					continue
				}
				found = true
				var trusted []struct {
					Issuer  string   `json:"issuer"`
					JWKSURI string   `json:"jwks_uri"`
					Domains []string `json:"domains"`
				}
				if err := json.Unmarshal([]byte(pol.Config["claimsProviders"]), &trusted); err != nil {
					pc.add(kc, "realm %s: claims-token policy config claimsProviders: %v", rsRealm, err)
					continue
				}
				ok := false
				for _, tp := range trusted {
					if tp.Issuer != cp.issuer {
						continue
					}
					ok = true
					if tp.JWKSURI != cp.issuer+"/jwks" {
						pc.add(kc, "realm %s trusts the Claims Provider's keys at %s, but it publishes them at %s/jwks", rsRealm, tp.JWKSURI, cp.issuer)
					}
					for _, d := range cp.domains {
						if !slices.Contains(tp.Domains, d) {
							pc.add(kc, "realm %s does not trust the Claims Provider for its domain %s", rsRealm, d)
						}
					}
					if strings.HasPrefix(tp.Issuer, "http:") || strings.HasPrefix(tp.JWKSURI, "http:") {
						if pol.Config["allowInsecureUrls"] != "true" {
							pc.add(kc, "realm %s trusts a Claims Provider at an http URL without allowInsecureUrls=true: the import is refused", rsRealm)
						}
					}
				}
				if !ok {
					pc.add(kc, "realm %s's claims-token policy does not trust the Claims Provider %s (it trusts %+v)", rsRealm, cp.issuer, trusted)
				}
			}
		}
		if !found {
			pc.add(kc, "realm %s has no claims-token policy", rsRealm)
		}
	}

	// The RqP client.
	for _, s := range pc.ofKind("rqp-client") {
		e := envOf(s)
		for _, chk := range []struct{ key, want, kind string }{
			{"RQP_CLIENT_AUTHN_ISSUER", issuerOf(cp.realm), "keycloak"},
			{"RQP_CLIENT_AS_ISSUER", rsIssuer, "keycloak"},
			{"RQP_CLIENT_INBOX_ISSUER", rsIssuer, "keycloak"},
			{"RQP_CLIENT_CLAIMS_PROVIDER", cp.issuer, "claims-provider"},
		} {
			got := strings.TrimRight(e[chk.key], "/")
			if got != chk.want {
				pc.add(s, "%s=%s, want %s", chk.key, got, chk.want)
			}
			if svc, err := pc.resolves(got, chk.kind); err != nil {
				pc.add(s, "%s: %v", chk.key, err)
			} else if !pc.dependsOn(s.Name, svc.Name) && !pc.dependsOn(s.Name, pc.ofKind(chk.kind)[0].Name) {
				pc.add(s, "%s: does not wait for %s to be healthy", chk.key, svc.Name)
			}
		}
		clientSecret(s, cp.realm, def(e["RQP_CLIENT_AUTHN_CLIENT_ID"], "rqp-client"), e["RQP_CLIENT_AUTHN_CLIENT_SECRET"])
		clientSecret(s, rsRealm, def(e["RQP_CLIENT_AS_CLIENT_ID"], "rqp-client"), e["RQP_CLIENT_AS_CLIENT_SECRET"])
		rs := pc.ofKind("resource-server")
		if len(rs) > 0 && !pc.dependsOn(s.Name, rs[0].Name) {
			pc.add(s, "does not wait for the Resource Server %s to be healthy", rs[0].Name)
		}
	}

	// Keycloak's own database.
	if kcEnv["KC_DB"] == "postgres" {
		u := strings.TrimPrefix(kcEnv["KC_DB_URL"], "jdbc:")
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "postgresql" {
			pc.add(kc, "KC_DB_URL %q is no jdbc:postgresql:// URL", kcEnv["KC_DB_URL"])
			return
		}
		pc.checkDatabase(kc, pu.Hostname(), pu.Port(), strings.TrimPrefix(pu.Path, "/"), kcEnv["KC_DB_USERNAME"], kcEnv["KC_DB_PASSWORD"])
	}
}

func (pc *projectChecker) checkDatabaseURL(s types.ServiceConfig, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		pc.add(s, "database URL is no postgres:// URL")
		return
	}
	pw, _ := u.User.Password()
	pc.checkDatabase(s, u.Hostname(), u.Port(), strings.TrimPrefix(u.Path, "/"), u.User.Username(), pw)
}

var (
	initSetRE  = regexp.MustCompile(`--set=(\w+)="\$(\w+)"`)
	initRoleRE = regexp.MustCompile(`CREATE ROLE (\w+) LOGIN PASSWORD :'(\w+)'`)
	initDBRE   = regexp.MustCompile(`CREATE DATABASE (\w+) OWNER (\w+)`)
)

// checkDatabase: the database host is a PostgreSQL service this one waits
// for, whose init script creates the database, owned by the user, with the
// password the service uses.
func (pc *projectChecker) checkDatabase(s types.ServiceConfig, host, port, db, user, password string) {
	var pg *types.ServiceConfig
	for _, name := range sortedKeys(pc.services) {
		if slices.Contains(names(pc.services[name]), host) {
			svc := pc.services[name]
			pg = &svc
		}
	}
	if pg == nil || pc.kinds[pg.Name] != "postgres" {
		pc.add(s, "database host %s is no PostgreSQL service of this deployment", host)
		return
	}
	if port != "" && port != strconv.Itoa(postgresPort) {
		pc.add(s, "database port %s, PostgreSQL listens on %d", port, postgresPort)
	}
	if !pc.dependsOn(s.Name, pg.Name) {
		pc.add(s, "uses database %s but does not wait for %s to be healthy", db, pg.Name)
	}
	pgEnv := envOf(*pg)
	var script []byte
	for _, m := range pg.Volumes {
		if m.Type == types.VolumeTypeBind && strings.HasPrefix(m.Target, "/docker-entrypoint-initdb.d/") {
			b, err := os.ReadFile(m.Source)
			if err != nil {
				pc.add(*pg, "init script: %v", err)
			}
			script = append(script, b...)
		}
	}
	vars := map[string]string{} // psql variable -> environment variable
	for _, m := range initSetRE.FindAllStringSubmatch(string(script), -1) {
		vars[m[1]] = m[2]
	}
	owner := ""
	for _, m := range initDBRE.FindAllStringSubmatch(string(script), -1) {
		if m[1] == db {
			owner = m[2]
		}
	}
	if owner == "" {
		pc.add(s, "database %s is created by no init script of %s", db, pg.Name)
		return
	}
	if owner != user {
		pc.add(s, "connects to database %s as %s, but it belongs to %s", db, user, owner)
	}
	for _, m := range initRoleRE.FindAllStringSubmatch(string(script), -1) {
		if m[1] != user {
			continue
		}
		envVar := vars[m[2]]
		if envVar == "" {
			pc.add(*pg, "the init script sets role %s's password from no environment variable", user)
		} else if pgEnv[envVar] != password {
			pc.add(s, "the password of database user %s differs from %s of %s (%q vs %q)", user, envVar, pg.Name, password, pgEnv[envVar])
		}
		return
	}
	pc.add(s, "database user %s is created by no init script of %s", user, pg.Name)
}
