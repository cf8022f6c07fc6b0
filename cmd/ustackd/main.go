// Command ustackd runs a ustack stack as a process of its own, attached to
// real links (TAP, TUN, AF_PACKET) and configured by a YAML file:
//
//	ustackd -c /etc/ustackd.yaml [-log-level info]
//
// It logs to stderr. SIGINT or SIGTERM shut it down cleanly (services
// stopped, links closed, TAP devices it created removed) with status 0; a
// configuration error is one line on stderr and status 2; a failure to
// bring the configuration up is status 1. See package daemon for the file
// syntax.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"ustack/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("ustackd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("c", "", "configuration `file` (YAML)")
	level := fs.String("log-level", "info", "least severe log `level`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ustackd -c FILE [-log-level LEVEL]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *config == "" || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "ustackd: -log-level %q: want debug, info, warn or error\n", *level)
		return 2
	}
	cfg, err := daemon.LoadConfig(*config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	if err := daemon.Run(ctx, cfg, log); err != nil {
		fmt.Fprintf(stderr, "ustackd: %v\n", err)
		return 1
	}
	return 0
}
