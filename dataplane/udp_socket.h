// The underlay UDP sockets: one per worker on the listen port (SO_REUSEPORT spreads flows across
// them), dual-stack by default, with large buffers, UDP GRO on receive and UDP_SEGMENT (GSO) on send.
//
// Threads: open_udp_socket() runs on the main/control thread at start-up and on reload. The cmsg
// helpers at the bottom run on workers once per sendmsg/recvmsg (per burst): they are inline,
// allocation-free and never fail loudly.
#pragma once

#include "lib/ip_address.h"
#include "lib/result.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>

namespace meshfwd::dataplane {

struct udp_socket_options {
    // [::]:51820 is dual-stack (IPV6_V6ONLY=0; falls back to 0.0.0.0 when the host has no IPv6);
    // 0.0.0.0:51820 is IPv4 only. Port 0 picks an ephemeral port: open the first worker's socket
    // with 0, then the others with the port it got.
    endpoint bind{ip_address::v6({}), 0};
    bool reuseport = false;      // SO_REUSEPORT: one socket per worker on the same port
    int buffer_bytes = 8 << 20;  // receive and send buffers; 0 leaves the kernel's defaults
    bool gro = true;             // ask for UDP_GRO (coalesced receives with a segment-size cmsg)
};

// An open socket; move-only, closes its fd.
struct udp_socket {
    int fd = -1;
    uint16_t port = 0;        // the port actually bound
    endpoint local;           // the address actually bound (0.0.0.0 after an IPv6 fallback)
    bool gro = false;         // UDP_GRO is on: recvmsg may return several segments at once
    bool gso = false;         // UDP_SEGMENT works: sendmsg may carry several segments at once
    bool dual_stack = false;  // an IPv6 socket on [::] that also takes IPv4 (v4-mapped addresses)
    int rcvbuf = 0;           // SO_RCVBUF / SO_SNDBUF as the kernel reports them (twice what it
    int sndbuf = 0;           // grants, for its own overhead)

    udp_socket() = default;
    udp_socket(udp_socket&& other) noexcept { *this = std::move(other); }
    udp_socket& operator=(udp_socket&& other) noexcept;
    udp_socket(const udp_socket&) = delete;
    udp_socket& operator=(const udp_socket&) = delete;
    ~udp_socket();
};

// Socket, options, bind. Blocking fd (io_uring waits), close-on-exec. Path MTU discovery is off
// (IP_PMTUDISC_DONT / IPV6_PMTUDISC_DONT) so the underlay may fragment, as WireGuard lets it.
// Buffers use SO_*BUFFORCE when privileged, else SO_*BUF (capped by net.core.*mem_max).
// Errors name the address and the failing step.
result<udp_socket> open_udp_socket(const udp_socket_options& options);

// Whether another socket already holds UDP `bind`'s port: binds a plain socket (no
// SO_REUSEPORT) there and closes it at once. Sockets of the same user that set SO_REUSEPORT
// join one group and share the traffic, so a second node on the port would start silently and
// take flows from the first; probing before the group is bound refuses that instead. (Two nodes
// starting in the same instant can both pass; that window is the time between two binds.)
// Error: "port N is held by another process" for EADDRINUSE, else the bind error.
result<void> check_udp_port_free(const endpoint& bind);

// --- Worker helpers (per burst; no allocation) ---

// Control space for one UDP_GRO cmsg (an int). Sends build theirs with write_send_cmsgs
// (local_address.h: UDP_SEGMENT and the sticky source together).
inline constexpr std::size_t udp_gro_cmsg_space = CMSG_SPACE(sizeof(int));

// The segment size from a UDP_GRO cmsg after recvmsg: the datagram is a run of segments that
// long (the last may be shorter). 0 when there is none (a plain datagram).
inline uint16_t read_udp_gro_cmsg(const msghdr& msg) noexcept {
    if (msg.msg_control == nullptr || msg.msg_controllen < sizeof(cmsghdr)) {
        return 0;
    }
    // CMSG_NXTHDR takes a non-const msghdr but only reads it.
    auto& m = const_cast<msghdr&>(msg);
    for (cmsghdr* cm = CMSG_FIRSTHDR(&m); cm != nullptr; cm = CMSG_NXTHDR(&m, cm)) {
        if (cm->cmsg_level != SOL_UDP || cm->cmsg_type != UDP_GRO) {
            continue;
        }
        // The kernel writes an int; accept a u16 too.
        if (cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int size = 0;
            std::memcpy(&size, CMSG_DATA(cm), sizeof(size));
            return size > 0 && size <= 0xffff ? static_cast<uint16_t>(size) : 0;
        }
        if (cm->cmsg_len >= CMSG_LEN(sizeof(uint16_t))) {
            uint16_t size = 0;
            std::memcpy(&size, CMSG_DATA(cm), sizeof(size));
            return size;
        }
        return 0;
    }
    return 0;
}

} // namespace meshfwd::dataplane
