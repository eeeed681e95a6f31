package launcher

import "testing"

func TestAtLeast(t *testing.T) {
	for _, c := range []struct {
		have, want string
		ok         bool
	}{
		{"26.7.3", "26.6", true},
		{"26.6.0", "26.6", true},
		{"26.5.6", "26.6", false},
		{"26.10.0", "26.9", true},
		{"27.0.0", "26.6", true},
		{"25.0.6", "26.6", false},
		{"", "26.6", Version >= "26.6"}, // the pinned version
	} {
		if got := (&Keycloak{Version: c.have}).AtLeast(c.want); got != c.ok {
			t.Errorf("Keycloak %q AtLeast(%q) = %v, want %v", c.have, c.want, got, c.ok)
		}
	}
}
