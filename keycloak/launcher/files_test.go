package launcher

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestExpandPlaceholders(t *testing.T) {
	t.Setenv("UMAWIDE_TEST_FROM_ENV", `a"b`)
	in := `{"a":"${UMAWIDE_TEST_UNSET:def}","b":"${UMAWIDE_TEST_FROM_ENV:x}","c":"${UMAWIDE_TEST_VAR}","d":"${UMAWIDE_TEST_UNSET}","e":"${UMAWIDE_TEST_UNSET:}"}`
	got := string(ExpandPlaceholders([]byte(in), map[string]string{"UMAWIDE_TEST_VAR": "v"}))
	want := `{"a":"def","b":"a\"b","c":"v","d":"${UMAWIDE_TEST_UNSET}","e":""}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestOlderThanSources(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src", "A.java")
	jar := filepath.Join(dir, "x.jar")
	os.MkdirAll(filepath.Dir(src), 0o755)
	os.WriteFile(src, []byte("x"), 0o644)
	if stale, _ := olderThanSources(jar, filepath.Join(dir, "src")); !stale {
		t.Fatal("missing JAR not stale")
	}
	os.WriteFile(jar, []byte("x"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(src, old, old)
	if stale, _ := olderThanSources(jar, filepath.Join(dir, "src")); stale {
		t.Fatal("fresh JAR stale")
	}
	os.Chtimes(src, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	if stale, _ := olderThanSources(jar, filepath.Join(dir, "src")); !stale {
		t.Fatal("JAR older than a source not stale")
	}
}
