// Command ustack is the command-line tool of ustack: one binary with a
// subcommand per tool.
//
// For now every tool runs standalone: it brings up a stack of its own on
// the link named by --link (needing the privileges that link needs), or,
// for demo, an in-process network needing none. Once ustackd serves a
// control API, the tools will talk to a daemon through ctl/client instead.
//
// Each subcommand is a function taking its arguments and standard streams
// and returning the exit status, so tests run them in-process with the
// link opener replaced by pipes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"ustack/daemon"
	"ustack/link"
	"ustack/wire"
)

// cli holds what the subcommands take from the outside world.
type cli struct {
	// openLink opens a --link spec (daemon.OpenLink).
	openLink daemon.LinkOpener
	// openPromisc opens a host interface in promiscuous mode for impair.
	openPromisc func(ifname string) (link.Endpoint, error)
}

type command struct {
	name, args, summary string
	run                 func(c *cli, ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// commands lists the subcommands; help is handled by run. It is set in
// init because the subcommands read it for their usage.
var commands []command

func init() {
	commands = []command{
		{"ping", "[-c N] [-i interval] [-s size] [-W timeout] [-t ttl] --link SPEC --addr CIDR [--gw ADDR] HOST",
			"send ICMP echo requests from a standalone stack", (*cli).ping},
		{"nc", "[-u] [-l] [-w timeout] --link SPEC --addr CIDR [--gw ADDR] HOST PORT",
			"copy stdin to a TCP (-u: UDP) peer and the peer to stdout, from a standalone stack", (*cli).nc},
		{"impair", "--a IF1 --b IF2 [--delay D] [--jitter J] [--loss P] [--reorder P] [--dup P] [--corrupt P] [--rate R] [--seed N]",
			"bridge two host interfaces through an impairing link (like netem)", (*cli).impair},
		{"demo", "",
			"run a three-stack network in memory and narrate what it does (no privileges)", (*cli).demo},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	c := &cli{openLink: daemon.OpenLink, openPromisc: daemon.OpenPromiscuous}
	code := c.run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand.
func (c *cli) run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			for _, cmd := range commands {
				if cmd.name == args[1] {
					fmt.Fprintf(stdout, "usage: ustack %s %s\n\n%s\n", cmd.name, cmd.args, cmd.summary)
					return 0
				}
			}
			fmt.Fprintf(stderr, "ustack help: unknown command %q\n", args[1])
			usage(stderr)
			return 2
		}
		usage(stdout)
		return 0
	}
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd.run(c, ctx, args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "ustack: unknown command %q\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: ustack COMMAND [ARGS]\n\ncommands:\n")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintf(w, "  %-8s %s\n", "help", "show this, or a command's usage: ustack help COMMAND")
}

// newFlags makes a subcommand's flag set, printing its usage to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ustack "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, cmd := range commands {
		if cmd.name == name {
			fs.Usage = func() {
				fmt.Fprintf(stderr, "usage: ustack %s %s\n", cmd.name, cmd.args)
				fs.PrintDefaults()
			}
		}
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// ("ping HOST -c 3"), and returns the positional ones. "--" ends the flags.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// failf prints a one-line error for a subcommand and returns status.
func failf(stderr io.Writer, name string, status int, format string, args ...any) int {
	fmt.Fprintf(stderr, "ustack %s: %s\n", name, oneLine(fmt.Sprintf(format, args...)))
	return status
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// flagStatus is the exit status for a flag parse error: 0 for -h.
func flagStatus(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// standaloneMAC is the MAC a standalone tool uses on an Ethernet link.
func standaloneMAC(spec string) wire.MAC { return daemon.GenerateMAC("ustack", spec) }
