#!/usr/bin/env python3
"""Hostile UDP traffic at a WireGuard port, for tests/netns/meshfwd_hostile.sh (single-threaded).

    hostile_sender.py --target 192.0.2.1:51820 --capture-if veth2
                      [--capture-seconds 1.5] [--capture-max 4000] [--rate 10000] [--duration 10]
                      [--seed N]

Phase 1 (capture): an AF_PACKET socket on --capture-if records the UDP payloads of WireGuard
transport messages (first byte 4, three zero bytes, at least 32 bytes) going to --target, i.e.
real, authentic packets of a live session. UDP GSO super-packets (a sender using UDP_SEGMENT
over veth) are split at gso_size, read from the virtio-net header PACKET_VNET_HDR adds.
Phase 2 (flood): --rate datagrams/s for --duration s from one new UDP socket (so a new source
port), each drawn with equal odds from four categories:
  random         random bytes, 1..1500 long;
  truncated      a WireGuard header (type 1, 2, 3 or 4 and three zero bytes) at a wrong size:
                 initiation != 148, response != 92, cookie reply != 64, transport < 32 bytes;
  unknown_index  well-formed transport messages (16-byte header + 16*k + 16-byte tag) with a
                 random receiver index that no session uses;
  replay         a captured transport message sent again unchanged: authentic but already seen.
Prints one JSON line: {"captured": n, "sent": {category: n}, "total": n, "send_errors": n,
"seconds": s}. A datagram the kernel refused (send_errors) is not counted as sent. Exit 1 if
nothing was captured (the legitimate traffic is not running), 2 on bad arguments.
"""
import argparse
import json
import random
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
VNET_HDR_LEN = 10  # struct virtio_net_hdr without num_buffers
WRONG_SIZE = {1: 148, 2: 92, 3: 64}


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    return socket.gethostbyname(host.strip("[]")), int(port)


def is_transport(payload):
    return len(payload) >= 32 and payload[0] == 4 and payload[1:4] == b"\0\0\0"


def udp_payloads_to(frame, target):
    """Yields the UDP payload(s) in one captured frame (vnet header + Ethernet) sent to target."""
    if len(frame) < VNET_HDR_LEN + 14 + 20 + 8:
        return
    _flags, gso_type, _hdr_len, gso_size = struct.unpack_from("<BBHH", frame, 0)
    eth = frame[VNET_HDR_LEN:]
    if eth[12:14] != b"\x08\x00":
        return
    ip = eth[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != 17 or len(ip) < ihl + 8:
        return
    if socket.inet_ntoa(ip[16:20]) != target[0]:
        return
    udp = ip[ihl:]
    dport, length = struct.unpack_from("!HH", udp, 2)
    if dport != target[1]:
        return
    if gso_type != 0 and gso_size > 0:
        payload = bytes(udp[8:])  # the header's length is not the whole super-packet's
        for off in range(0, len(payload), gso_size):
            yield payload[off:off + gso_size]
    else:
        yield bytes(udp[8:length])  # an Ethernet frame may carry padding after it


def capture(ifname, target, seconds, limit):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        s.bind((ifname, 0))
        got = []
        end = time.monotonic() + seconds
        while len(got) < limit:
            left = end - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                frame, addr = s.recvfrom(1 << 17)
            except socket.timeout:
                break
            # Only what this host sends: a frame the peer sent to us would be the peer's own.
            if addr[2] != PACKET_OUTGOING:
                continue
            got.extend(p for p in udp_payloads_to(frame, target) if is_transport(p))
        return got[:limit]
    finally:
        s.close()


def make_random(rng):
    return rng.randbytes(rng.randint(1, 1500))


def make_truncated(rng):
    t = rng.randint(1, 4)
    if t == 4:
        n = rng.randint(1, 31)
    else:
        right = WRONG_SIZE[t]
        n = rng.choice([rng.randint(1, right - 1), rng.randint(right + 1, right + 200)])
    return (bytes([t, 0, 0, 0]) + rng.randbytes(n))[:n]


def make_unknown_index(rng):
    index = rng.getrandbits(32)
    counter = rng.getrandbits(64)
    body = rng.randbytes(16 * rng.randint(0, 88) + 16)
    return struct.pack("<BxxxIQ", 4, index, counter) + body


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, type=parse_hostport)
    ap.add_argument("--capture-if", required=True)
    ap.add_argument("--capture-seconds", type=float, default=1.5)
    ap.add_argument("--capture-max", type=int, default=4000)
    ap.add_argument("--rate", type=float, default=10000.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    captured = capture(args.capture_if, args.target, args.capture_seconds, args.capture_max)
    if not captured:
        print(json.dumps({"error": "no transport messages to %s:%d seen on %s" %
                          (args.target[0], args.target[1], args.capture_if)}), flush=True)
        return 1

    categories = ["random", "truncated", "unknown_index", "replay"]
    makers = {
        "random": make_random,
        "truncated": make_truncated,
        "unknown_index": make_unknown_index,
        "replay": lambda r: r.choice(captured),
    }
    sent = dict.fromkeys(categories, 0)
    errors = 0
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.bind(("0.0.0.0", 0))
    t0 = time.monotonic()
    total = 0
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= args.duration:
            break
        due = int(elapsed * args.rate) + 1
        while total < due:
            cat = rng.choice(categories)
            try:
                out.sendto(makers[cat](rng), args.target)
            except OSError:
                errors += 1
                total += 1  # keep the pace; the datagram is not counted as sent
                continue
            sent[cat] += 1
            total += 1
        time.sleep(0.001)
    seconds = time.monotonic() - t0
    print(json.dumps({"captured": len(captured), "sent": sent, "total": sum(sent.values()),
                      "send_errors": errors, "seconds": round(seconds, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
