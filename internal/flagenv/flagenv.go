// Package flagenv parses a command line the one way umawide's programs do:
// every flag has an environment variable (a prefix and the flag name in
// upper case, '-' as '_') read when the flag is not on the command line.
// Set is the services' flag set: -h lists each flag with its variable, and a
// secret can be given by value or in a file, never both; the RqP client
// uses ParseWithEnv under its own usage text.
//
// An empty environment variable counts as unset: the flag keeps its default
// (compose files and shells pass empty variables where they mean "not
// given"). To say "none" where a default allows something, a flag takes a
// value of its own ("-"). Set reports the empty variables it passed over
// (Ignored), so that a service can log them. Environment values are applied
// after the command line is parsed, so -h shows the built-in defaults and
// never a value from the environment.
package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Set is a flag set with environment fallbacks. Define flags on its
// FlagSet as usual, then call Parse.
type Set struct {
	*flag.FlagSet
	prefix  string
	header  string
	noEnv   map[string]bool
	secrets []*secret
	ignored []string
}

// New is an empty Set for the program name whose environment variables
// start with envPrefix ("CLAIMS_PROVIDER_"); usage and errors go to out.
// header is printed by -h before the list of flags.
func New(name, envPrefix, header string, out io.Writer) *Set {
	s := &Set{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), prefix: envPrefix, header: header, noEnv: map[string]bool{}}
	s.SetOutput(out)
	s.Usage = s.usage
	return s
}

// EnvName is the environment variable of a flag.
func (s *Set) EnvName(flagName string) string { return EnvName(s.prefix, flagName) }

// EnvName is the environment variable of a flag of a program whose
// variables start with prefix: prefix and the flag name in upper case, '-'
// as '_'.
func EnvName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// NoEnv marks a flag that has no environment variable.
func (s *Set) NoEnv(flagName string) { s.noEnv[flagName] = true }

// Parse parses args, then sets each flag not given from its environment
// variable (ParseWithEnv; lookupEnv is os.LookupEnv in main), then reads the
// secrets. -h answers flag.ErrHelp.
func (s *Set) Parse(args []string, lookupEnv func(string) (string, bool)) error {
	ignored, err := ParseWithEnv(s.FlagSet, args, s.prefix, lookupEnv, func(name string) bool { return s.noEnv[name] })
	s.ignored = ignored
	if err != nil {
		return err
	}
	for _, sc := range s.secrets {
		if err := sc.resolve(); err != nil {
			return err
		}
	}
	return nil
}

// Ignored are the environment variables Parse passed over because they
// were set but empty.
func (s *Set) Ignored() []string { return s.ignored }

// ParseWithEnv parses args with fs and refuses extra arguments; then it sets
// each flag not given on the command line, and not excluded by noEnv (nil:
// none is), from its environment variable when that is set and not empty
// (Lookup). It returns the variables passed over for being empty.
func ParseWithEnv(fs *flag.FlagSet, args []string, prefix string, lookupEnv func(string) (string, bool), noEnv func(string) bool) (ignored []string, err error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || (noEnv != nil && noEnv(f.Name)) {
			return
		}
		name := EnvName(prefix, f.Name)
		v, ok := Lookup(lookupEnv, name)
		if !ok {
			if _, set := lookupEnv(name); set {
				ignored = append(ignored, name)
			}
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("$%s: %w", name, err))
		}
	})
	return ignored, errors.Join(errs...)
}

// Lookup is the value of the environment variable name, ok only when it is
// set and not empty: an empty variable counts as unset.
func Lookup(lookupEnv func(string) (string, bool), name string) (string, bool) {
	v, ok := lookupEnv(name)
	return v, ok && v != ""
}

// MapEnv looks variables up in m, as os.LookupEnv does in the process's
// environment: a fixed environment for tests.
func MapEnv(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// List splits a comma-separated flag value into its non-empty, trimmed
// items.
func List(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *Set) usage() {
	out := s.Output()
	fmt.Fprint(out, s.header)
	if !strings.HasSuffix(s.header, "\n") {
		fmt.Fprintln(out)
	}
	fmt.Fprint(out, "\nFlags (each also read from the environment variable shown; a flag on the command line wins):\n")
	s.VisitAll(func(f *flag.Flag) {
		env := "no environment variable"
		if !s.noEnv[f.Name] {
			env = "$" + s.EnvName(f.Name)
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(out, "  -%s  [%s]\n      %s%s\n", f.Name, env, f.Usage, def)
	})
}
