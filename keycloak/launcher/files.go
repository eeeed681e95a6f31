package launcher

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ModulePath is the Go module this repository holds; RepoRoot looks for it.
const ModulePath = "github.com/umawide/umawide"

// RepoRoot finds the repository's root: UMAWIDE_ROOT, or the nearest folder
// above the working directory whose go.mod declares ModulePath.
func RepoRoot() (string, error) {
	if root := os.Getenv("UMAWIDE_ROOT"); root != "" {
		return filepath.Abs(root)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isModuleRoot(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("launcher: not inside the umawide repository (set UMAWIDE_ROOT)")
		}
		dir = parent
	}
}

func isModuleRoot(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == ModulePath
		}
	}
	return false
}

// RealmDir is where the realm files live.
func RealmDir(root string) string { return filepath.Join(root, "keycloak", "realms") }

// RealmFiles lists the realm files of a folder (*-realm.json).
func RealmFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*-realm.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("launcher: no *-realm.json in %s", dir)
	}
	return files, nil
}

// ExtensionDir is the Maven module of the Keycloak extension.
func ExtensionDir(root string) string { return filepath.Join(root, "keycloak", "extension") }

// ExtensionJAR is the path Maven writes the extension to.
func ExtensionJAR(root string) string {
	return filepath.Join(ExtensionDir(root), "target", "umawide-keycloak-extension.jar")
}

// DefaultProviders returns the provider JARs the project builds, building the
// extension with Maven (tests skipped: `make test` runs them) when its JAR is
// missing or older than its sources. A repository without the module has none.
func DefaultProviders(ctx context.Context, root string, log *slog.Logger) ([]string, error) {
	pom := filepath.Join(ExtensionDir(root), "pom.xml")
	if _, err := os.Stat(pom); errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	jar := ExtensionJAR(root)
	// Parallel test packages may all get here: one builds, the others wait.
	unlock, err := lockFile(filepath.Join(os.TempDir(), "umawide-extension-build.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	stale, err := olderThanSources(jar, pom, filepath.Join(ExtensionDir(root), "src", "main"))
	if err != nil {
		return nil, err
	}
	if stale {
		if log == nil {
			log = slog.Default()
		}
		log.Info("building the Keycloak extension", "module", ExtensionDir(root))
		cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-f", pom, "package", "-DskipTests")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("launcher: building the extension (mvn package): %w\n%s", err, out)
		}
	}
	return []string{jar}, nil
}

// olderThanSources reports whether target is missing or older than any file
// among sources (files or folders walked recursively).
func olderThanSources(target string, sources ...string) (bool, error) {
	ti, err := os.Stat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	newer := errors.New("newer")
	for _, src := range sources {
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.ModTime().After(ti.ModTime()) {
				return newer
			}
			return nil
		})
		if errors.Is(err, newer) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// lockFile takes an exclusive advisory lock, waiting for it; the returned
// function releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("launcher: lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("launcher: lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
