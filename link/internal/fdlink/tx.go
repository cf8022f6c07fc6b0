package fdlink

import (
	"golang.org/x/sys/unix"

	"ustack/buf"
)

// maxViews bounds the iovecs one frame uses (the kernel's UIO_MAXIOV is
// 1024); a packet in more pieces is made contiguous first.
const maxViews = 512

// AppendIovecs appends iovecs for hdr followed by the data of p to iovs.
// Empty pieces are skipped. It may make p contiguous (a copy) when p is in
// too many pieces.
func AppendIovecs(iovs []unix.Iovec, hdr []byte, p *buf.Packet) []unix.Iovec {
	if p.NumViews() > maxViews {
		p.Pullup(p.Len())
	}
	iovs = appendIovec(iovs, hdr)
	for i := 0; i < p.NumViews(); i++ {
		iovs = appendIovec(iovs, p.View(i))
	}
	return iovs
}

func appendIovec(iovs []unix.Iovec, b []byte) []unix.Iovec {
	if len(b) == 0 {
		return iovs
	}
	iov := unix.Iovec{Base: &b[0]}
	iov.SetLen(len(b))
	return append(iovs, iov)
}
