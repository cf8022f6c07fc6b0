// Package daemon is ustackd's engine: it reads a configuration file
// (interfaces on real links, addresses, routes, tunables, built-in
// services), builds one stack from it, runs it until told to stop and then
// takes everything down again.
//
// It sits at the top, above the socket layer and the link drivers: it
// owns the configuration syntax and its checks, the mapping from link
// specs ("tap:ut0") to drivers, and the lifetime of what it starts. It has
// no protocol logic and no control API yet (ctl/ will serve one).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"ustack/internal/clock"
	"ustack/link"
	"ustack/network/route"
	"ustack/service"
	"ustack/socket"
	"ustack/stack"
	"ustack/wire"
)

// LinkOpener opens the link of a configured interface: spec as in
// Interface.Link, mtu 0 for the driver's default, mac the hardware address
// to use on Ethernet links.
type LinkOpener func(spec string, mtu int, mac wire.MAC) (link.Endpoint, error)

// Options tune Start. The zero value uses the real devices and clock and
// logs nothing.
type Options struct {
	// Name labels the stack; default "ustackd".
	Name string
	// Logger receives the daemon's and the stack's logs.
	Logger *slog.Logger
	// Clock drives the stack and the services; default clock.Real.
	Clock clock.Clock
	// OpenLink opens links; default OpenLink. Tests put pipes here.
	OpenLink LinkOpener
}

// Daemon is a running configuration: a stack, its links and services.
type Daemon struct {
	st     *stack.Stack
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	errs []error // services that stopped on their own
	once sync.Once
}

// Run starts cfg, logs to logger, and stops everything when ctx is done.
// It returns an error if the configuration cannot be brought up, or one
// of the services failed while running.
func Run(ctx context.Context, cfg *Config, logger *slog.Logger) error {
	d, err := Start(cfg, Options{Logger: logger})
	if err != nil {
		return err
	}
	<-ctx.Done()
	d.log.Info("shutting down", "cause", context.Cause(ctx))
	return d.Close()
}

// Start builds the stack of cfg: it opens and attaches the links, assigns
// addresses, adds routes, sets tunables and starts the services. On error
// it undoes what it did.
func Start(cfg *Config, o Options) (_ *Daemon, err error) {
	if o.Name == "" {
		o.Name = "ustackd"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OpenLink == nil {
		o.OpenLink = OpenLink
	}
	st := stack.New(stack.Options{Name: o.Name, Clock: o.Clock, Logger: o.Logger})
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{st: st, log: o.Logger, cancel: cancel}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	for _, s := range cfg.Sysctl {
		if err := st.SetSysctl(s.Name, s.Value); err != nil {
			return nil, err
		}
		d.log.Info("sysctl", "name", s.Name, "value", s.Value)
	}
	for _, ic := range cfg.Interfaces {
		if err := d.addInterface(ic, o.OpenLink); err != nil {
			return nil, err
		}
	}
	for _, r := range cfg.Routes {
		if err := st.AddRoute(route.Route{Dst: r.To, Gateway: r.Via, Origin: route.OriginStatic}); err != nil {
			return nil, fmt.Errorf("route to %s via %s: %w", r.To, r.Via, err)
		}
		d.log.Info("route added", "to", r.To, "via", r.Via)
	}
	for _, s := range cfg.Services {
		if err := d.startService(ctx, s, o.Clock); err != nil {
			return nil, err
		}
	}
	d.log.Info("ready", "interfaces", len(cfg.Interfaces), "routes", len(cfg.Routes), "services", len(cfg.Services))
	return d, nil
}

func (d *Daemon) addInterface(ic Interface, open LinkOpener) error {
	mac := ic.MAC
	if mac.IsZero() {
		mac = GenerateMAC(ic.Name, ic.Link)
	}
	ep, err := open(ic.Link, ic.MTU, mac)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ic.Name, err)
	}
	ifc, err := d.st.AddInterface(ic.Name, ep)
	if err != nil {
		ep.Close()
		return fmt.Errorf("interface %s: %w", ic.Name, err)
	}
	switch {
	case ic.MTU == 0 || ic.MTU == ifc.MTU():
	case ic.MTU < ifc.MTU():
		if err := ifc.SetMTU(ic.MTU); err != nil {
			return fmt.Errorf("interface %s: %w", ic.Name, err)
		}
	default:
		return fmt.Errorf("interface %s: mtu %d is above the MTU of %s (%d)", ic.Name, ic.MTU, ic.Link, ifc.MTU())
	}
	for _, p := range ic.Addresses {
		if err := d.st.AddAddress(ic.Name, p); err != nil {
			return fmt.Errorf("interface %s: %w", ic.Name, err)
		}
	}
	return nil
}

func (d *Daemon) startService(ctx context.Context, s Service, clk clock.Clock) error {
	log := d.log.With("service", s.Type, "listen", s.Listen())
	o := service.Options{Clock: clk, Logger: log, Root: s.Root}
	var serve func() error
	switch s.Network {
	case "tcp":
		ln, err := socket.ListenTCP(d.st, s.Addr)
		if err != nil {
			return fmt.Errorf("service %s on %s: %w", s.Type, s.Listen(), err)
		}
		serve = func() error { return service.ServeListener(ctx, s.Type, ln, o) }
	default:
		pc, err := socket.ListenUDP(d.st, s.Addr)
		if err != nil {
			return fmt.Errorf("service %s on %s: %w", s.Type, s.Listen(), err)
		}
		serve = func() error { return service.Serve(ctx, s.Type, pc, o) }
	}
	d.wg.Go(func() {
		err := serve()
		if err != nil {
			log.Error("service stopped", "err", err)
			d.mu.Lock()
			d.errs = append(d.errs, err)
			d.mu.Unlock()
		}
	})
	log.Info("service started")
	return nil
}

// Stack is the daemon's stack.
func (d *Daemon) Stack() *stack.Stack { return d.st }

// Addr returns the first address of the named interface, or the zero
// Addr.
func (d *Daemon) Addr(ifname string) netip.Addr {
	if ifc := d.st.Interface(ifname); ifc != nil && len(ifc.Addrs()) > 0 {
		return ifc.Addrs()[0].Addr()
	}
	return netip.Addr{}
}

// Close stops the services, then closes the stack and with it every link
// (a TAP device the daemon created goes away with its link). It returns
// the errors of services that had failed while running.
func (d *Daemon) Close() error {
	d.once.Do(func() {
		d.cancel()
		d.wg.Wait()
		d.st.Close()
		d.log.Info("stopped")
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	return errors.Join(d.errs...)
}
