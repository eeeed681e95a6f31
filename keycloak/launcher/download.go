package launcher

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// distGroupPath is where Maven keeps the distribution of a version in its
// local repository (org.keycloak:keycloak-quarkus-dist:<version>).
func distGroupPath(version string) string {
	return filepath.Join("org", "keycloak", "keycloak-quarkus-dist", version)
}

// progressEvery is how often a running download reports its size so far
// (a variable for the tests).
var progressEvery = 5 * time.Second

// fetchDistribution copies the distribution's zip into dir with Maven
// (dependency:copy: Maven's own download, checksums and local repository),
// saying what it fetches and how far it is: the first use downloads about
// 160 MB of Keycloak, plus Maven's dependency plugin where it is not cached.
func fetchDistribution(ctx context.Context, log *slog.Logger, dir, version string) error {
	artifact := "org.keycloak:keycloak-quarkus-dist:" + version + ":zip"
	repo := localMavenRepo()
	log.Info("fetching the Keycloak distribution with Maven (first use only: about 160 MB, plus Maven's plugins if not cached)",
		"artifact", artifact, "from", "Maven Central", "maven_repository", repo, "into", dir)
	// No -q: Maven names each file it fetches ("Downloading from ...",
	// "Downloaded from ... (size at rate)"). Batch mode: no progress
	// bars full of carriage returns; the size so far comes from watch.
	cmd := exec.CommandContext(ctx, "mvn", "-B", "-Dstyle.color=never", "dependency:copy",
		"-Dartifact="+artifact, "-DoutputDirectory="+dir)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("launcher: downloading %s: starting mvn: %w", artifact, err)
	}
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watch(log, filepath.Join(repo, distGroupPath(version)), time.Now(), stopWatch)
	}()
	waited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.Close()
		waited <- err
	}()
	tail := relayMaven(log, pr)
	err := <-waited
	close(stopWatch)
	<-watched
	if err != nil {
		return fmt.Errorf("launcher: downloading %s with mvn: %w\n%s", artifact, err, strings.Join(tail, "\n"))
	}
	log.Info("Keycloak distribution fetched", "into", dir)
	return nil
}

// relayMaven passes Maven's download lines on to the log and returns the
// last lines of its output (for an error message).
func relayMaven(log *slog.Logger, r io.Reader) []string {
	const keep = 40
	var tail []string
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		line := s.Text()
		if msg, ok := downloadLine(line); ok {
			log.Info("maven: " + msg)
		}
		tail = append(tail, line)
		if len(tail) > keep {
			tail = tail[1:]
		}
	}
	_, _ = io.Copy(io.Discard, r) // a line too long for the scanner: let Maven finish
	return tail
}

// downloadLine picks Maven's lines about a transfer ("Downloading from
// central: URL", "Downloaded from central: URL (160 MB at 9.1 MB/s)").
func downloadLine(line string) (string, bool) {
	msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "[INFO]"))
	if strings.HasPrefix(msg, "Downloading from ") || strings.HasPrefix(msg, "Downloaded from ") {
		return msg, true
	}
	return "", false
}

// watch logs the size of the files in dir (Maven's partial download of
// the zip sits there under a temporary name) every progressEvery until stop
// closes, once it grows.
func watch(log *slog.Logger, dir string, start time.Time, stop <-chan struct{}) {
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	var last int64
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		size := dirSize(dir)
		if size == last {
			continue // nothing new: Maven fetches its plugins, or waits
		}
		last = size
		elapsed := time.Since(start)
		log.Info("fetching the Keycloak distribution", "so_far", formatBytes(size),
			"rate", formatBytes(int64(float64(size)/elapsed.Seconds()))+"/s", "elapsed", elapsed.Round(time.Second).String())
	}
}

// dirSize is the total size of the regular files directly in dir (0 when
// it does not exist yet).
func dirSize(dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err == nil {
			total += info.Size()
		}
	}
	return total
}

// localMavenRepo is Maven's local repository: ~/.m2/repository unless
// MAVEN_OPTS or MAVEN_ARGS name another with -Dmaven.repo.local (a
// settings.xml that moves it only costs the size-so-far reports).
func localMavenRepo() string {
	for _, v := range []string{os.Getenv("MAVEN_ARGS"), os.Getenv("MAVEN_OPTS")} {
		for _, f := range strings.Fields(v) {
			if p, ok := strings.CutPrefix(f, "-Dmaven.repo.local="); ok {
				return p
			}
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".m2", "repository")
	}
	return filepath.Join(home, ".m2", "repository")
}

// formatBytes writes a size for people: 0 B, 512 B, 1.5 MB, 160.2 MB.
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGT"[exp])
}
