package wire_test

import (
	"encoding/binary"
	"os"
	"testing"
)

// IPv6 golden packets. Unless marked otherwise, each was captured with
// tcpdump from Linux 6.x in network namespaces joined by veth pairs:
// host A (02:00:00:00:00:01, 2001:db8::1, fe80::ff:fe00:1) and router B
// (02:00:00:00:00:02, 2001:db8::2, fe80::ff:fe00:2, forwarding on, radvd
// for 2001:db8:1::/64), B's second link to C at MTU 1280
// (2001:db8:2::/64), and a Linux bridge acting as MLD querier. Packets
// marked "crafted" were sent from A with scapy; B's answers to them are
// Linux's. tcpdump -vv confirmed every checksum ("sum ok").

// ping -6 -s 16 2001:db8::2: echo request.
var goldenEcho6 = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  86 dd // eth, IPv6
	60 0c 62 02  00 18 3a 40                    // v6, tc 0, flow 0xc6202; plen 24, ICMPv6, hlim 64
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 // 2001:db8::1
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 // 2001:db8::2
	80 00 a9 f7  56 5a 00 01                    // echo request, cksum 0xa9f7, id 0x565a, seq 1
	8a 94 02 6b 00 00 00 00 89 e5 0d 00 00 00 00 00 // data (16)
`)

// Its reply.
var goldenEchoReply6 = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  86 dd
	60 01 e1 3c  00 18 3a 40                    // flow 0x1e13c
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 // 2001:db8::2
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 // 2001:db8::1
	81 00 a8 f7  56 5a 00 01                    // echo reply, cksum 0xa8f7
	8a 94 02 6b 00 00 00 00 89 e5 0d 00 00 00 00 00
`)

// Neighbor solicitation for 2001:db8::2 (address resolution, RFC 4861
// §7.2.2), to its solicited-node group.
var goldenNS = unhex(`
	33 33 ff 00 00 02  02 00 00 00 00 01  86 dd // eth dst: 33:33 + low 32 bits of ff02::1:ff00:2
	60 00 00 00  00 20 3a ff                    // plen 32, ICMPv6, hlim 255
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 // 2001:db8::1
	ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 02 // ff02::1:ff00:2
	87 00 1c 27  00 00 00 00                    // NS, cksum 0x1c27, reserved
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 // target 2001:db8::2
	01 01 02 00 00 00 00 01                     // source link-layer address, len 1: 02:00:00:00:00:01
`)

// The advertisement answering it (B is a router).
var goldenNA = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  86 dd
	60 00 00 00  00 20 3a ff
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 // 2001:db8::2
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 // 2001:db8::1
	88 00 0a 71  e0 00 00 00                    // NA, cksum 0x0a71, flags R S O
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 // target 2001:db8::2
	02 01 02 00 00 00 00 02                     // target link-layer address: 02:00:00:00:00:02
`)

// A neighbor advertisement answering a unicast NUD probe: solicited, no
// option (RFC 4861 §7.2.4 lets it out).
var goldenNANoOpt = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  86 dd
	60 00 00 00  00 18 3a ff                    // plen 24
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 // 2001:db8::1
	fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 02 // fe80::ff:fe00:2
	88 00 de b5  40 00 00 00                    // NA, cksum 0xdeb5, flags S
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 // target 2001:db8::1
`)

// Duplicate address detection for 2001:db8::2: source ::, no link-layer
// option (RFC 4862 §5.4.2), and the nonce option of RFC 7527.
var goldenDADNS = unhex(`
	33 33 ff 00 00 02  02 00 00 00 00 02  86 dd
	60 00 00 00  00 20 3a ff
	00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 // ::
	ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 02 // ff02::1:ff00:2
	87 00 db c0  00 00 00 00                    // NS, cksum 0xdbc0
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 // target 2001:db8::2
	0e 01 2a 89 12 28 26 70                     // nonce option (14), len 1
`)

// radvd's unsolicited router advertisement.
var goldenRA = unhex(`
	33 33 00 00 00 01  02 00 00 00 00 02  86 dd
	60 08 3e 53  00 40 3a ff                    // flow 0x83e53, plen 64
	fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 02 // fe80::ff:fe00:2
	ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 01 // ff02::1
	86 00 b3 7d                                 // RA, cksum 0xb37d
	40 40 07 08                                 // cur hop limit 64, flags O, router lifetime 1800 s
	00 00 75 30  00 00 03 e8                    // reachable 30000 ms, retrans 1000 ms
	03 04 40 c0                                 // prefix information, len 4, /64, flags L A
	00 01 51 80  00 00 38 40  00 00 00 00       // valid 86400 s, preferred 14400 s, reserved
	20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 00 // 2001:db8:1::
	05 01 00 00  00 00 05 dc                    // MTU, len 1: 1500
	01 01 02 00 00 00 00 02                     // source link-layer address
`)

// rdisc6's router solicitation: no option.
var goldenRSNoOpt = unhex(`
	33 33 00 00 00 02  02 00 00 00 00 01  86 dd
	60 02 36 a8  00 08 3a ff                    // plen 8
	fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 01 // fe80::ff:fe00:1
	ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 02 // ff02::2
	85 00 7e 36  00 00 00 00                    // RS, cksum 0x7e36, reserved
`)

// UDP 2001:db8::1:37371 > 2001:db8::2:9 "hello\n". The checksum is the full
// one (0xce7c, as tcpdump computed it), not the partial sum veth carried
// with checksum offload (0x5b94, quoted in goldenPortUnreach6).
var goldenUDP6 = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  86 dd
	60 02 6a 35  00 0e 11 40                    // plen 14, UDP
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	91 fb 00 09  00 0e ce 7c                    // 37371 > 9, len 14
	68 65 6c 6c 6f 0a                           // "hello\n"
`)

// Port unreachable for it, quoting the whole datagram as sent.
var goldenPortUnreach6 = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  86 dd
	60 01 7d 83  00 3e 3a 40                    // plen 62
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	01 04 3a 90  00 00 00 00                    // dst unreachable, code 4 (port), cksum 0x3a90, unused
	60 02 6a 35  00 0e 11 40                    // quoted IPv6 header
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	91 fb 00 09  00 0e 5b 94  68 65 6c 6c 6f 0a // quoted UDP
`)

// ping -6 -t 1 2001:db8:2::2: B's hop limit exceeded.
var goldenTimeExceeded6 = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  86 dd
	60 01 8a 8f  00 70 3a 40                    // plen 112
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	03 00 c3 bf  00 00 00 00                    // time exceeded, code 0 (hop limit), cksum 0xc3bf
	60 00 43 59  00 40 3a 01                    // quoted: plen 64, hlim 1
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 // 2001:db8::1
	20 01 0d b8 00 02 00 00 00 00 00 00 00 00 00 02 // 2001:db8:2::2
	80 00 d6 ce  56 5d 00 01                    // quoted echo request
	8a 94 02 6b 00 00 00 00 9d 0e 0e 00 00 00 00 00
	10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
	20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f
	30 31 32 33 34 35 36 37
`)

// MLDv2 report (RFC 3810 §5.2) joining ff02::1:ff00:1, behind a
// hop-by-hop router alert.
var goldenMLDv2Report = unhex(`
	33 33 00 00 00 16  02 00 00 00 00 01  86 dd // to 33:33:00:00:00:16
	60 00 00 00  00 24 00 01                    // plen 36, hop-by-hop, hlim 1
	fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 01 // fe80::ff:fe00:1
	ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 16 // ff02::16
	3a 00                                       // hop-by-hop: next ICMPv6, len 0 (8 bytes)
	05 02 00 00                                 //   router alert, len 2, value 0 (MLD)
	01 00                                       //   PadN, len 0
	8f 00 72 07  00 00 00 01                    // MLDv2 report, cksum 0x7207, reserved, 1 record
	04 00 00 00                                 // change to exclude, aux 0, 0 sources
	ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 01 // ff02::1:ff00:1
`)

// MLDv2 report with four records.
var goldenMLDv2Report4 = unhex(`
	33 33 00 00 00 16  02 00 00 00 00 02  86 dd
	60 00 00 00  00 60 00 01                    // plen 96
	fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 02 // fe80::ff:fe00:2
	ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 16
	3a 00 05 02 00 00 01 00                     // hop-by-hop: router alert, PadN
	8f 00 69 b4  00 00 00 04                    // MLDv2 report, 4 records
	04 00 00 00  ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 00 // to-ex ff02::1:ff00:0
	04 00 00 00  ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 02 // to-ex ff02::1:ff00:2
	04 00 00 00  ff 05 00 00 00 00 00 00 00 00 00 00 00 00 00 02 // to-ex ff05::2
	04 00 00 00  ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 02 // to-ex ff02::2
`)

// MLDv1 report (RFC 2710 §3) with force_mld_version=1.
var goldenMLDv1Report = unhex(`
	33 33 ff 00 00 01  02 00 00 00 00 01  86 dd
	60 00 00 00  00 20 00 01                    // plen 32, hop-by-hop, hlim 1
	fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 01
	ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 01 // to the group itself
	3a 00 05 02 00 00 01 00                     // hop-by-hop: router alert, PadN
	83 00 83 1f  00 00 00 00                    // MLDv1 report, cksum 0x831f, delay 0, reserved
	ff 02 00 00 00 00 00 00 00 00 00 01 ff 00 00 01 // ff02::1:ff00:1
`)

// MLDv2 general query from a bridge querier; its hop-by-hop header pads
// with two Pad1.
var goldenMLDv2Query = unhex(`
	33 33 00 00 00 01  02 00 00 00 00 13  86 dd
	60 00 00 00  00 24 00 01                    // plen 36
	fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 13 // fe80::ff:fe00:13
	ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 01 // ff02::1
	3a 00 05 02 00 00 00 00                     // hop-by-hop: router alert 0, Pad1, Pad1
	82 00 57 84                                 // query, cksum 0x5784
	27 10 00 00                                 // max response code 10000 (ms), reserved
	00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 // :: (general query)
	02 7d 00 00                                 // S 0, QRV 2, QQIC 125, 0 sources
`)

// MLDv1 general query (mcast_mld_version 1).
var goldenMLDv1Query = unhex(`
	33 33 00 00 00 01  02 00 00 00 00 23  86 dd
	60 00 00 00  00 20 00 01                    // plen 32
	fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 23
	ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 01
	3a 00 05 02 00 00 00 00
	82 00 59 f5  27 10 00 00                    // query, cksum 0x59f5, delay 10000 ms
	00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 // ::
`)

// Crafted: echo request behind a destination options header holding an
// unknown option 0x87 (action 10: discard and send a parameter problem).
var goldenDstOptUnknown = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  86 dd
	60 00 00 00  00 10 3c 40                    // plen 16, destination options
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	3a 00  87 04 01 02 03 04                    // dst opts: next ICMPv6, len 0; option 0x87, len 4
	80 00 e2 04  42 42 00 01                    // echo request, id 0x4242, seq 1
`)

// Linux's answer: parameter problem, unrecognized option, pointer 42.
var goldenParamOption = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  86 dd
	60 02 e6 64  00 40 3a 40                    // plen 64
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	04 02 3e cb  00 00 00 2a                    // param problem, code 2, cksum 0x3ecb, pointer 42
	60 00 00 00  00 10 3c 40                    // the quoted packet, whole
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	3a 00 87 04 01 02 03 04
	80 00 e2 04 42 42 00 01
`)

// Crafted: a type 0 routing header with one segment left (RFC 5095).
var goldenRH0 = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  86 dd
	60 00 00 00  00 20 2b 40                    // plen 32, routing
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	3a 02 00 01  00 00 00 00                    // routing: next ICMPv6, len 2 (24 bytes), type 0, 1 left; reserved
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 99 // 2001:db8::99
	80 00 e1 6c  42 42 00 02                    // echo request, seq 2
`)

// Linux's answer: parameter problem, erroneous header field, pointer 42
// (the routing type).
var goldenParamHeader = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  86 dd
	60 02 3b 17  00 50 3a 40                    // plen 80
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	04 00 ac f9  00 00 00 2a                    // param problem, code 0, cksum 0xacf9, pointer 42
	60 00 00 00  00 20 2b 40
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	3a 02 00 01  00 00 00 00
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 99
	80 00 e1 6c  42 42 00 02
`)

// Crafted: next header 150, unassigned.
var goldenProto150 = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  86 dd
	60 00 00 00  00 08 96 40                    // plen 8, next header 150
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	00 00 00 00 00 00 00 00
`)

// Linux's answer: parameter problem, unrecognized next header, pointer 6.
var goldenParamNextHeader = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  86 dd
	60 0a b2 7b  00 38 3a 40                    // plen 56
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	04 01 4e 53  00 00 00 06                    // param problem, code 1, cksum 0x4e53, pointer 6
	60 00 00 00  00 08 96 40
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	00 00 00 00 00 00 00 00
`)

// Crafted: hop-by-hop, destination options, atomic fragment, echo
// request.
var goldenExtChain = unhex(`
	02 00 00 00 00 02  02 00 00 00 00 01  86 dd
	60 00 00 00  00 20 00 40                    // plen 32, hop-by-hop
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
	3c 00  05 02 00 00  01 00                   // hop-by-hop: next dst opts; router alert 0; PadN 0
	2c 00  01 04 01 02 00 00                    // dst opts: next fragment; PadN len 4 (data 01 02 00 00)
	3a 00  00 00  12 34 56 78                   // fragment: next ICMPv6, offset 0, M 0, id 0x12345678
	80 00 e2 02  42 42 00 03                    // echo request, seq 3
`)

// Hand-written (RFC 4861 §4.5, §4.6.3): B redirects A's echo request for
// 2001:db8:5::1 to fe80::ff:fe00:1. The quoted packet is the captured
// request; the checksum was computed by an independent RFC 1071 sum and
// confirmed by tcpdump.
var goldenRedirect = unhex(`
	02 00 00 00 00 01  02 00 00 00 00 02  86 dd
	60 00 00 00  00 a0 3a ff                    // plen 160, hlim 255
	fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 02 // fe80::ff:fe00:2
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 // 2001:db8::1
	89 00 72 a0  00 00 00 00                    // redirect, cksum 0x72a0, reserved
	fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 01 // target fe80::ff:fe00:1
	20 01 0d b8 00 05 00 00 00 00 00 00 00 00 00 01 // destination 2001:db8:5::1
	02 01 02 00 00 00 00 01                     // target link-layer address
	04 0e 00 00 00 00 00 00                     // redirected header, len 14 (112 bytes), reserved
	60 08 0a e8  00 40 3a 40                    // the redirected packet (104 bytes)
	20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
	20 01 0d b8 00 05 00 00 00 00 00 00 00 00 00 01
	80 00 3e 8f  56 62 00 01
	8a 94 02 6b 00 00 00 00 35 47 0e 00 00 00 00 00
	10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
	20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f
	30 31 32 33 34 35 36 37
`)

// ipv6Frames are the golden frames that carry IPv6 (goldenIPv6RS is in
// golden_test.go).
var ipv6Frames = [][]byte{
	goldenEcho6, goldenEchoReply6, goldenNS, goldenNA, goldenNANoOpt, goldenDADNS,
	goldenRA, goldenRSNoOpt, goldenUDP6, goldenPortUnreach6, goldenTimeExceeded6,
	goldenMLDv2Report, goldenMLDv2Report4, goldenMLDv1Report, goldenMLDv2Query,
	goldenMLDv1Query, goldenDstOptUnknown, goldenParamOption, goldenRH0,
	goldenParamHeader, goldenProto150, goldenParamNextHeader, goldenExtChain,
	goldenRedirect, goldenIPv6RS,
}

// ip6 is the IPv6 packet of a golden frame; icmp6At the ICMPv6 message
// starting ext bytes of extension headers after the fixed header.
func ip6(frame []byte) []byte { return frame[14:] }
func icmp6At(frame []byte, ext int) []byte {
	return frame[14+40+ext:]
}

// icmp6 is the ICMPv6 message of a golden frame whose only extension
// header, if any, is an 8-byte hop-by-hop header.
func icmp6(frame []byte) []byte {
	if frame[14+6] == 0 {
		return icmp6At(frame, 8)
	}
	return icmp6At(frame, 0)
}

// readPcap returns the frames of a classic little-endian pcap file in
// testdata (tcpdump -w), each record's captured bytes.
func readPcap(t testing.TB, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		t.Fatalf("%s: not a little-endian pcap file", name)
	}
	var frames [][]byte
	for b = b[24:]; len(b) >= 16; {
		n := int(binary.LittleEndian.Uint32(b[8:]))
		if 16+n > len(b) {
			t.Fatalf("%s: record of %d bytes cut short", name, n)
		}
		frames = append(frames, b[16:16+n])
		b = b[16+n:]
	}
	return frames
}

// Frames of testdata/ipv6_large.pcap.
const (
	pcapFrag1   = iota // ping -6 -s 2000: first fragment (offset 0, M), 1448 bytes of ICMPv6
	pcapFrag2          // second fragment (offset 1448), 560 bytes
	pcapBigEcho        // ping -6 -s 1400 -M do to 2001:db8:2::2
	pcapPTB            // B's packet too big for it, MTU 1280
)
