package flagenv

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

var env = MapEnv

type conf struct {
	listen, list, secret string
	wait                 time.Duration
	once                 bool
}

func newSet(out *bytes.Buffer) (*Set, *conf) {
	c := &conf{}
	s := New("svc", "SVC_", "Usage: svc [flags]", out)
	s.StringVar(&c.listen, "listen", "127.0.0.1:1", "address")
	s.StringVar(&c.list, "on-behalf", "a,b", "clients")
	s.DurationVar(&c.wait, "wait", time.Second, "how long")
	s.BoolVar(&c.once, "once", false, "once")
	s.NoEnv("once")
	s.Secret(&c.secret, "client-secret", "the secret")
	return s, c
}

func TestFlagsWinOverTheEnvironment(t *testing.T) {
	s, c := newSet(&bytes.Buffer{})
	err := s.Parse([]string{"-listen", "0.0.0.0:2"}, env(map[string]string{
		"SVC_LISTEN": "ignored", "SVC_WAIT": "5s", "SVC_ONCE": "true", "SVC_CLIENT_SECRET": "s3cret",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "0.0.0.0:2" || c.wait != 5*time.Second || c.once || c.secret != "s3cret" || c.list != "a,b" {
		t.Fatalf("%+v", c)
	}
}

// An empty variable counts as unset: the default stays, and Ignored names
// the variable.
func TestEmptyVariableIsUnset(t *testing.T) {
	s, c := newSet(&bytes.Buffer{})
	if err := s.Parse(nil, env(map[string]string{"SVC_ON_BEHALF": "", "SVC_WAIT": "", "SVC_LISTEN": "0.0.0.0:3", "SVC_ONCE": ""})); err != nil {
		t.Fatal(err)
	}
	if c.list != "a,b" || c.wait != time.Second || c.listen != "0.0.0.0:3" {
		t.Fatalf("%+v", c)
	}
	if got := s.Ignored(); !slices.Equal(got, []string{"SVC_ON_BEHALF", "SVC_WAIT"}) {
		t.Fatalf("ignored %v", got)
	}
	if v, ok := Lookup(env(map[string]string{"X": ""}), "X"); ok || v != "" {
		t.Fatalf("Lookup of an empty variable: %q %v", v, ok)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"extra"}, nil, "unexpected"},
		{nil, map[string]string{"SVC_WAIT": "soon", "SVC_LISTEN": "x"}, "SVC_WAIT"},
		{[]string{"-wait", "soon"}, nil, "wait"},
		{[]string{"-client-secret", "x", "-client-secret-file", "f"}, nil, "once"},
		{[]string{"-client-secret-file", "f"}, map[string]string{"SVC_CLIENT_SECRET": "x"}, "once"},
	} {
		s, _ := newSet(&bytes.Buffer{})
		if err := s.Parse(tc.args, env(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: %v, want an error about %s", tc.args, tc.env, err, tc.want)
		}
	}
}

// -h lists every flag with its variable and its built-in default, never a
// value from the environment.
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	s, _ := newSet(&out)
	err := s.Parse([]string{"-h"}, env(map[string]string{"SVC_CLIENT_SECRET": "TOPSECRET", "SVC_LISTEN": "10.0.0.1:9"}))
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	help := out.String()
	if strings.Contains(help, "TOPSECRET") || strings.Contains(help, "10.0.0.1") {
		t.Fatalf("-h shows the environment:\n%s", help)
	}
	for _, want := range []string{"Usage: svc [flags]\n", "-listen  [$SVC_LISTEN]", `(default "127.0.0.1:1")`,
		"-client-secret  [$SVC_CLIENT_SECRET]", "-client-secret-file  [$SVC_CLIENT_SECRET_FILE]", "-once  [no environment variable]"} {
		if !strings.Contains(help, want) {
			t.Errorf("-h lacks %q:\n%s", want, help)
		}
	}
}

func TestList(t *testing.T) {
	if got := List(" a, ,b ,"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatal(got)
	}
	if got := List(""); got != nil {
		t.Fatal(got)
	}
}
