package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/umawide/umawide/internal/formlogin"
	"github.com/umawide/umawide/rqp-client/rqp"
)

// LoginURLPrefix starts the line that carries the login URL on stderr
// (scripts and tests look for it).
const LoginURLPrefix = "login URL: "

// loginFlags are the flags of an interactive login, shared by push --login
// and inbox.
type loginFlags struct {
	noBrowser    bool
	timeout      time.Duration
	user         string
	passwordFile string
	listen       string
}

func (l *loginFlags) define(fs *flag.FlagSet, envPrefix string) {
	fs.BoolVar(&l.noBrowser, "no-browser", false, "do not try to open a browser; only print the login URL")
	fs.DurationVar(&l.timeout, "login-timeout", rqp.DefaultLoginTimeout, "how long to wait for the login to complete")
	fs.StringVar(&l.user, "login-user", "", "log in WITHOUT a browser as this user, by submitting the Keycloak login form over HTTP (demos, scripts); the password comes from --login-password-file or $"+envPrefix+"LOGIN_PASSWORD")
	fs.StringVar(&l.passwordFile, "login-password-file", "", "file holding the --login-user password")
	fs.StringVar(&l.listen, "login-listen", "127.0.0.1:0", "loopback address of the redirect receiver (port 0: a free one)")
}

// login builds the rqp.Login: a scripted form login for --login-user, else
// printing the URL and opening a browser where one exists.
func (l *loginFlags) login(envPrefix string, sio IO, getenv Env) (*rqp.Login, error) {
	lg := &rqp.Login{Timeout: l.timeout, ListenAddr: l.listen}
	if l.user != "" {
		pw, ok := getenv(envPrefix + "LOGIN_PASSWORD")
		if l.passwordFile != "" {
			if ok {
				return nil, fmt.Errorf("give either --login-password-file or $%sLOGIN_PASSWORD, not both", envPrefix)
			}
			var err error
			if pw, err = readSecretFile(l.passwordFile); err != nil {
				return nil, fmt.Errorf("--login-password-file: %w", err)
			}
		} else if !ok || pw == "" {
			return nil, fmt.Errorf("--login-user needs a password: --login-password-file or $%sLOGIN_PASSWORD", envPrefix)
		}
		scripted := formlogin.OpenURL(l.user, pw, nil)
		lg.OpenURL = func(ctx context.Context, authURL string) error {
			fmt.Fprintf(sio.Stderr, "rqp-client: logging in as %s through the login form (no browser)\n", l.user)
			return scripted(ctx, authURL)
		}
		return lg, nil
	}
	lg.OpenURL = func(ctx context.Context, authURL string) error {
		fmt.Fprintf(sio.Stderr, "rqp-client: log in with your browser; waiting up to %s.\n%s%s\n", l.timeout, LoginURLPrefix, authURL)
		if !l.noBrowser && sio.OpenBrowser != nil && sio.OpenBrowser(authURL) {
			fmt.Fprintln(sio.Stderr, "rqp-client: opened a browser")
		}
		return nil
	}
	return lg, nil
}

// OpenBrowser starts the desktop's URL opener where there is a desktop; it
// never waits for it and never fails the command.
func OpenBrowser(url string) bool {
	var name string
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "linux", "freebsd", "openbsd", "netbsd":
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return false
		}
		name = "xdg-open"
	default:
		return false
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return false
	}
	cmd := exec.Command(path, url)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return false
	}
	go func() { _ = cmd.Wait() }()
	return true
}
