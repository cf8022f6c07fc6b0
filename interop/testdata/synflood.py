#!/usr/bin/python3
"""SYN flood a ustack listener, for interop.TestTCPSYNFlood.

Run inside the kernel's namespace with Debian's python3-scapy:

    /usr/bin/python3 synflood.py IFACE DST_MAC DST_IP DPORT SRC_NET COUNT SECONDS SEED

Sends COUNT SYNs (with an MSS option) to DST_IP:DPORT, from random
addresses of SRC_NET (a CIDR; its network and broadcast addresses are
skipped) and random ports, with random sequence numbers, spread evenly
over SECONDS, through a plain AF_PACKET socket on IFACE. The frames are
built by hand (scapy's per-packet building is too slow for a flood); the
first one is checked against scapy's own build. Prints "SENT <n>" at the
end.
"""

import ipaddress
import random
import socket
import struct
import sys
import time

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether


def csum(b):
    """The Internet checksum (RFC 1071) of b."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn(dmac, smac, src, dst, sport, dport, seq):
    """An Ethernet frame holding a TCP SYN with the MSS option 1460."""
    opts = struct.pack("!BBH", 2, 4, 1460)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (5 + 1) << 4, 0x02, 64240, 0, 0) + opts
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dmac + smac + b"\x08\x00" + ip + tcp


def main():
    iface, dst_mac, dst_ip, dport, src_net, count, seconds, seed = sys.argv[1:9]
    dport, count, seconds = int(dport), int(count), float(seconds)
    rng = random.Random(int(seed))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    smac = s.getsockname()[4]
    dmac = bytes.fromhex(dst_mac.replace(":", ""))
    dst = socket.inet_aton(dst_ip)
    hosts = [socket.inet_aton(str(h)) for h in ipaddress.ip_network(src_net).hosts()
             if str(h) != dst_ip]

    # The hand-built frame is what scapy would build.
    f = syn(dmac, smac, hosts[0], dst, 40000, dport, 12345)
    ref = bytes(Ether(dst=dst_mac, src=smac) /
                IP(src=socket.inet_ntoa(hosts[0]), dst=dst_ip, flags="DF", id=0) /
                TCP(sport=40000, dport=dport, seq=12345, flags="S", window=64240,
                    options=[("MSS", 1460)]))
    if f != ref:
        print("MISMATCH", f.hex(), ref.hex(), flush=True)
        sys.exit(1)

    burst = 50
    start = time.monotonic()
    sent = 0
    while sent < count:
        for _ in range(min(burst, count - sent)):
            f = syn(dmac, smac, rng.choice(hosts), dst, rng.randrange(1024, 65536), dport,
                    rng.getrandbits(32))
            try:
                s.send(f)
            except BlockingIOError:
                continue
            sent += 1
        # Pace the bursts so the flood lasts about SECONDS.
        due = start + seconds * sent / count
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
    print("SENT", sent, flush=True)


if __name__ == "__main__":
    main()
