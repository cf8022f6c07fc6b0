package buf

import "sync/atomic"

// Copy accounting, for tests that check how often a data path copies the
// bytes it carries (issue 5: at most two copies of each payload byte
// between one process's Write and the peer's Read). Every buf operation
// that copies data counts what it copies while counting is on: FromBytes
// and AppendBytes (into a packet), CopyTo, ReadAt, ToBytes and DeepCopy
// (out of one), and Pullup (gathering bytes that span views). Off, the
// cost is one atomic load per copying call.
var (
	countingCopies atomic.Bool
	copiedBytes    atomic.Int64
)

// CountCopies turns copy accounting on or off. It is process-wide: a test
// using it must not run in parallel with others that move packets.
func CountCopies(on bool) { countingCopies.Store(on) }

// CopiedBytes is the number of bytes buf has copied while accounting was
// on.
func CopiedBytes() int64 { return copiedBytes.Load() }

func countCopy(n int) {
	if countingCopies.Load() {
		copiedBytes.Add(int64(n))
	}
}
