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

func TestPersistentSessionsOff(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	for _, tc := range []struct {
		name string
		os   map[string]string
		opts map[string]string
		want bool
	}{
		{"default", nil, nil, true},
		{"features disabled set", map[string]string{"KC_FEATURES_DISABLED": "impersonation"}, nil, false},
		{"features set in options", nil, map[string]string{"KC_FEATURES": "persistent-user-sessions"}, false},
		{"opted out", map[string]string{"UMAWIDE_KEYCLOAK_PERSISTENT_SESSIONS": "true"}, nil, false},
		{"empty values ignored", map[string]string{"KC_FEATURES_DISABLED": ""}, map[string]string{"KC_FEATURES": ""}, true},
	} {
		if got := persistentSessionsOff(env(tc.os), tc.opts); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
