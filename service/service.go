// Package service holds the small inetd-style services a host runs
// itself: echo (RFC 862), discard (RFC 863), character generator (RFC 864)
// and daytime (RFC 867), over datagrams or streams, and a static file
// server over HTTP (streams only).
//
// It sits above the socket layer and knows only the net interfaces: a
// service runs over any net.PacketConn (UDP) or net.Listener (TCP), from
// ustack's socket package or from the host's net package alike. It owns
// the per-service request handling and the serving loops; it does not open
// sockets, choose addresses or ports, or log on the data path beyond one
// line per failure.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"ustack/internal/clock"
)

// Kinds of built-in service.
const (
	Echo    = "echo"
	Discard = "discard"
	Chargen = "chargen"
	Daytime = "daytime"
	// HTTP serves the files under Options.Root (streams only).
	HTTP = "http"
)

// Port is the well-known port of a kind (RFC 862, 863, 864, 867; 80 for
// HTTP), or 0.
func Port(kind string) uint16 {
	switch kind {
	case Echo:
		return 7
	case Discard:
		return 9
	case Daytime:
		return 13
	case Chargen:
		return 19
	case HTTP:
		return 80
	}
	return 0
}

// Kinds lists the service kinds, sorted.
func Kinds() []string { return []string{Chargen, Daytime, Discard, Echo, HTTP} }

// Known reports whether kind names a built-in service.
func Known(kind string) bool { return slices.Contains(Kinds(), kind) }

// Datagram reports whether kind runs over datagrams (Serve) as well as
// streams (ServeListener).
func Datagram(kind string) bool { return Known(kind) && kind != HTTP }

// Options configure a service. The zero value works.
type Options struct {
	// Clock tells daytime the time; default clock.Real.
	Clock clock.Clock
	// Location is daytime's time zone; default time.Local.
	Location *time.Location
	// Rand draws chargen's datagram lengths; default a generator seeded
	// from the runtime's random source.
	Rand *rand.Rand
	// Logger receives one line per failed read or write; default discard.
	Logger *slog.Logger
	// Root is the directory the http service serves; required for it.
	Root string
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// ErrUnknown is returned for a kind that is not a built-in service.
var ErrUnknown = errors.New("service: unknown service")

// ErrStreamOnly is returned by Serve for a kind that has no datagram form.
var ErrStreamOnly = errors.New("service: http runs over streams only")

// maxDatagram is the largest request a datagram service reads.
const maxDatagram = 65535

// Serve runs the service kind over pc until ctx is done, answering each
// datagram as the service's RFC says. Serve owns pc: it closes it when it
// returns. It returns nil once ctx is done, or the error that stopped
// reading.
func Serve(ctx context.Context, kind string, pc net.PacketConn, o Options) error {
	o = o.withDefaults()
	h, err := newPacketHandler(kind, o)
	if err != nil {
		pc.Close()
		return err
	}
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer func() {
		if stop() {
			pc.Close()
		}
	}()
	b := make([]byte, maxDatagram)
	for {
		n, from, err := pc.ReadFrom(b)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return fmt.Errorf("service %s: %w", kind, err)
		}
		if reply, ok := h(b[:n]); ok {
			if _, err := pc.WriteTo(reply, from); err != nil {
				// A failed reply (no route back, say) is the
				// peer's problem, not the service's.
				o.Logger.Debug("reply failed", "service", kind, "to", from, "err", err)
			}
		}
	}
}

// packetHandler answers one datagram: the reply and whether to send it.
type packetHandler func(req []byte) (reply []byte, ok bool)

func newPacketHandler(kind string, o Options) (packetHandler, error) {
	switch kind {
	case Echo:
		// RFC 862: "Once a datagram is received, the data from the
		// datagram is sent back in an answering datagram."
		return func(req []byte) ([]byte, bool) { return req, true }, nil
	case Discard:
		// RFC 863: "Once a datagram is received, it is thrown away."
		return func([]byte) ([]byte, bool) { return nil, false }, nil
	case Chargen:
		g := &chargen{}
		var mu sync.Mutex // the generator's rotation and o.Rand
		out := make([]byte, 0, maxChargenDatagram)
		return func([]byte) ([]byte, bool) {
			mu.Lock()
			defer mu.Unlock()
			// RFC 864: each received datagram is answered with one
			// "containing a random number (between 0 and 512) of
			// characters"; the data of the request is ignored.
			out = g.datagram(out[:0], o.Rand.IntN(maxChargenDatagram+1))
			return out, true
		}, nil
	case Daytime:
		// RFC 867: "An answering datagram is sent containing the
		// current date and time as a ASCII character string", the
		// data of the request is ignored.
		return func([]byte) ([]byte, bool) {
			return []byte(DaytimeString(o.Clock.Now(), o.Location)), true
		}, nil
	case HTTP:
		return nil, ErrStreamOnly
	}
	return nil, fmt.Errorf("%w %q (want one of %v)", ErrUnknown, kind, Kinds())
}

// DaytimeString formats t in the syntax RFC 867 suggests ("Weekday, Month
// Day, Year Time-Zone"), ending in CR LF.
func DaytimeString(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Monday, January 2, 2006 15:04:05-MST") + "\r\n"
}
