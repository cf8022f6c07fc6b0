package interop

import (
	"testing"
	"time"
)

// bulkSize is what TestTCPBulk moves each way.
const bulkSize = 100 * MB

// TestTCPBulk moves 100 MB each way between the kernel's socat and a
// stack's socket, on both topologies with the kernel's offloads on:
// kernel to stack (socat connects to the stack's listener and sends),
// and stack to kernel (the stack connects to socat's listener and
// sends), one after the other. The receiver's sha256 must be the
// sender's; the throughput goes to the log.
func TestTCPBulk(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			tp := newTopo(t, topoConfig{kind: kind})
			s0, k0 := tp.st.Stats(), snmp(t, tp.k)
			x := kernelToStack(t, tp, 5001, stream{seed: 1, n: bulkSize}, 120*time.Second)
			x.finish(t)
			x.log(t, kind)
			s1, k1 := tp.st.Stats(), snmp(t, tp.k)
			logTCPCounters(t, s0, s1, k0, k1)
			x = stackToKernel(t, tp, 5002, stream{seed: 2, n: bulkSize}, 120*time.Second)
			x.finish(t)
			x.log(t, kind)
			logTCPCounters(t, s1, tp.st.Stats(), k1, snmp(t, tp.k))
		})
	}
}
