// Command demo is make demo-federation: two organisations that never met
// (foo.example and bar.example, each with its own Keycloak, Claims Provider,
// Resource Server and HTTPS front in its own network namespace), Alice
// pushing to bob@bar.example and Bob back to alice@foo.example by address,
// each step shown as make demo shows it, then each owner's Incoming. It
// stops everything when it ends. It needs root (network namespaces).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/umawide/umawide/internal/ecosystem"
	"github.com/umawide/umawide/internal/stack"
	"github.com/umawide/umawide/keycloak/launcher"
)

func main() {
	if err := ecosystem.Available(); err != nil {
		fmt.Fprintf(os.Stderr, "make demo-federation: %v\n(run it as root: sudo make demo-federation)\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "make demo-federation: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	root, err := launcher.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "umawide-federation-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	say("building the programs")
	bin, err := stack.Build(ctx, filepath.Join(dir, "bin"), "claims-provider", "resource-server", "rqp-client")
	if err != nil {
		return err
	}
	alice := ecosystem.Person{Username: "alice", Password: "alice-password"}
	bob := ecosystem.Person{Username: "bob", Password: "bob-password"}
	say("starting foo.example and bar.example (a Keycloak each, Keycloak %s; a few minutes on a busy machine)", launcher.Version)
	start := time.Now()
	e, err := ecosystem.New(ctx, ecosystem.Options{Dir: dir, Bin: bin, Logger: log},
		ecosystem.OrgSpec{Domain: "foo.example", People: []ecosystem.Person{alice}},
		ecosystem.OrgSpec{Domain: "bar.example", People: []ecosystem.Person{bob}},
	)
	if err != nil {
		return err
	}
	defer e.Close()
	for _, d := range []string{"foo.example", "bar.example"} {
		o := e.Orgs[d]
		fmt.Printf("   %-12s %s  Keycloak %s at %s, Claims Provider %s, Resource Server %s\n", d, o.IP, o.KeycloakVersion, o.Issuer(), o.CPURL(), o.RSURL())
	}
	fmt.Printf("   up in %s; each knows only its own realm; they find each other by WebFinger and discovery\n", time.Since(start).Round(time.Second))

	file := filepath.Join(root, "testdata", "demo", "hello-bob.txt")
	for _, p := range []struct {
		from, user, to string
	}{
		{"foo.example", "alice", "bob@bar.example"},
		{"bar.example", "bob", "alice@foo.example"},
	} {
		say("%s@%s pushes %s to %s (by address: WebFinger, then dynamic registration at an AS it never met)", p.user, p.from, filepath.Base(file), p.to)
		cmd, err := e.PushCommand(ctx, p.from, p.user, p.to, file)
		if err != nil {
			return err
		}
		if err := show(cmd); err != nil {
			return err
		}
	}
	for _, x := range []struct {
		domain string
		p      ecosystem.Person
	}{{"bar.example", bob}, {"foo.example", alice}} {
		say("%s@%s reads their Incoming, logged in at their own realm", x.p.Username, x.domain)
		if err := show(e.InboxCommand(ctx, x.domain, x.p)); err != nil {
			return err
		}
	}
	say("stopping both organisations")
	return nil
}

func say(format string, args ...any) {
	fmt.Printf("\n== "+format+"\n", args...)
}

func show(cmd *exec.Cmd) error {
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	return cmd.Run()
}
