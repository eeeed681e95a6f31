// Command rqp-client is the RqP client of the UMA wide ecosystem: it pushes a
// file from a sender (Alice) into an owner's (Bob's) Incoming through the ten
// steps of the UMA 2.0 grant with a Claims Provider, and lets an owner read
// his Incoming. Run "rqp-client -h"; see rqp-client/README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/umawide/umawide/rqp-client/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.IO{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv: os.LookupEnv, OpenBrowser: cli.OpenBrowser,
	})
	stop()
	os.Exit(code)
}
