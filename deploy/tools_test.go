package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/umawide/umawide/keycloak/launcher"
)

// tools are what the checks compare the deployment files with, made once
// per test binary from the real repository.
type tools struct {
	root   string
	binDir string
	// bins are the Go programs the root Dockerfile builds, built here from
	// the Docker build context (the repository less .dockerignore) with
	// the Dockerfile's own go build command.
	bins map[string]string
	// envNames are the environment variables each program's -h documents.
	envNames map[string]map[string]bool
	// help is each program's -h text (rqp-client: "rqp-client push" and
	// "rqp-client inbox").
	help map[string]string
	// neededFiles are the repository files the Go build reads (go list).
	neededFiles []string
	// kcOptions are the options of `kc.sh start --help-all` of the pinned
	// Keycloak (without the leading --).
	kcOptions map[string]bool
}

var (
	builtDir  string // the binaries' folder, once made
	toolsOnce sync.Once
	toolsVal  *tools
	toolsErr  error
)

// TestMain removes the binaries the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

func getTools(t *testing.T) *tools {
	t.Helper()
	toolsOnce.Do(func() { toolsVal, toolsErr = makeTools() })
	if toolsErr != nil {
		t.Fatal(toolsErr)
	}
	return toolsVal
}

func repoRoot() (string, error) { return launcher.RepoRoot() }

func makeTools() (*tools, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	tl := &tools{root: root, bins: map[string]string{}, envNames: map[string]map[string]bool{}, help: map[string]string{}}
	df, err := parseDockerfile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	env, pkgs, err := goBuildCommand(df)
	if err != nil {
		return nil, err
	}

	// The Docker build context, as the engine would send it.
	ctxDir, err := os.MkdirTemp("", "umawide-docker-context-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(ctxDir)
	ignore, err := dockerignore(root)
	if err != nil {
		return nil, err
	}
	if err := copyContext(root, ctxDir, ignore); err != nil {
		return nil, err
	}
	binDir, err := os.MkdirTemp("", "umawide-deploy-bin-")
	if err != nil {
		return nil, err
	}
	tl.binDir, builtDir = binDir, binDir // removed by TestMain
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := append([]string{"build", "-trimpath", "-o", binDir + string(os.PathSeparator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = ctxDir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("the Dockerfile's Go build fails in the Docker build context (the repository less .dockerignore): %s go %s: %v\n%s",
			strings.Join(env, " "), strings.Join(args, " "), err, out)
	}
	for _, p := range pkgs {
		name := filepath.Base(p)
		tl.bins[name] = filepath.Join(binDir, name)
	}

	// Environment variables documented by -h.
	envRE := regexp.MustCompile(`\b(?:CLAIMS_PROVIDER|RESOURCE_SERVER|RQP_CLIENT)_[A-Z0-9_]*[A-Z0-9]\b`)
	helpArgs := map[string][][]string{
		"claims-provider": {{"-h"}},
		"resource-server": {{"-h"}},
		"rqp-client":      {{"push", "-h"}, {"inbox", "-h"}},
	}
	for name, bin := range tl.bins {
		variants, ok := helpArgs[name]
		if !ok {
			return nil, fmt.Errorf("the Dockerfile builds %s, which these checks do not know", name)
		}
		names := map[string]bool{}
		for _, a := range variants {
			var out bytes.Buffer
			c := exec.CommandContext(ctx, bin, a...)
			c.Stdout, c.Stderr, c.Env = &out, &out, []string{}
			if err := c.Run(); err != nil {
				return nil, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(a, " "), err, out.String())
			}
			key := name
			if a[0] != "-h" {
				key = name + " " + a[0]
			}
			tl.help[key] = out.String()
			for _, n := range envRE.FindAllString(out.String(), -1) {
				names[n] = true
			}
		}
		if len(names) < 5 {
			return nil, fmt.Errorf("%s -h documents only %d environment variables: %v", name, len(names), names)
		}
		tl.envNames[name] = names
	}

	// The files the Go build reads, for checking .dockerignore of copies.
	list := exec.CommandContext(ctx, "go", append([]string{"list", "-deps", "-f",
		`{{if not .Standard}}{{.Dir}}{{range .GoFiles}}|{{.}}{{end}}{{range .EmbedFiles}}|{{.}}{{end}}{{end}}`}, pkgs...)...)
	list.Dir = root
	list.Env = append(os.Environ(), env...)
	out, err := list.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v", err)
	}
	tl.neededFiles = []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		rel, err := filepath.Rel(root, parts[0])
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module from the module cache
		}
		for _, f := range parts[1:] {
			tl.neededFiles = append(tl.neededFiles, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if len(tl.neededFiles) < 20 {
		return nil, fmt.Errorf("go list found only %d files of the repository", len(tl.neededFiles))
	}

	// Keycloak's options, from the pinned distribution (downloaded once by
	// the launcher; make test has it already).
	dist, err := launcher.Distribution(ctx)
	if err != nil {
		return nil, fmt.Errorf("keycloak distribution (for its option list): %w", err)
	}
	kc := exec.CommandContext(ctx, filepath.Join(dist, "bin", "kc.sh"), "start", "--help-all")
	kc.Env = append(os.Environ(), "JAVA_OPTS_KC_HEAP=-Xmx128m")
	kcOut, err := kc.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("kc.sh start --help-all: %v\n%s", err, kcOut)
	}
	tl.kcOptions = map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^--([a-z0-9][a-z0-9-]*[a-z0-9])`).FindAllStringSubmatch(string(kcOut), -1) {
		tl.kcOptions[m[1]] = true
	}
	for _, must := range []string{"hostname", "db", "health-enabled", "import-realm"} {
		if !tl.kcOptions[must] {
			return nil, fmt.Errorf("kc.sh start --help-all lists no --%s: the option list is not understood:\n%s", must, kcOut)
		}
	}
	return tl, nil
}

// goBuildCommand finds the root Dockerfile's go build: its environment
// assignments (CGO_ENABLED=0) and the packages it builds.
func goBuildCommand(df *dockerfile) (env, pkgs []string, err error) {
	for _, st := range df.stages {
		for _, in := range st.instrs {
			if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
				continue
			}
			before, after, _ := strings.Cut(in.args, "go build")
			fields := strings.Fields(before)
			for i := len(fields) - 1; i >= 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=\S*$`).MatchString(fields[i]); i-- {
				env = append(env, fields[i])
			}
			for _, f := range strings.Fields(after) {
				if strings.HasPrefix(f, "./") {
					pkgs = append(pkgs, f)
				}
			}
			if len(pkgs) == 0 {
				return nil, nil, fmt.Errorf("%s:%d: go build names no ./package", df.path, in.line)
			}
			return env, pkgs, nil
		}
	}
	return nil, nil, fmt.Errorf("%s: no RUN ... go build", df.path)
}

// dockerignore reads root/.dockerignore.
func dockerignore(root string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return patternmatcher.New(patterns)
}

func ignored(pm *patternmatcher.PatternMatcher, rel string) bool {
	m, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
	return err != nil || m
}

// copyContext copies the files of src that .dockerignore leaves in to dst.
func copyContext(src, dst string, pm *patternmatcher.PatternMatcher) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel == "." {
			return nil
		}
		if ignored(pm, rel) {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, target)
		}
		return nil
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
