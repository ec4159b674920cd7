#!/usr/bin/env python3
"""UDP relay that reorders datagrams, for tests/netns/meshfwd_impaired.sh (single-threaded).

    impair_relay.py --listen 192.0.2.1:51999 --peer 192.0.2.2:51820 --lifetime 60
                    [--delay-percent 2.5] [--swap-percent 2.5] [--seed N] [--stats FILE]

One socket bound to --listen. A datagram from --peer goes to the last other address that sent
to the relay (the "client"); a datagram from anywhere else makes that address the client and
goes to --peer. So a WireGuard node whose endpoint is the relay talks to the peer through it,
and the peer sees the relay as that node's endpoint (learned from authenticated packets).

Impairments, chosen per datagram and direction, never loss or duplication (loss comes from
nftables, so every reordered datagram is a fresh one the receiver must accept):
  delay: held back 1-5 ms while later datagrams pass it (reordering by up to a few hundred
         packets at high rates, far inside WireGuard's 8128-packet window);
  swap:  held until the next datagram in the same direction has been sent (adjacent swap), or
         at most 5 ms.
Once bound it prints "listening on HOST:PORT" to stderr. On exit (after --lifetime seconds, SIGTERM or SIGINT) it prints its counts as one JSON line to
stdout and, with --stats, writes them to FILE. The lifetime bounds it even if the test's
cleanup never runs.
"""
import argparse
import heapq
import json
import random
import selectors
import signal
import socket
import sys
import time

HOLD_MAX_S = 0.005


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, type=parse_hostport)
    ap.add_argument("--peer", required=True, type=parse_hostport)
    ap.add_argument("--lifetime", required=True, type=float, help="seconds, then exit")
    ap.add_argument("--delay-percent", type=float, default=2.5)
    ap.add_argument("--swap-percent", type=float, default=2.5)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--stats", default=None)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    p_delay = args.delay_percent / 100.0
    p_swap = p_delay + args.swap_percent / 100.0
    peer = (socket.gethostbyname(args.peer[0]), args.peer[1])

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    sock.bind(args.listen)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    print("listening on %s:%d" % args.listen, file=sys.stderr, flush=True)  # the test waits for it

    stats = {"to_peer": 0, "to_client": 0, "delayed": 0, "swapped": 0, "no_client": 0, "send_errors": 0}
    client = None
    delayed = []  # heap of (due, seq, data, dst)
    seq = 0
    swap_held = {}  # direction -> (deadline, data, dst)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    deadline = time.monotonic() + args.lifetime

    def send(data, dst):
        try:
            sock.sendto(data, dst)
        except (BlockingIOError, OSError):
            stats["send_errors"] += 1

    def release_swap(direction):
        held = swap_held.pop(direction, None)
        if held is not None:
            send(held[1], held[2])

    while not stop:
        now = time.monotonic()
        if now >= deadline:
            break
        while delayed and delayed[0][0] <= now:
            _, _, data, dst = heapq.heappop(delayed)
            send(data, dst)
        for direction in [d for d, h in swap_held.items() if h[0] <= now]:
            release_swap(direction)
        wake = deadline
        if delayed:
            wake = min(wake, delayed[0][0])
        for h in swap_held.values():
            wake = min(wake, h[0])
        # At most 0.1 s: a signal does not end select() (PEP 475 retries it), the stop flag does.
        if not sel.select(min(0.1, max(0.0, wake - now))):
            continue
        # Drain what is queued now; bounded so due timers are not starved.
        for _ in range(256):
            try:
                data, src = sock.recvfrom(65535)
            except BlockingIOError:
                break
            if src == peer:
                if client is None:
                    stats["no_client"] += 1
                    continue
                dst, direction = client, "to_client"
            else:
                client = src
                dst, direction = peer, "to_peer"
            stats[direction] += 1
            r = rng.random()
            now = time.monotonic()
            if r < p_delay:
                stats["delayed"] += 1
                seq += 1
                heapq.heappush(delayed, (now + rng.uniform(0.001, HOLD_MAX_S), seq, data, dst))
            elif r < p_swap and direction not in swap_held:
                stats["swapped"] += 1
                swap_held[direction] = (now + HOLD_MAX_S, data, dst)
            else:
                send(data, dst)
                release_swap(direction)

    # Flush what is held so nothing the test counted as sent is silently lost at exit.
    for _, _, data, dst in sorted(delayed):
        send(data, dst)
    for direction in list(swap_held):
        release_swap(direction)
    line = json.dumps(stats)
    print(line, flush=True)
    if args.stats:
        with open(args.stats, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
