package wire_test

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Golden packets. Unless marked hand-written, each was captured with
// tcpdump from Linux 6.x in a pair of network namespaces joined by a veth
// pair (10.0.0.1 at 02:00:00:00:00:01, 10.0.0.2 at 02:00:00:00:00:02),
// and its checksums were confirmed by tcpdump and by an independent
// implementation.

// Ethernet + ARP request: who has 10.0.0.2? tell 10.0.0.1.
var goldenARPRequest = unhex(`
	ff ff ff ff ff ff  02 00 00 00 00 01  08 06 // eth: dst broadcast, src, ARP
	00 01  08 00  06  04  00 01                 // htype 1, ptype IPv4, hlen 6, plen 4, op request
	02 00 00 00 00 01  0a 00 00 01              // sender 02:00:00:00:00:01 10.0.0.1
	00 00 00 00 00 00  0a 00 00 02              // target 00:00:00:00:00:00 10.0.0.2
`)

// Ethernet + ARP reply: 10.0.0.2 is at 02:00:00:00:00:02.
var goldenARPReply = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  08 06
	00 01  08 00  06  04  00 02                 // op reply
	02 00 00 00 00 02  0a 00 00 02              // sender
	02 00 00 00 00 01  0a 00 00 01              // target
`)

// Ethernet + IPv4 with options (NOP, record route) + ICMP echo request
// (ping -R -s 16).
var goldenEchoRR = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  08 00 // eth
	4f 00 00 54  5e db 40 00  40 01 8b bb       // v4 ihl 15, tos 0, len 84, id 0x5edb, DF, ttl 64, icmp, cksum
	0a 00 00 01  0a 00 00 02                    // 10.0.0.1 > 10.0.0.2
	01                                          // option: NOP
	07 27 08                                    // option: record route, len 39, pointer 8
	0a 00 00 01                                 //   slot 0: 10.0.0.1
	00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 // slots 1-4
	00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 // slots 5-8
	08 00 30 0c  21 21 00 01                    // icmp echo, code 0, cksum 0x300c, id 0x2121, seq 1
	9e 82 02 6b 00 00 00 00 f9 e3 0c 00 00 00 00 00 // data (16)
`)

// The reply: record route filled by both hosts, then end of option list.
var goldenEchoReplyRR = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  08 00
	4f 00 00 54  28 23 00 00  40 01 18 3f
	0a 00 00 02  0a 00 00 01
	07 27 10                                    // record route, len 39, pointer 16
	0a 00 00 01  0a 00 00 02  0a 00 00 02       // slots 0-2
	00 00 00 00 00 00 00 00 00 00 00 00         // slots 3-5
	00 00 00 00 00 00 00 00 00 00 00 00         // slots 6-8
	00                                          // end of option list
	00 00 38 0c  21 21 00 01                    // echo reply
	9e 82 02 6b 00 00 00 00 f9 e3 0c 00 00 00 00 00
`)

// IPv4 with a timestamp option (ping -T tsonly -s 0), echo request.
var goldenEchoTS = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  08 00
	4f 00 00 44  9e 0a 40 00  40 01 09 95
	0a 00 00 01  0a 00 00 02
	44 28 09 00                                 // timestamp, len 40, pointer 9, oflw 0 flag 0 (tsonly)
	01 43 26 ac                                 // stamp 0: 21178028 ms
	00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 // stamps 1-4
	00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 // stamps 5-8
	08 00 ca 22  2d dc 00 01                    // echo, id 0x2ddc, seq 1, no data
`)

// IGMPv3 report with a router alert option (RFC 2113), to 224.0.0.22.
var goldenIGMPRA = unhex(`
	01 00 5e 00 00 16  02 00 00 00 00 01  08 00 // eth dst: multicast MAC of 224.0.0.22
	46 c0 00 28  00 00 40 00  01 02 f9 f8       // ihl 6, tos 0xc0, len 40, DF, ttl 1, igmp
	0a 00 00 01  e0 00 00 16
	94 04 00 00                                 // router alert, len 4, value 0
	22 00 e8 f9  00 00 00 01                    // igmp v3 report, 1 record
	04 00 00 00  ef 01 02 03                    // change to exclude, 239.1.2.3
`)

// IPv4 + UDP 10.0.0.1:40000 > 10.0.0.2:9 "hello\n".
var goldenUDP = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  08 00
	45 00 00 22  a8 dc 40 00  40 11 7d ec       // len 34, id 0xa8dc, DF, ttl 64, udp
	0a 00 00 01  0a 00 00 02
	9c 40 00 09  00 0e 0b aa                    // 40000 > 9, len 14, cksum 0x0baa
	68 65 6c 6c 6f 0a                           // "hello\n"
`)

// ICMP port unreachable for goldenUDP, quoting the whole datagram.
var goldenPortUnreach = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  08 00
	45 c0 00 3e  28 24 00 00  40 01 3d d9       // tos 0xc0, len 62, icmp
	0a 00 00 02  0a 00 00 01
	03 03 11 1f  00 00 00 00                    // dst unreachable, port, cksum 0x111f
	45 00 00 22  a8 dc 40 00  40 11 7d ec       // quoted IPv4 header
	0a 00 00 01  0a 00 00 02
	9c 40 00 09  00 0e 0b aa  68 65 6c 6c 6f 0a // quoted UDP header and data
`)

// Linux SYN: 10.0.0.1:52482 > 10.0.0.2:7777, options
// mss 1460, sackOK, TS val 4016840401 ecr 0, nop, wscale 10.
var goldenSYN = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  08 00
	45 00 00 3c  03 0d 40 00  40 06 23 ad       // len 60, id 0x030d, DF, ttl 64, tcp
	0a 00 00 01  0a 00 00 02
	cd 02 1e 61                                 // 52482 > 7777
	ee 6c 2c e6  00 00 00 00                    // seq 4000066790, ack 0
	a0 02 fa f0                                 // doff 10, SYN, window 64240
	24 15 00 00                                 // cksum 0x2415, urgent 0
	02 04 05 b4                                 // mss 1460
	04 02                                       // sack permitted
	08 0a ef 6c 1e d1 00 00 00 00               // timestamps val 4016840401 ecr 0
	01                                          // nop
	03 03 0a                                    // window scale 10
`)

// The RST|ACK answering goldenSYN (no listener).
var goldenRST = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  08 00
	45 00 00 28  00 00 40 00  40 06 26 ce
	0a 00 00 02  0a 00 00 01
	1e 61 cd 02  00 00 00 00  ee 6c 2c e7       // 7777 > 52482, seq 0, ack 4000066791
	50 14 00 00  95 16 00 00                    // doff 5, RST|ACK, window 0, cksum 0x9516
`)

// A data segment on a Linux loopback (Ethernet header zero), options
// nop, nop, TS, payload "hi\n". The checksum is the full one (0xcdae, as
// tcpdump and an independent sum computed it), not the partial sum the
// loopback carried with checksum offload.
var goldenTCPData = unhex(`
	00 00 00 00 00 00  00 00 00 00 00 00  08 00
	45 00 00 37  b0 6e 40 00  40 06 8c 50
	7f 00 00 01  7f 00 00 01
	c3 ac 1f 90  d5 a9 a5 61  b5 0e 09 b9       // 50092 > 8080, seq 3584664929, ack 3037596089
	80 18 00 40  cd ae 00 00                    // doff 8, PSH|ACK, window 64
	01 01 08 0a  5e 24 ec ce  88 d8 47 7c       // nop, nop, TS val 1579478222 ecr 2295875452
	68 69 0a                                    // "hi\n"
`)

// Hand-written from RFC 9293 §3.1, RFC 2018 §3 and RFC 7323 §3: an ACK
// carrying timestamps and two SACK blocks laid out as Linux does.
var goldenSACK = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  08 00
	45 00 00 48  12 34 40 00  40 06 14 7a       // len 72, id 0x1234
	0a 00 00 02  0a 00 00 01
	1e 61 cd 02  00 00 10 00  00 00 20 00       // 7777 > 52482, seq 0x1000, ack 0x2000
	d0 10 01 f6  55 25 00 00                    // doff 13, ACK, window 502, cksum 0x5525
	01 01 08 0a  01 02 03 04  05 06 07 08       // nop, nop, TS val 0x01020304 ecr 0x05060708
	01 01 05 12                                 // nop, nop, SACK len 18
	00 00 21 00  00 00 22 00                    //   {0x2100, 0x2200}
	00 00 23 00  00 00 24 00                    //   {0x2300, 0x2400}
`)

// An IPv6 router solicitation (Linux), for the IPv6 pseudo-header.
var goldenIPv6RS = unhex(`
	33 33 00 00 00 02  02 00 00 00 00 02  86 dd
	60 00 00 00  00 10 3a ff                    // payload 16, next header ICMPv6, hop limit 255
	fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 02 // fe80::ff:fe00:2
	ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 02 // ff02::2
	85 00 7b 2a  00 00 00 00                    // router solicitation, cksum 0x7b2a
	01 01 02 00 00 00 00 02                     // source link-layer address option
`)

// Hand-written (IEEE 802.1Q): goldenUDP's datagram behind one C-tag,
// PCP 5, VID 100.
var goldenVLAN = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  81 00 // TPID 802.1Q
	a0 64  08 00                                // TCI: pcp 5, dei 0, vid 100; type IPv4
	45 00 00 22  a8 dc 40 00  40 11 7d ec
	0a 00 00 01  0a 00 00 02
	9c 40 00 09  00 0e 0b aa  68 65 6c 6c 6f 0a
`)

// Hand-written (IEEE 802.1ad): S-tag VID 200 with DEI, C-tag PCP 3 VID
// 4094, then ARP (goldenARPRequest's body).
var goldenQinQ = unhex(`
	ff ff ff ff ff ff  02 00 00 00 00 01  88 a8 // TPID 802.1ad
	10 c8  81 00                                // S-tag: pcp 0, dei 1, vid 200; next TPID 802.1Q
	6f fe  08 06                                // C-tag: pcp 3, dei 0, vid 4094; type ARP
	00 01  08 00  06  04  00 01
	02 00 00 00 00 01  0a 00 00 01
	00 00 00 00 00 00  0a 00 00 02
`)

// eth, ip and l4 cut a golden frame (Ethernet II, no tag) into its layers.
func eth(frame []byte) []byte { return frame[:14] }
func ip(frame []byte) []byte  { return frame[14:] }
func l4(frame []byte) []byte  { return frame[14+int(frame[14]&0xf)*4:] }

// unhex decodes hex with whitespace and // comments.
func unhex(s string) []byte {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(strings.Join(strings.Fields(line), ""))
	}
	out, err := hex.DecodeString(b.String())
	if err != nil {
		panic(fmt.Sprintf("bad golden hex: %v", err))
	}
	return out
}

// filled returns n bytes of 0xa5, so that an encoder that forgets a byte
// shows it.
func filled(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xa5
	}
	return b
}

// diff returns "" if want and got are deeply equal, else a (-want +got)
// report.
func diff(want, got any) string {
	if reflect.DeepEqual(want, got) {
		return ""
	}
	return fmt.Sprintf("(-want +got):\n-%+v\n+%+v", want, got)
}

// checkBytes fails if got != want, showing both in hex.
func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if string(got) != string(want) {
		t.Errorf("%s (-want +got):\n-% x\n+% x", what, want, got)
	}
}

// check is a field assertion for table-driven golden tests.
func check[T comparable](t *testing.T, name string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}
