package service

// The character generator pattern of RFC 864 ("one popular pattern"): the
// 95 printable ASCII characters in a ring; each line holds 72 of them and
// starts one character further along the ring than the line before, and
// ends in CR LF.
const (
	chargenFirst       = ' '
	chargenRing        = 95 // '~' - ' ' + 1
	chargenLineChars   = 72
	chargenLineLen     = chargenLineChars + 2 // with CR LF
	maxChargenDatagram = 512                  // RFC 864, UDP
)

// chargen produces the pattern, remembering where it stopped.
type chargen struct {
	line int // index in the ring of the next line's first character
}

// appendLine appends the next whole line.
func (g *chargen) appendLine(b []byte) []byte {
	for i := range chargenLineChars {
		b = append(b, byte(chargenFirst+(g.line+i)%chargenRing))
	}
	g.line = (g.line + 1) % chargenRing
	return append(b, '\r', '\n')
}

// datagram appends n characters of the pattern to b: whole lines, the last
// one cut short when n is not a multiple of the line length. Each datagram
// starts with a new line, so consecutive datagrams continue the rotation.
func (g *chargen) datagram(b []byte, n int) []byte {
	for n > 0 {
		start := len(b)
		b = g.appendLine(b)
		if len(b)-start > n {
			b = b[:start+n]
		}
		n -= len(b) - start
	}
	return b
}
