#!/usr/bin/python3
"""Send malformed IPv6 frames to a ustack stack, for interop.TestIPv6Malformed.

Run inside the kernel's namespace with Debian's python3-scapy:

    /usr/bin/python3 malformed6.py IFACE DST_MAC SRC_IP SRC_LL DST_IP DST_LL CLASS...

SRC_IP/DST_IP are the kernel's and the stack's global addresses,
SRC_LL/DST_LL their link-local ones. Scapy builds the layers; the defects
are set in its fields or written into the bytes, and the frames go out
through a plain AF_PACKET socket. One line per class on stdout:
    SENT <class> <frames>
    REFUSED <class> <errno name>   (the kernel would not send it)
"""

import errno
import socket
import struct
import sys

from scapy.layers.inet6 import (ICMPv6EchoRequest, ICMPv6ND_NS, ICMPv6ND_RA,
                                ICMPv6NDOptPrefixInfo, IPv6,
                                IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)

ETH_P_IPV6 = 0x86DD


def main():
    iface, dst_mac, src, src_ll, dst, dst_ll = sys.argv[1:7]
    classes = sys.argv[7:]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    src_mac = s.getsockname()[4]
    dmac = bytes.fromhex(dst_mac.replace(":", ""))

    def eth(pkt):
        return dmac + src_mac + struct.pack("!H", ETH_P_IPV6) + bytes(pkt)

    def echo(seq, data=b"ustack-interop6!"):
        return ICMPv6EchoRequest(id=0x6666, seq=seq, data=data)

    def good(seq):
        return eth(IPv6(src=src, dst=dst) / echo(seq))

    def icmp_bytes(seq, data=b"ustack-interop6!"):
        """An echo request's bytes with the checksum for src -> dst."""
        return bytes(IPv6(src=src, dst=dst) / echo(seq, data))[40:]

    frames = {}
    # Payload length past the end of the frame, and short of the
    # ICMPv6 header.
    frames["plen_long"] = [eth(IPv6(src=src, dst=dst, plen=1000) / echo(1))]
    frames["plen_short"] = [eth(IPv6(src=src, dst=dst, plen=4) / echo(2))]
    # RFC 8200 §4.1: hop-by-hop options only right after the header.
    frames["hbh_not_first"] = [eth(IPv6(src=src, dst=dst) / IPv6ExtHdrDestOpt() /
                                   IPv6ExtHdrHopByHop() / echo(3))]
    # RFC 5095: type 0 routing header with segments left.
    frames["rh0"] = [eth(IPv6(src=src, dst=dst) /
                         IPv6ExtHdrRouting(type=0, segleft=1, addresses=[src]) / echo(4))]
    # RFC 5722: overlapping fragments drop the datagram.
    e = icmp_bytes(5, b"O" * 32)  # 40 bytes
    frames["frag_overlap"] = [
        eth(IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(nh=58, offset=0, m=1, id=0x60001) / e[:24]),
        eth(IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(nh=58, offset=2, m=0, id=0x60001) / e[16:]),
    ]
    # RFC 6946: an atomic fragment is processed at once.
    frames["atomic_frag"] = [eth(IPv6(src=src, dst=dst) /
                                 IPv6ExtHdrFragment(nh=58, offset=0, m=0, id=0x60002) / icmp_bytes(6))]
    # RFC 7112: a first fragment that ends inside the header chain (a
    # destination options header, then nothing of the ICMPv6 header).
    frames["tiny_first"] = [eth(IPv6(src=src, dst=dst) /
                                IPv6ExtHdrFragment(nh=60, offset=0, m=1, id=0x60003) /
                                IPv6ExtHdrDestOpt(nh=58))]
    # 150 destination options headers in a row.
    chain = IPv6(src=src, dst=dst)
    for _ in range(150):
        chain = chain / IPv6ExtHdrDestOpt()
    frames["destopt_150"] = [eth(chain / echo(7))]
    # RFC 4861 §4.6: an option of length 0 (a source link-layer address
    # option, type 1) in a neighbour solicitation for the stack.
    ns = bytes(IPv6(src=src_ll, dst=dst_ll, hlim=255) / ICMPv6ND_NS(tgt=dst_ll))[40:]
    opt = b"\x01\x00" + src_mac
    ns_pkt = IPv6(src=src_ll, dst=dst_ll, hlim=255, nh=58, plen=len(ns) + len(opt))
    raw = bytearray(bytes(ns_pkt) + ns + opt)
    raw[42:44] = b"\x00\x00"
    raw[42:44] = struct.pack("!H", icmp6_csum(src_ll, dst_ll, bytes(raw[40:])))
    frames["nd_opt_len0"] = [eth(bytes(raw))]
    # A router advertisement with a prefix information option whose
    # prefix length is 200.
    frames["ra_prefix_len200"] = [eth(IPv6(src=src_ll, dst=dst_ll, hlim=255) / ICMPv6ND_RA() /
                                      ICMPv6NDOptPrefixInfo(prefixlen=200, prefix="2001:db8:202::"))]
    frames["good"] = [good(8)]

    for name in classes:
        try:
            for f in frames[name]:
                s.send(f)
        except OSError as err:
            print("REFUSED", name, errno.errorcode.get(err.errno, str(err.errno)), flush=True)
            continue
        print("SENT", name, len(frames[name]), flush=True)


def icmp6_csum(src, dst, msg):
    """The ICMPv6 checksum of msg (checksum field zero) from src to dst."""
    ph = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) +
          struct.pack("!I3xB", len(msg), 58))
    b = ph + msg
    if len(b) % 2:
        b += b"\x00"
    total = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


if __name__ == "__main__":
    main()
