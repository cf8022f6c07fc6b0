package interop

import (
	"testing"

	"ustack/internal/netns"
	"ustack/link"
	"ustack/link/afpacket"
	"ustack/link/offload"
)

// openAFPacket opens an AF_PACKET link on dev from inside ns, so the
// socket binds to that namespace's device. The stack uses the device's
// own MAC: the kernel in ns has no address on dev and stays silent.
func openAFPacket(t *testing.T, ns *netns.NS, dev string, accept offload.Accept) link.Endpoint {
	t.Helper()
	var ep *afpacket.Endpoint
	ns.MustDo(t, func() error {
		var err error
		ep, err = afpacket.Open(dev, &afpacket.Config{Accept: accept})
		return err
	})
	return ep
}
