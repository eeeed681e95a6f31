// Package flagenv parses a service's command line the one way both umawide
// services do: every flag has an environment variable (a prefix and the flag
// name in upper case, '-' as '_') read when the flag is not on the command
// line; -h lists each flag with its variable; a secret can be given by value
// or in a file, never both.
//
// An environment variable that is set counts, even when empty: it sets the
// flag to "" exactly as -name= would on the command line (so
// CLAIMS_PROVIDER_ON_BEHALF_CLIENTS= allows no client, rather than falling
// back to a default that allows one). Environment values are applied after
// the command line is parsed, so -h shows the built-in defaults and never a
// value from the environment.
package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxSecretFileBytes bounds a secret file.
const MaxSecretFileBytes = 4 << 10

// Set is a flag set with environment fallbacks. Define flags on its
// FlagSet as usual, then call Parse.
type Set struct {
	*flag.FlagSet
	prefix  string
	header  string
	noEnv   map[string]bool
	secrets []*secret
}

type secret struct {
	p               *string
	name, fileName  string
	value, fromFile string
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

// Secret defines -name and -name-file for a secret: Parse stores in p the
// value, or the trimmed content of the file (at most MaxSecretFileBytes, not
// empty); both at once are refused. Neither has a default, so -h never shows
// one.
func (s *Set) Secret(p *string, name, usage string) {
	sc := &secret{p: p, name: name, fileName: name + "-file"}
	s.secrets = append(s.secrets, sc)
	s.StringVar(&sc.value, name, "", usage+" (prefer -"+sc.fileName+" or the environment: command lines are visible to other users)")
	s.StringVar(&sc.fromFile, sc.fileName, "", "file holding the "+strings.ReplaceAll(name, "-", " "))
}

// Parse parses args, then sets each flag not given from its environment
// variable (looked up with lookupEnv, os.LookupEnv in main), then reads the
// secrets. Extra arguments are refused. -h answers flag.ErrHelp.
func (s *Set) Parse(args []string, lookupEnv func(string) (string, bool)) error {
	if err := s.FlagSet.Parse(args); err != nil {
		return err
	}
	if s.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", s.Args())
	}
	given := map[string]bool{}
	s.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	s.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || s.noEnv[f.Name] {
			return
		}
		if v, ok := lookupEnv(s.EnvName(f.Name)); ok {
			if err := s.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("$%s: %w", s.EnvName(f.Name), err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, sc := range s.secrets {
		if err := sc.resolve(); err != nil {
			return err
		}
	}
	return nil
}

func (sc *secret) resolve() error {
	switch {
	case sc.value != "" && sc.fromFile != "":
		return fmt.Errorf("give the %s once: -%s or -%s", strings.ReplaceAll(sc.name, "-", " "), sc.name, sc.fileName)
	case sc.fromFile != "":
		v, err := ReadSecretFile(sc.fromFile)
		if err != nil {
			return fmt.Errorf("-%s: %w", sc.fileName, err)
		}
		*sc.p = v
	default:
		*sc.p = sc.value
	}
	return nil
}

// ReadSecretFile reads a secret from a file: at most MaxSecretFileBytes,
// white space around it trimmed, not empty.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSecretFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxSecretFileBytes {
		return "", fmt.Errorf("%s: larger than %d bytes", path, MaxSecretFileBytes)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
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
