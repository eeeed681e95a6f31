// Package cli is the rqp-client command: flag parsing with environment
// fallbacks, the push and inbox subcommands, and their output. main only
// calls Main.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/umawide/umawide/internal/flagenv"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// Exit statuses, one per failure kind, so scripts can tell them apart.
const (
	ExitOK          = 0
	ExitFailure     = 1 // anything not classified below
	ExitUsage       = 2 // bad flags, bad configuration, unreadable input
	ExitDenied      = 3 // the owner's authorization server denied the RPT
	ExitRefused     = 4 // a service refused the request (4xx)
	ExitUnreachable = 5 // a service did not answer
	ExitLogin       = 6 // the login failed, was cancelled or timed out
	ExitProtocol    = 7 // an answer broke the contract
	ExitServer      = 8 // a service failed (5xx) or is unavailable
)

// EnvPrefix is the prefix of every environment fallback: flag --as-issuer of
// push reads RQP_CLIENT_AS_ISSUER, flag --login-user of inbox reads
// RQP_CLIENT_INBOX_LOGIN_USER.
const EnvPrefix = "RQP_CLIENT_"

// Env is the process environment (tests pass their own).
type Env func(string) (string, bool)

// IO bundles the command's streams and environment.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         Env
	// OpenBrowser opens a URL in a browser if one exists; nil: never.
	OpenBrowser func(url string) bool
}

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, args []string, sio IO) int {
	if sio.Getenv == nil {
		sio.Getenv = os.LookupEnv
	}
	if len(args) == 0 {
		usage(sio.Stderr)
		return ExitUsage
	}
	switch args[0] {
	case "push":
		return push(ctx, args[1:], sio)
	case "inbox", "list":
		return inbox(ctx, args[1:], sio)
	case "-h", "-help", "--help", "help":
		usage(sio.Stdout)
		return ExitOK
	}
	fmt.Fprintf(sio.Stderr, "rqp-client: unknown command %q\n", args[0])
	usage(sio.Stderr)
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: rqp-client <command> [flags]

commands:
  push    push a file into someone's Incoming (UMA wide ecosystem, steps 1-10)
  inbox   list (or fetch) the messages of your own Incoming, after logging in

Run "rqp-client <command> -h" for the flags of a command. Every flag also
reads an environment variable (shown as [$NAME] in the flag list).

exit status: 0 ok, 2 usage or configuration, 3 denied by the authorization
server, 4 refused by a service, 5 a service unreachable, 6 login failed,
7 unexpected answer, 8 a service failed, 1 anything else.
`)
}

// flagSet is a FlagSet whose unset flags fall back to environment
// variables, named in -h.
type flagSet struct {
	*flag.FlagSet
	envPrefix string
}

func newFlagSet(name, envPrefix, synopsis string, w io.Writer) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	f := &flagSet{FlagSet: fs, envPrefix: envPrefix}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: rqp-client %s\n\nflags (each falls back to the environment variable in brackets):\n", synopsis)
		fs.PrintDefaults()
	}
	return f
}

func (f *flagSet) envName(flagName string) string { return flagenv.EnvName(f.envPrefix, flagName) }

// parse parses args, then fills every flag not given from its variable (an
// empty one counts as unset), as the services do (internal/flagenv).
func (f *flagSet) parse(args []string, getenv Env) error {
	f.VisitAll(func(fl *flag.Flag) { fl.Usage += " [$" + f.envName(fl.Name) + "]" })
	_, err := flagenv.ParseWithEnv(f.FlagSet, args, f.envPrefix, getenv, nil)
	return err
}

// isSet reports whether a flag was given on the command line or by its
// variable (after parse).
func (f *flagSet) isSet(name string, getenv Env) bool {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	if !set {
		_, set = flagenv.Lookup(getenv, f.envName(name))
	}
	return set
}

// secret resolves a secret given inline (flag or variable, or its default)
// or in a file (-file flag): a file wins over the default, both given
// explicitly is an error.
func (f *flagSet) secret(value, fileFlag string, getenv Env) (string, error) {
	path := f.Lookup(fileFlag).Value.String()
	if path == "" {
		return value, nil
	}
	inline := strings.TrimSuffix(fileFlag, "-file")
	if f.isSet(inline, getenv) {
		return "", fmt.Errorf("give either --%s or --%s, not both", inline, fileFlag)
	}
	return readSecretFile(path)
}

func readSecretFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, 4097))
	if err != nil {
		return "", err
	}
	if len(data) > 4096 {
		return "", fmt.Errorf("%s: longer than 4096 bytes", path)
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// exitStatus maps an error to the documented exit status.
func exitStatus(err error) int {
	if errors.Is(err, context.Canceled) {
		return ExitFailure // interrupted
	}
	var se *rqp.StepError
	if !errors.As(err, &se) {
		return ExitFailure
	}
	switch se.Kind {
	case rqp.KindConfig:
		return ExitUsage
	case rqp.KindDenied:
		return ExitDenied
	case rqp.KindRefused:
		return ExitRefused
	case rqp.KindUnreachable:
		return ExitUnreachable
	case rqp.KindLogin:
		return ExitLogin
	case rqp.KindProtocol:
		return ExitProtocol
	case rqp.KindServer:
		return ExitServer
	}
	return ExitFailure
}

// oneLine keeps a message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fmtDuration prints durations the way a person reads them.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}
