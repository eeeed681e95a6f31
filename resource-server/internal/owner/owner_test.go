package owner

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	good := []string{"bob", "b", "7", "bob.builder", "bob_2", "a-b.c_d", strings.Repeat("a", MaxLen), "service-accounts", "x-service-account-y"}
	bad := []string{
		"", "Bob", "BOB", "bob ", " bob", "bo b", "bob/x", "bob%2fx", "b%6fb", ".", "..", ".bob", "bob.", "bob..x",
		"-bob", "bob-", "_bob", "bob._x", "bob@bar.example", "bób", "bob\u200b", "ｂｏｂ", "bob\x00", "bob\n",
		strings.Repeat("a", MaxLen+1), "service-account-rqp-client", "bob;drop", "bob?x", "bob#x", "bob\\x", "bob+x",
	}
	for _, n := range good {
		if !Valid(n) {
			t.Errorf("Valid(%q) = false, want true", n)
		}
	}
	for _, n := range bad {
		if Valid(n) {
			t.Errorf("Valid(%q) = true, want false", n)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range []string{"bob", "Bob", "a..b", "ｂｏｂ", "%2e%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !Valid(s) {
			return
		}
		if strings.ToLower(s) != s || strings.ContainsAny(s, "/%@ \\?#") || strings.Contains(s, "..") || len(s) > MaxLen {
			t.Fatalf("Valid(%q) accepted a name outside the rules", s)
		}
		for _, r := range s {
			if r > 0x7f {
				t.Fatalf("Valid(%q) accepted non-ASCII", s)
			}
		}
	})
}
