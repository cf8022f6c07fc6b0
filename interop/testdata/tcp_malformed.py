#!/usr/bin/python3
"""Send malformed TCP segments to a ustack stack, for interop.TestTCPMalformed.

Run inside the kernel's namespace with Debian's python3-scapy:

    /usr/bin/python3 tcp_malformed.py IFACE DST_MAC DST_IP SPOOF_IP LPORT CPORT \
        KERNEL_IP KERNEL_PORT KERNEL_DPORT

Segments go out through a plain AF_PACKET socket on IFACE, to four
targets on the stack at DST_IP:

  L  the listening port LPORT (an echo service), from SPOOF_IP
  C  the closed port CPORT, from SPOOF_IP
  E  a connection to LPORT that this script opens itself from SPOOF_IP
     (it answers the stack's ARP requests for SPOOF_IP, which the kernel
     does not own, so the kernel drops the stack's segments to it
     silently and only this script sees them)
  K  the kernel's own connection KERNEL_IP:KERNEL_PORT -> DST_IP:KERNEL_DPORT
     (only segments the stack must drop before looking the connection
     up: its sequence numbers are unknown here)

Scapy builds the reference segment; every defect is written by hand into
the bytes. After each class the script sends a marker, a SYN to CPORT,
and waits for its RST: the stack answers in order, so what came from
the stack on the class's 4-tuple before the marker's RST is the class's
answer. Answers are reduced to tokens:

    none      nothing
    rst       <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.1, to an ACK)
    rstack    <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> (to no ACK)
    synack    SYN,ACK acknowledging the SYN
    ack       an ACK on E carrying SND.NXT and RCV.NXT (an RFC 5961
              challenge ACK, or RFC 9293's "send an ACK")
    dataN     N bytes of data on E at SND.NXT (the echo)
    raw:...   anything else (flags:seq:ack:len)

Output, one line each:

    ANSWER <target>/<class> <token>[+<token>...]
    MARKERS <n>
    ECHO <ok|bad ...>      E still carries data after all the classes
"""

import socket
import struct
import sys
import time

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

ETH_P_IP, ETH_P_ARP = 0x0800, 0x0806
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80


def csum(b):
    """The Internet checksum (RFC 1071) of b."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_segment(src, dst, sport, dport, seq, ack, flags, win=65535, urg=0,
                opts=b"", data=b"", doff=None, bad_csum=False):
    """A TCP header, options and data, with the data offset doff (default:
    the true header length) and a right (or, bad_csum, wrong) checksum."""
    if doff is None:
        doff = 5 + len(opts) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                    doff << 4, flags, win, 0, urg) + opts + data
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(h)) + h)
    if bad_csum:
        c ^= 0x5A5A
    return h[:16] + struct.pack("!H", c) + h[18:]


def ipv4(src, dst, payload, proto=6):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x4242, 0x4000, 64,
                    proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def flagstr(f):
    return "".join(c for c, b in zip("FSRPAUEC", (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR)) if f & b) or "0"


class Stack:
    """The stack as seen from IFACE."""

    def __init__(self, iface, dst_mac, dst_ip, spoof_ip):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.s.bind((iface, 0))
        self.mac = self.s.getsockname()[4]
        self.dmac = bytes.fromhex(dst_mac.replace(":", ""))
        self.dst = socket.inet_aton(dst_ip)
        self.spoof = socket.inet_aton(spoof_ip)
        self.on_segment = None  # called with each segment from the stack

    def send_ip(self, src, payload):
        self.s.send(self.dmac + self.mac + struct.pack("!H", ETH_P_IP) + ipv4(src, self.dst, payload))

    def arp(self, op, tha, tpa):
        b = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, op) + self.mac + self.spoof + tha + tpa
        dst = self.dmac if op == 2 else b"\xff" * 6
        self.s.send(dst + self.mac + struct.pack("!H", ETH_P_ARP) + b)

    def poll(self, until, timeout=5.0, last=False):
        """Reads frames until until(seg) is true for a segment from the
        stack, answering ARP for SPOOF_IP meanwhile; returns the segments
        (dicts) seen before it (and it too, if last), or raises
        TimeoutError."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("waiting; saw %r" % seen)
            self.s.settimeout(left)
            try:
                f = self.s.recv(65535)
            except socket.timeout:
                continue
            if len(f) < 14:
                continue
            et = struct.unpack("!H", f[12:14])[0]
            if et == ETH_P_ARP and len(f) >= 42:
                op = struct.unpack("!H", f[20:22])[0]
                sha, spa, tpa = f[22:28], f[28:32], f[38:42]
                if op == 1 and tpa == self.spoof and spa == self.dst:
                    self.arp(2, sha, spa)
                continue
            if et != ETH_P_IP or f[6:12] != self.dmac or f[23] != 6:
                continue
            ihl = (f[14] & 0x0F) * 4
            ip, t = f[14:], f[14 + ihl:]
            if ip[12:16] != self.dst:
                continue
            sport, dport, seq, ack, off, flags, win = struct.unpack("!HHIIBBH", t[:16])
            tl = struct.unpack("!H", ip[2:4])[0]
            seg = {"src": ip[12:16], "dst": ip[16:20], "sport": sport, "dport": dport,
                   "seq": seq, "ack": ack, "flags": flags,
                   "data": t[(off >> 4) * 4:tl - ihl]}
            if self.on_segment:
                self.on_segment(seg)
            if until(seg):
                return seen + [seg] if last else seen
            seen.append(seg)


def main():
    (iface, dst_mac, dst_ip, spoof_ip, lport, cport,
     kernel_ip, kernel_port, kernel_dport) = sys.argv[1:10]
    lport, cport, kernel_port, kernel_dport = int(lport), int(cport), int(kernel_port), int(kernel_dport)
    st = Stack(iface, dst_mac, dst_ip, spoof_ip)
    spoof, kip = st.spoof, socket.inet_aton(kernel_ip)

    # The hand-built segment is what scapy would build.
    ref = bytes(IP(src=spoof_ip, dst=dst_ip) / TCP(sport=1234, dport=lport, seq=7, ack=9,
                                                  flags="PA", window=512, urgptr=3) / b"xyz")[20:]
    mine = tcp_segment(spoof, st.dst, 1234, lport, 7, 9, PSH | ACK, win=512, urg=3, data=b"xyz")
    if ref != mine:
        print("MISMATCH", ref.hex(), mine.hex(), flush=True)
        sys.exit(1)

    # Tell the stack where SPOOF_IP is (RFC 826: it merges the sender of
    # a request for itself) and wait for its reply.
    for _ in range(5):
        st.arp(1, b"\0" * 6, st.dst)
        try:
            st.s.settimeout(1)
            while True:
                f = st.s.recv(65535)
                if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02" and f[28:32] == st.dst:
                    break
            break
        except socket.timeout:
            continue
    else:
        print("NOARP", flush=True)
        sys.exit(1)

    # E: open a connection from SPOOF_IP (MSS only: no window scaling,
    # timestamps or SACK).
    e = {"sport": 40007, "iss": 1000000, "rcv_nxt": None, "got": b""}
    e["snd_nxt"] = e["iss"] + 1

    def track(seg):
        # Keep E's RCV.NXT, and acknowledge the stack's data on E.
        if seg["dport"] != e["sport"] or seg["dst"] != spoof:
            return
        if seg["flags"] & SYN:
            e["rcv_nxt"] = (seg["seq"] + 1) & 0xFFFFFFFF
            return
        n = len(seg["data"])
        if n and seg["seq"] == e["rcv_nxt"]:
            e["rcv_nxt"] = (e["rcv_nxt"] + n) & 0xFFFFFFFF
            e["got"] += seg["data"]
            st.send_ip(spoof, tcp_segment(spoof, st.dst, e["sport"], lport, e["snd_nxt"], e["rcv_nxt"], ACK))

    st.on_segment = track
    mss = struct.pack("!BBH", 2, 4, 1460)
    st.send_ip(spoof, tcp_segment(spoof, st.dst, e["sport"], lport, e["iss"], 0, SYN, opts=mss))
    st.poll(lambda s: s["dport"] == e["sport"] and s["flags"] == SYN | ACK)
    st.send_ip(spoof, tcp_segment(spoof, st.dst, e["sport"], lport, e["snd_nxt"], e["rcv_nxt"], ACK))

    def e_send(data):
        st.send_ip(spoof, tcp_segment(spoof, st.dst, e["sport"], lport, e["snd_nxt"], e["rcv_nxt"],
                                      PSH | ACK, data=data))
        e["snd_nxt"] += len(data)

    def e_echo(data):
        """Sends data on E and waits for the echo."""
        want = e["got"] + data
        e_send(data)
        st.poll(lambda s: e["got"] == want)

    e_echo(b"before the malformed segments\n")

    markers = [0]

    def marker():
        markers[0] += 1
        sport = 50000 + markers[0]
        st.send_ip(spoof, tcp_segment(spoof, st.dst, sport, cport, 777, 0, SYN))
        return st.poll(lambda s: s["dport"] == sport and s["flags"] & RST)

    def token(seg, sent, target):
        f, n = seg["flags"], len(seg["data"])
        s_seq, s_ack, s_flags, s_len = sent
        if target == "E" and f == ACK and n == 0 and seg["seq"] == e["snd_nxt_stack"] and seg["ack"] == e["rcv_nxt_stack"]:
            return "ack"
        if target == "E" and n and f & ACK and not f & (SYN | RST | FIN):
            return "data%d" % n
        if f == RST and seg["seq"] == s_ack and n == 0:
            return "rst"
        if f == RST | ACK and seg["seq"] == 0 and seg["ack"] == (s_seq + s_len) & 0xFFFFFFFF:
            return "rstack"
        if f == SYN | ACK and seg["ack"] == (s_seq + 1) & 0xFFFFFFFF:
            return "synack"
        return "raw:%s:%d:%d:%d" % (flagstr(f), seg["seq"], seg["ack"], n)

    sports = {"L": [41000], "C": [42000]}

    def probe(target, name, flags, seq=None, ack=None, wait_echo=0, **kw):
        """Sends one segment of class name to target and reports the answer."""
        if target in ("L", "C"):
            sports[target][0] += 1
            sport, dport, src = sports[target][0], lport if target == "L" else cport, spoof
            seq = 5000 if seq is None else seq
            ack = 0 if ack is None else ack
        elif target == "E":
            sport, dport, src = e["sport"], lport, spoof
            seq = e["snd_nxt"] if seq is None else seq
            ack = e["rcv_nxt"] if ack is None else ack
        else:
            sport, dport, src = kernel_port, kernel_dport, kip
            seq = 1 if seq is None else seq
            ack = 1 if ack is None else ack
        # What the stack's answers on E carry: its SND.NXT is our RCV.NXT
        # (everything it sent is acknowledged), its RCV.NXT our SND.NXT.
        e["snd_nxt_stack"], e["rcv_nxt_stack"] = e.get("rcv_nxt"), e["snd_nxt"]
        data = kw.get("data", b"")
        seg = tcp_segment(src, st.dst, sport, dport, seq, ack, flags, **kw)
        st.send_ip(src, seg)
        slen = len(data) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        seen = []
        if wait_echo:
            e["snd_nxt"] += len(data)
            e["rcv_nxt_stack"] = e["snd_nxt"]  # the stack's ACKs of it
            want = e["got"] + data
            seen = st.poll(lambda s: e["got"] == want, last=True)
        seen += marker()
        ours = [s for s in seen if s["dport"] == sport and s["dst"] == src]
        if target == "K":
            # The kernel's connection is live: the stack may send it a
            # window update or a delayed ACK at any time. Only what is
            # not a pure ACK can be an answer.
            ours = [s for s in ours if s["flags"] != ACK or s["data"]]
        toks = [token(s, (seq, ack, flags, slen), target) for s in ours]
        if target == "E" and wait_echo:
            # ACKs of the data that came alone (at once, delayed, or
            # window updates) are not the answer.
            toks = [t for t in toks if t != "ack"]
        if target == "L" and "synack" in toks:
            # Close the half-open connection the SYN made.
            st.send_ip(src, tcp_segment(src, st.dst, sport, dport, seq + 1, 0, RST))
        print("ANSWER %s/%s %s" % (target, name, "+".join(toks) or "none"), flush=True)

    ts_trunc = b"\x08\x0a\x00\x00"      # timestamps claiming 10 bytes in a 4-byte area
    mss_trunc = b"\x01\x01\x02\x04"     # NOP NOP, then MSS with 2 of its 4 bytes
    targets_all = ["L", "C", "E", "K"]
    for tgt in targets_all:
        base = SYN if tgt in ("L", "C") else ACK
        # RFC 9293 §3.1: the data offset is at least 5 and within the segment.
        for d in range(5):
            probe(tgt, "doff%d" % d, base, doff=d)
        probe(tgt, "doff6_past", base, doff=6)                  # 24-byte header in a 20-byte segment
        probe(tgt, "doff15_past", base, doff=15, data=b"x" * 20)  # 60 bytes in 40
        # Options with a length of 0 or 1, or running past the header.
        probe(tgt, "opt_len0", base, opts=b"\x02\x00\x00\x00")
        probe(tgt, "opt_len1", base, opts=b"\x08\x01\x00\x00")
        probe(tgt, "opt_trunc_ts", base, opts=ts_trunc)
        probe(tgt, "opt_trunc_mss", base, opts=mss_trunc)
        # Control bits no TCP sends together, all of them, none.
        probe(tgt, "synfin", SYN | FIN)
        probe(tgt, "synrst", SYN | RST)
        probe(tgt, "allflags", 0xFF)
        probe(tgt, "noflags", 0)
        probe(tgt, "bad_checksum", base, bad_csum=True)

    # Well-formed segments, answered as RFC 9293 §3.10.7 says.
    probe("C", "syn", SYN)
    probe("C", "ack", ACK, ack=999)
    probe("C", "fin", FIN)
    probe("C", "rst", RST)
    probe("C", "urg_past", URG | PSH | ACK, ack=999, urg=1000, data=b"urgent!!")
    probe("L", "ack", ACK, ack=999)
    probe("L", "rst", RST)
    probe("L", "fin", FIN)
    probe("L", "urg_past", SYN | URG, urg=1000, data=b"urgent!!")
    # E, RFC 5961: a RST in the window but not at RCV.NXT, and a SYN,
    # draw a challenge ACK (§3.2, §4.2); an ACK of data never sent or
    # older than the window is answered with an ACK and dropped (§5.2,
    # RFC 9293 §3.10.7.4); a RST or data out of the window likewise
    # (RFC 9293 §3.10.7.4: a RST silently).
    probe("E", "rst_in_window", RST, seq=e["snd_nxt"] + 100)
    probe("E", "syn_in_window", SYN, seq=e["snd_nxt"] + 100)
    probe("E", "syn_at_rcv_nxt", SYN)
    probe("E", "ack_unsent", ACK, ack=e["rcv_nxt"] + 100000)
    probe("E", "ack_too_old", ACK, ack=e["rcv_nxt"] - (1 << 30))
    probe("E", "rst_out_of_window", RST, seq=e["snd_nxt"] + (1 << 30))
    probe("E", "data_out_of_window", PSH | ACK, seq=e["snd_nxt"] + (1 << 30), data=b"far away")
    # Urgent pointer past the data: the data is data (RFC 9293 §3.8.5
    # and RFC 6093: urgent data is in-line), and the echo brings it back.
    probe("E", "urg_past", URG | PSH | ACK, urg=1000, data=b"urgent!!", wait_echo=1)

    print("MARKERS %d" % markers[0], flush=True)

    # E still works, and a RST at RCV.NXT then ends it.
    try:
        e_echo(b"after the malformed segments\n")
        print("ECHO ok", flush=True)
    except TimeoutError as err:
        print("ECHO bad %s" % str(err).replace("\n", " ")[:300], flush=True)
    st.send_ip(spoof, tcp_segment(spoof, st.dst, e["sport"], lport, e["snd_nxt"], 0, RST))


if __name__ == "__main__":
    main()
