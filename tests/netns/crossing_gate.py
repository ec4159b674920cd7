#!/usr/bin/env python3
"""UDP relay that makes two WireGuard nodes' first handshakes cross, for meshfwd_crossing.sh.

    crossing_gate.py --a-side 192.0.2.2:52000 --b-side 192.0.2.1:52001 --b-side-netns NS1 \\
                     --a 192.0.2.1:51820 --b 192.0.2.2:51820 --lifetime 60 [--opened FILE]

Node a's endpoint for b is --a-side, node b's endpoint for a is --b-side. A datagram from a
(on the a-side socket) goes to b from the b-side socket, and the other way round, so each node
sees the relay as the other's endpoint. With --b-side-netns the b-side socket is opened in that
network namespace (a's, by name under /run/netns), so each side's endpoint is on the other
node's own host: meshfwd's lanes (ports on the endpoint's host) then reach the right node.

The gate: every datagram is held until each side has sent at least one, then everything held
is released at once (a's first, then b's) and later datagrams pass straight through. Two nodes
that both initiate a handshake at start-up therefore each receive the other's initiation while
their own is outstanding: a crossing handshake, every time, however the start-up times fall.
When the gate opens it writes the time (time.monotonic(), seconds) to --opened and prints
"gate open" to stderr. On exit (--lifetime, SIGTERM or SIGINT) it prints its counts as JSON.
"""
import argparse
import ctypes
import json
import os
import selectors
import signal
import socket
import sys
import time

MAX_HELD = 64  # a node sends a handful of datagrams before the gate opens; beyond that, drop


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


CLONE_NEWNET = 0x40000000


def socket_in_netns(name):
    """A UDP socket created inside network namespace `name`; the thread returns to its own."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a-side", required=True, type=parse_hostport)
    ap.add_argument("--b-side", required=True, type=parse_hostport)
    ap.add_argument("--a", required=True, type=parse_hostport)
    ap.add_argument("--b", required=True, type=parse_hostport)
    ap.add_argument("--b-side-netns", default=None)
    ap.add_argument("--lifetime", required=True, type=float)
    ap.add_argument("--opened", default=None)
    args = ap.parse_args()

    sock_a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock_a.bind(args.a_side)
    if args.b_side_netns:
        sock_b = socket_in_netns(args.b_side_netns)
    else:
        sock_b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock_b.bind(args.b_side)
    for s in (sock_a, sock_b):
        s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock_a, selectors.EVENT_READ, "a")
    sel.register(sock_b, selectors.EVENT_READ, "b")

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    held = {"a": [], "b": []}
    counts = {"a_to_b": 0, "b_to_a": 0, "held_a": 0, "held_b": 0, "dropped": 0, "foreign": 0}
    gate_open = False
    deadline = time.monotonic() + args.lifetime
    print("listening", file=sys.stderr, flush=True)

    def forward(side, data):
        if side == "a":
            sock_b.sendto(data, args.b)
            counts["a_to_b"] += 1
        else:
            sock_a.sendto(data, args.a)
            counts["b_to_a"] += 1

    while not stop and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.1):
            sock, side = key.fileobj, key.data
            for _ in range(64):
                try:
                    data, source = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                if source[0] != (args.a if side == "a" else args.b)[0]:
                    counts["foreign"] += 1
                    continue
                if gate_open:
                    forward(side, data)
                elif len(held[side]) < MAX_HELD:
                    held[side].append(data)
                    counts["held_" + side] += 1
                else:
                    counts["dropped"] += 1
        if not gate_open and held["a"] and held["b"]:
            gate_open = True
            for side in ("a", "b"):
                for data in held[side]:
                    forward(side, data)
                held[side].clear()
            if args.opened:
                with open(args.opened, "w") as f:
                    f.write(f"{time.monotonic():.6f}\n")
            print("gate open", file=sys.stderr, flush=True)
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
