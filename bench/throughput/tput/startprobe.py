"""Start-up probe: a standalone script (one process, one thread), run by measure.StartProbe
inside the source node's namespace as `python3 -I startprobe.py DST INTERVAL TIMEOUT OUT`.

It opens a raw ICMP socket, writes OUT.ready and waits for SIGUSR1, which the runner sends
at the instant the system launches the daemons of every node (System.mark_launch). From then
on it sends one ICMP echo request to DST every INTERVAL seconds -- a send that fails because
the tunnel interface or its route does not exist yet is counted and retried after 2 ms --
until the first echo reply from DST, or TIMEOUT seconds. It writes the outcome as JSON to OUT
(CLOCK_MONOTONIC times, the clock of the runner too) and exits.

iputils ping cannot do this: it exits at once when the route to DST is missing, which is the
normal state before a tunnel daemon has created its interface.
"""
import errno
import json
import os
import select
import signal
import socket
import struct
import sys
import time

GO_TIMEOUT = 600.0        # the runner generates keys etc. before the launch (tinc: RSA keys)
RETRY_UNSENT = 0.002      # s: a send the kernel refused (no route yet) costs nothing on the wire


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(ident, seq):
    payload = b"meshfwd-startprobe".ljust(32, b".")
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, checksum(hdr + payload), ident, seq) + payload


def write_json(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, path)      # the runner never reads a half-written file


def main(argv):
    dst, interval, timeout, out = argv[1], float(argv[2]), float(argv[3]), argv[4]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})    # before "ready": no lost go
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.setblocking(False)
    ident = os.getpid() & 0xFFFF
    with open(out + ".ready", "w"):
        pass
    if signal.sigtimedwait({signal.SIGUSR1}, GO_TIMEOUT) is None:
        write_json(out, {"error": "no launch signal within %ds" % GO_TIMEOUT})
        return 1
    t_go = time.monotonic()
    doc = {"dst": dst, "interval_s": interval, "t_go": t_go, "t_reply": None, "reply_seq": None,
           "t_first_send_ok": None, "sent": 0, "send_errors": {}}
    sent = {}
    seq = 0
    next_send = t_go
    deadline = t_go + timeout
    while True:
        now = time.monotonic()
        if now >= deadline:
            doc["error"] = "no echo reply from %s within %.0fs" % (dst, timeout)
            break
        if now >= next_send and seq < 0xFFFF:
            seq += 1
            try:
                s.sendto(echo_request(ident, seq), (dst, 0))
                sent[seq] = now
                doc["sent"] += 1
                if doc["t_first_send_ok"] is None:
                    doc["t_first_send_ok"] = now
                next_send = max(next_send + interval, now)
            except OSError as e:          # ENETUNREACH until the tunnel's route exists
                name = errno.errorcode.get(e.errno, str(e.errno))
                doc["send_errors"][name] = doc["send_errors"].get(name, 0) + 1
                next_send = now + RETRY_UNSENT    # nothing left the host: retry soon
        wait = max(0.0, min(next_send, deadline) - time.monotonic())
        ready, _, _ = select.select([s], [], [], wait)
        if not ready:
            continue
        while True:
            try:
                data, addr = s.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            t = time.monotonic()
            ihl = (data[0] & 0x0F) * 4
            if len(data) < ihl + 8:
                continue
            typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if typ == 0 and rid == ident and addr[0] == dst and rseq in sent:
                doc.update(t_reply=t, reply_seq=rseq, reply_probe_sent=sent[rseq])
                write_json(out, doc)
                return 0
    write_json(out, doc)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
