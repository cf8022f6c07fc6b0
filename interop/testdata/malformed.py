#!/usr/bin/python3
"""Send malformed frames to a ustack stack, for interop.TestMalformed.

Run inside the kernel's namespace with Debian's python3-scapy:

    /usr/bin/python3 malformed.py IFACE DST_MAC SRC_IP DST_IP

Scapy builds the well-formed layers; every defect is written by hand into
the bytes, and the frames go out through a plain AF_PACKET socket (scapy's
own L2 socket pads frames the kernel refuses, which would hide a runt).

One line per class on stdout:
    SENT <class> <frames>
    REFUSED <class> <errno name>   (the kernel would not send it)
"""

import errno
import socket
import struct
import sys

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.utils import checksum

ETH_P_IP, ETH_P_ARP = 0x0800, 0x0806


def ipv4(src, dst, payload, proto=1, ihl=5, tl=None, csum=None, ver=4,
         ttl=64, flags=0, frag=0, ident=0x4242, options=b""):
    """An IPv4 header with exactly the given fields, then payload.

    tl and csum default to the right values; options are not padded.
    """
    hlen = 20 + len(options)
    if tl is None:
        tl = hlen + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", (ver << 4) | ihl, 0, tl, ident,
                    (flags << 13) | frag, ttl, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst)) + options
    if csum is None:
        csum = checksum(h)
    return h[:10] + struct.pack("!H", csum) + h[12:] + payload


def echo(seq, data=b"ustack-interop!!"):
    """An ICMP echo request (type 8) with a valid checksum."""
    return bytes(ICMP(type=8, id=0x5555, seq=seq) / data)


def udp(src, dst, dport, data):
    """A UDP header and data with a valid checksum."""
    return bytes(IP(src=src, dst=dst) / UDP(sport=40000, dport=dport) / data)[20:]


def arp_raw(op, smac, sip, tip, hlen=6, plen=4, cut=None):
    """An ARP packet with the given lengths (addresses padded or cut to
    fit them), optionally truncated to cut bytes."""
    sha = (smac + b"\x00" * 8)[:hlen]
    tha = b"\x00" * hlen
    spa = (socket.inet_aton(sip) + b"\x00" * 8)[:plen]
    tpa = (socket.inet_aton(tip) + b"\x00" * 8)[:plen]
    b = struct.pack("!HHBBH", 1, ETH_P_IP, hlen, plen, op) + sha + spa + tha + tpa
    return b if cut is None else b[:cut]


def main():
    iface, dst_mac, src_ip, dst_ip = sys.argv[1:5]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    src_mac = s.getsockname()[4]
    dmac = bytes.fromhex(dst_mac.replace(":", ""))

    def eth(etype, payload, dst=dmac):
        return dst + src_mac + struct.pack("!H", etype) + payload

    def ip(payload, **kw):
        return eth(ETH_P_IP, ipv4(src_ip, dst_ip, payload, **kw))

    def send(name, *frames):
        try:
            for f in frames:
                s.send(f)
        except OSError as e:
            print("REFUSED", name, errno.errorcode.get(e.errno, str(e.errno)), flush=True)
            return
        print("SENT", name, len(frames), flush=True)

    ping = echo(1)

    # IPv4 header length, total length, checksum, version.
    send("ihl_short", ip(ping, ihl=4))
    send("ihl_past_packet", ip(ping[:8], ihl=15))
    send("len_short", ip(ping, tl=12))
    send("len_long", ip(ping, tl=1000))
    send("bad_checksum", ip(ping, csum=0x1234))
    send("version5", ip(ping, ver=5))
    send("version6", ip(ping, ver=6))
    # RFC 1122 §3.2.1.7: TTL 0 to us is delivered (and answered).
    send("ttl0", ip(echo(2), ttl=0))
    # Options: timestamp with length 0, record route with length 1, and
    # a timestamp claiming 40 bytes in a 4-byte option area.
    send("opt_len0", ip(ping, ihl=6, options=b"\x44\x00\x00\x00"))
    send("opt_len1", ip(ping, ihl=6, options=b"\x07\x01\x00\x00"))
    send("opt_past_header", ip(ping, ihl=6, options=b"\x44\x28\x05\x00"))

    # Fragments (offsets in 8-byte units). A UDP datagram to the echo
    # port cut in 8-byte pieces: tiny, but whole once reassembled.
    d = udp(src_ip, dst_ip, 7, b"tiny fragments, one datagram....")  # 40 bytes
    pieces = [d[i:i + 8] for i in range(0, len(d), 8)]
    send("tiny_fragments", *[
        ip(p, proto=17, ident=0x1001, flags=1 if i < len(pieces) - 1 else 0, frag=i)
        for i, p in enumerate(pieces)])
    send("frag_empty", ip(b"", proto=17, ident=0x1002, flags=1, frag=0))
    send("frag_odd_length", ip(b"12345", proto=17, ident=0x1003, flags=1, frag=0))
    send("frag_overlap",
         ip(b"A" * 16, proto=17, ident=0x1004, flags=1, frag=0),
         ip(b"B" * 16, proto=17, ident=0x1004, flags=1, frag=1))
    # Never completed: a first fragment alone and a middle one alone.
    send("frag_incomplete",
         ip(d[:16], proto=17, ident=0x1005, flags=1, frag=0),
         ip(b"M" * 16, proto=17, ident=0x1006, flags=1, frag=100))
    # The last fragment would end the datagram past 65535 bytes.
    send("frag_too_big", ip(b"Z" * 40, proto=17, ident=0x1007, flags=0, frag=8189))

    # Oversize: an unfragmented echo request of 4000 bytes, more than
    # the stack's 1500-byte MTU (the test raised the devices' MTU).
    send("oversize", ip(echo(3, b"O" * 3972), flags=2))

    # ARP: odd lengths, truncated, unknown opcodes.
    send("arp_hlen7", eth(ETH_P_ARP, arp_raw(1, src_mac, src_ip, dst_ip, hlen=7)))
    send("arp_plen5", eth(ETH_P_ARP, arp_raw(1, src_mac, src_ip, dst_ip, plen=5)))
    send("arp_truncated", eth(ETH_P_ARP, arp_raw(1, src_mac, src_ip, dst_ip, cut=20)))
    send("arp_opcode", eth(ETH_P_ARP, arp_raw(3, src_mac, src_ip, dst_ip)),
         eth(ETH_P_ARP, arp_raw(9, src_mac, src_ip, dst_ip)))

    # Runts: shorter than an Ethernet header (the kernel may refuse),
    # and a bare header for IPv4 and for ARP.
    send("runt_short", eth(ETH_P_IP, b"")[:10])
    send("runt_header_ipv4", eth(ETH_P_IP, b""))
    send("runt_header_arp", eth(ETH_P_ARP, b""))

    # 802.1Q-tagged echo request (VLAN 5), and an unknown EtherType.
    tagged = bytes(Ether(dst=dst_mac, src=src_mac) / Dot1Q(vlan=5) /
                   IP(src=src_ip, dst=dst_ip) / ICMP(type=8, id=0x5555, seq=4))
    send("vlan", tagged)
    send("unknown_ethertype", eth(0x88B5, b"local experimental ethertype".ljust(46, b".")))


if __name__ == "__main__":
    main()
