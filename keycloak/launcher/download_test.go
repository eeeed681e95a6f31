package launcher

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestDownloadLine(t *testing.T) {
	for line, want := range map[string]string{
		"[INFO] Downloading from central: https://repo.maven.apache.org/maven2/org/keycloak/keycloak-quarkus-dist/26.5.6/keycloak-quarkus-dist-26.5.6.zip": "Downloading from central: https://repo.maven.apache.org/maven2/org/keycloak/keycloak-quarkus-dist/26.5.6/keycloak-quarkus-dist-26.5.6.zip",
		"Downloaded from central: https://x/y.jar (160 MB at 9.1 MB/s)":                                                                                    "Downloaded from central: https://x/y.jar (160 MB at 9.1 MB/s)",
		"[INFO] BUILD SUCCESS":               "",
		"[INFO] Scanning for projects...":    "",
		"Progress (1): 12/160 MB":            "",
		"[ERROR] Failed to execute goal ...": "",
	} {
		got, ok := downloadLine(line)
		if got != want || ok != (want != "") {
			t.Errorf("downloadLine(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 1_500_000: "1.5 MB", 160_200_000: "160.2 MB", 2_000_000_000: "2.0 GB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// watch reports a growing download's size; it says nothing while nothing
// is there.
func TestWatchReportsSizeSoFar(t *testing.T) {
	old := progressEvery
	progressEvery = 10 * time.Millisecond
	t.Cleanup(func() { progressEvery = old })
	dir := t.TempDir()
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { watch(log, filepath.Join(dir, "repo"), time.Now(), stop); close(done) }()
	if err := os.MkdirAll(filepath.Join(dir, "repo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "repo", "keycloak.zip.part"), make([]byte, 1_500_000), 0o644); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "so_far=\"1.5 MB\"") {
		time.Sleep(5 * time.Millisecond) // until watch has seen the file (the test's own timeout bounds it)
	}
	close(stop)
	<-done
	if n := strings.Count(out.String(), "so_far="); n != 1 {
		t.Errorf("%d reports for one size, want 1:\n%s", n, out.String())
	}
}

// fetchDistribution runs mvn (here a stand-in on PATH that prints what
// Maven prints) and passes its download lines on; a failure carries
// Maven's last lines.
func TestFetchDistributionSaysWhatItFetches(t *testing.T) {
	bin := t.TempDir()
	script := `#!/bin/sh
for a in "$@"; do case "$a" in -DoutputDirectory=*) out="${a#-DoutputDirectory=}";; -Dartifact=*) art="${a#-Dartifact=}";; esac; done
echo "[INFO] Scanning for projects..."
echo "[INFO] Downloading from central: https://repo.maven.apache.org/maven2/$art"
echo "[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/$art (160 MB at 9.1 MB/s)"
if [ -n "$FAKE_MVN_FAIL" ]; then echo "[ERROR] Could not transfer artifact"; exit 1; fi
mkdir -p "$out" && echo zip > "$out/keycloak-quarkus-dist-` + Version + `.zip"
echo "[INFO] BUILD SUCCESS"
`
	if err := os.WriteFile(filepath.Join(bin, "mvn"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("MAVEN_OPTS", "-Dmaven.repo.local="+filepath.Join(t.TempDir(), "m2"))
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	dl := t.TempDir()
	if err := fetchDistribution(context.Background(), log, dl, Version); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"fetching the Keycloak distribution with Maven",
		"artifact=org.keycloak:keycloak-quarkus-dist:" + Version + ":zip",
		"maven: Downloading from central: https://repo.maven.apache.org/maven2/org.keycloak:keycloak-quarkus-dist",
		"(160 MB at 9.1 MB/s)",
		"Keycloak distribution fetched",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Scanning for projects") || strings.Contains(got, "BUILD SUCCESS") {
		t.Errorf("log has Maven's other lines:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(dl, "keycloak-quarkus-dist-"+Version+".zip")); err != nil {
		t.Fatal(err)
	}

	t.Setenv("FAKE_MVN_FAIL", "1")
	err := fetchDistribution(context.Background(), log, t.TempDir(), Version)
	if err == nil || !strings.Contains(err.Error(), "[ERROR] Could not transfer artifact") {
		t.Fatalf("a failing mvn: %v, want an error with Maven's last lines", err)
	}
}
