#!/usr/bin/env python3
"""Handshake-initiation flood at a WireGuard port, for tests/netns/meshfwd_under_load.sh
(single-threaded; runs as a plain process, no root needed by itself).

    handshake_flood.py --target 192.0.2.1:51820 --public-key BASE64 [--bind 192.0.2.3]
                       [--rate 5000] [--burst 128] [--duration 12] [--mac2-share 0.5]
                       [--seed N] [--progress FILE]

Sends type-1 initiations (148 bytes) with random sender index, ephemeral, encrypted static and
timestamp, and a VALID mac1 for the responder's static public key (--public-key), so a
WireGuard responder cannot drop them as garbage: it must do the Diffie-Hellman work (and refuse
them as a bad static) or, under load, answer with a cookie reply. Messages go out in bursts of
--burst back to back (a burst is what makes a responder's handshake queue fill and trip its
"under load" test), paced to --rate messages/s overall, from one UDP socket bound to --bind.

Cookie replies (type 3, 64 bytes) arriving on that socket are counted. The first few are
decrypted (XChaCha20-Poly1305 with HASH("cookie--" || responder public), AD = the mac1 of the
initiation they answer; pure Python here, so only a sample) to check that they are well formed.
Once a cookie is held, a share (--mac2-share) of later initiations also carry a valid mac2 from
it: they pass a responder's cookie check and meet its per-source rate limiter instead.

Prints one JSON line at the end:
  {"sent": {"mac1_only": n, "with_mac2": n}, "total": n, "send_errors": n,
   "replies": {"cookie": n, "cookie_known_index": n, "other": n},
   "cookies": {"decrypted": n, "bad": n, "first_after_s": s or null}, "seconds": s}
A datagram the kernel refused (send_errors) is not counted as sent. With --progress, the same
object (without "seconds") is rewritten atomically about every 0.2 s while flooding.
Exit 0 when the flood ran (whatever the replies), 2 on bad arguments.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import socket
import struct
import sys
import time

INITIATION_SIZE = 148
COOKIE_REPLY_SIZE = 64
POOL_SIZE = 1024        # distinct messages (and sender indexes), sent round-robin
DECRYPT_SAMPLE = 16     # cookie replies decrypted (pure Python ChaCha20 is slow)


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    return socket.gethostbyname(host.strip("[]")), int(port)


def wg_hash(data):
    return hashlib.blake2s(data, digest_size=32).digest()


def wg_mac(key, data):
    return hashlib.blake2s(data, key=key, digest_size=16).digest()


# --- XChaCha20-Poly1305 (RFC 8439 + draft-irtf-cfrg-xchacha), decryption only ------------------

def _rotl(v, n):
    return ((v << n) & 0xFFFFFFFF) | (v >> (32 - n))


def _chacha_rounds(state):
    x = list(state)
    for _ in range(10):
        for a, b, c, d in ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
                           (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14)):
            x[a] = (x[a] + x[b]) & 0xFFFFFFFF
            x[d] = _rotl(x[d] ^ x[a], 16)
            x[c] = (x[c] + x[d]) & 0xFFFFFFFF
            x[b] = _rotl(x[b] ^ x[c], 12)
            x[a] = (x[a] + x[b]) & 0xFFFFFFFF
            x[d] = _rotl(x[d] ^ x[a], 8)
            x[c] = (x[c] + x[d]) & 0xFFFFFFFF
            x[b] = _rotl(x[b] ^ x[c], 7)
    return x


_SIGMA = struct.unpack("<4I", b"expand 32-byte k")


def hchacha20(key, nonce16):
    x = _chacha_rounds(_SIGMA + struct.unpack("<8I", key) + struct.unpack("<4I", nonce16))
    return struct.pack("<8I", *(x[0:4] + x[12:16]))


def chacha20_block(key, counter, nonce12):
    state = _SIGMA + struct.unpack("<8I", key) + (counter,) + struct.unpack("<3I", nonce12)
    x = _chacha_rounds(state)
    return struct.pack("<16I", *((a + b) & 0xFFFFFFFF for a, b in zip(x, state)))


def poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    p = (1 << 130) - 5
    acc = 0
    for i in range(0, len(msg), 16):
        acc = (acc + int.from_bytes(msg[i:i + 16] + b"\x01", "little")) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def xaead_decrypt(key, nonce24, sealed, ad):
    """Plaintext, or None when the tag does not authenticate."""
    subkey = hchacha20(key, nonce24[:16])
    nonce12 = b"\0\0\0\0" + nonce24[16:]
    ct, tag = sealed[:-16], sealed[-16:]

    def pad(b):
        return b"\0" * (-len(b) % 16)
    mac_data = ad + pad(ad) + ct + pad(ct) + struct.pack("<QQ", len(ad), len(ct))
    if poly1305(chacha20_block(subkey, 0, nonce12)[:32], mac_data) != tag:
        return None
    stream = b"".join(chacha20_block(subkey, 1 + i, nonce12) for i in range((len(ct) + 63) // 64))
    return bytes(a ^ b for a, b in zip(ct, stream))


# --- the flood ------------------------------------------------------------------------------------

def make_initiation(rng, sender_index, mac1_key):
    body = struct.pack("<II", 1, sender_index) + rng.randbytes(32 + 48 + 28)
    return body + wg_mac(mac1_key, body)  # mac2 (16 zero bytes) appended by the sender


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, type=parse_hostport)
    ap.add_argument("--public-key", required=True, help="responder's static public key, base64")
    ap.add_argument("--bind", default="0.0.0.0", help="source address")
    ap.add_argument("--rate", type=float, default=5000.0, help="initiations per second")
    ap.add_argument("--burst", type=int, default=128, help="initiations sent back to back")
    ap.add_argument("--duration", type=float, default=12.0)
    ap.add_argument("--mac2-share", type=float, default=0.5,
                    help="share of initiations with a valid mac2 once a cookie is held")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--progress", default=None, help="file rewritten with the counts while flooding")
    args = ap.parse_args()
    try:
        public = base64.b64decode(args.public_key, validate=True)
    except ValueError:
        public = b""
    if len(public) != 32 or args.rate <= 0 or args.burst < 1 or not 0 <= args.mac2_share <= 1:
        print("bad arguments: need a 32-byte base64 key, rate > 0, burst >= 1, 0 <= mac2-share <= 1",
              file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    mac1_key = wg_hash(b"mac1----" + public)
    cookie_key = wg_hash(b"cookie--" + public)

    # Distinct sender indexes, so each cookie reply names the initiation (and mac1) it answers.
    indexes = rng.sample(range(1 << 32), POOL_SIZE)
    pool = [make_initiation(rng, i, mac1_key) for i in indexes]
    mac1_of = {i: m[116:132] for i, m in zip(indexes, pool)}
    mac1_only = [m + bytes(16) for m in pool]
    with_mac2 = None  # built from the first cookie that decrypts

    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    out.bind((args.bind, 0))
    out.setblocking(False)

    sent = {"mac1_only": 0, "with_mac2": 0}
    replies = {"cookie": 0, "cookie_known_index": 0, "other": 0}
    cookies = {"decrypted": 0, "bad": 0, "first_after_s": None}
    errors = 0
    t0 = time.monotonic()

    def counts():
        return {"sent": dict(sent), "total": sum(sent.values()), "send_errors": errors,
                "replies": dict(replies), "cookies": dict(cookies)}

    def receive():
        nonlocal with_mac2
        while True:
            try:
                data = out.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable reported on the socket
                replies["other"] += 1
                continue
            if len(data) != COOKIE_REPLY_SIZE or data[0:4] != b"\x03\0\0\0":
                replies["other"] += 1
                continue
            replies["cookie"] += 1
            receiver = struct.unpack_from("<I", data, 4)[0]
            if receiver not in mac1_of:
                continue
            replies["cookie_known_index"] += 1
            if cookies["decrypted"] + cookies["bad"] >= DECRYPT_SAMPLE:
                continue
            cookie = xaead_decrypt(cookie_key, data[8:32], data[32:64], mac1_of[receiver])
            if cookie is None:
                cookies["bad"] += 1
                continue
            cookies["decrypted"] += 1
            if cookies["first_after_s"] is None:
                cookies["first_after_s"] = round(time.monotonic() - t0, 3)
            # The newest cookie: mac2 = MAC(cookie, msg[0:132]).
            with_mac2 = [m + wg_mac(cookie, m) for m in pool]

    interval = args.burst / args.rate
    next_burst = t0
    next_progress = t0
    k = 0
    while True:
        now = time.monotonic()
        if now - t0 >= args.duration:
            break
        if now >= next_burst:
            for _ in range(args.burst):
                use_mac2 = with_mac2 is not None and rng.random() < args.mac2_share
                msg = (with_mac2 if use_mac2 else mac1_only)[k % POOL_SIZE]
                k += 1
                try:
                    out.sendto(msg, args.target)
                except OSError:
                    errors += 1  # keep the pace; the datagram is not counted as sent
                    continue
                sent["with_mac2" if use_mac2 else "mac1_only"] += 1
            # Catch up after a stall rather than bursting many times in a row.
            next_burst = max(next_burst + interval, now)
        receive()
        if args.progress and now >= next_progress:
            with open(args.progress + ".new", "w") as f:
                json.dump(counts(), f)
            os.replace(args.progress + ".new", args.progress)
            next_progress = now + 0.2
        time.sleep(max(0.0, min(next_burst, t0 + args.duration) - time.monotonic()))
    seconds = time.monotonic() - t0
    # Replies to the last burst are still on their way.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        receive()
        time.sleep(0.02)
    result = counts()
    result["seconds"] = round(seconds, 3)
    if args.progress:
        with open(args.progress + ".new", "w") as f:
            json.dump(counts(), f)
        os.replace(args.progress + ".new", args.progress)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
