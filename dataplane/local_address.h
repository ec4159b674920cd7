// Source-address stickiness: the local address a peer's datagram arrived on, kept with its
// endpoint so that our replies leave from that same address (as the kernel module and
// wireguard-go do). A multi-homed node contacted on its second address must answer from it, or
// the peer (and any NAT or firewall between) sees replies from an address it never talked to.
//
// The worker sockets ask for the destination address of each datagram (IPV6_RECVPKTINFO on the
// dual-stack socket, which also reports IPv4 as v4-mapped; IP_PKTINFO on an IPv4-only one), and
// each send names its source in the matching cmsg. When that address is gone (`ip addr del`),
// the kernel refuses the send (IPv6: EINVAL; IPv4: ENETUNREACH, checked on 6.18); the worker
// then resends without a source and the control thread forgets it (stale_source_is()).
//
// Threads: plain values and inline, allocation-free cmsg helpers; workers call them once per
// recvmsg/sendmsg, the control thread for its own sends.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace meshfwd::dataplane {

// A local address in the form the socket takes it: IPv6 (v4-mapped for IPv4 on a dual-stack
// socket) or IPv4 (on an IPv4-only socket), with the interface it arrived on. family 0: none
// (the kernel picks the source by route, as without stickiness).
struct local_address {
    sa_family_t family = 0;
    uint32_t ifindex = 0;
    union {
        in_addr v4;
        in6_addr v6;
    } addr;

    local_address() noexcept { std::memset(&addr, 0, sizeof(addr)); }
    [[nodiscard]] bool empty() const noexcept { return family == 0; }
    // The interface is not part of the identity: a source is sticky by address.
    [[nodiscard]] bool operator==(const local_address& o) const noexcept {
        if (family != o.family) {
            return false;
        }
        if (family == AF_INET) {
            return addr.v4.s_addr == o.addr.v4.s_addr;
        }
        return family == 0 || std::memcmp(&addr.v6, &o.addr.v6, sizeof(in6_addr)) == 0;
    }
    // "192.0.2.2", "fd00::2", "::ffff:192.0.2.2" (v4-mapped), "" (none). Not for the packet path.
    [[nodiscard]] std::string to_string() const {
        char text[INET6_ADDRSTRLEN] = {};
        if (family == 0 || ::inet_ntop(family, &addr, text, sizeof(text)) == nullptr) {
            return {};
        }
        return text;
    }
};

// Control space: UDP_SEGMENT (u16) + a pktinfo on send; UDP_GRO (int) + a pktinfo on receive.
inline constexpr std::size_t pktinfo_cmsg_space = CMSG_SPACE(sizeof(in6_pktinfo));
inline constexpr std::size_t send_cmsg_space = CMSG_SPACE(sizeof(uint16_t)) + pktinfo_cmsg_space;
inline constexpr std::size_t receive_cmsg_space = CMSG_SPACE(sizeof(int)) + pktinfo_cmsg_space;
static_assert(CMSG_SPACE(sizeof(in_pktinfo)) <= pktinfo_cmsg_space);

// The destination address of a received datagram (its pktinfo cmsg); empty when there is none.
inline local_address read_pktinfo_cmsg(const msghdr& msg) noexcept {
    local_address local;
    if (msg.msg_control == nullptr || msg.msg_controllen < sizeof(cmsghdr)) {
        return local;
    }
    auto& m = const_cast<msghdr&>(msg);  // CMSG_NXTHDR only reads it
    for (cmsghdr* cm = CMSG_FIRSTHDR(&m); cm != nullptr; cm = CMSG_NXTHDR(&m, cm)) {
        if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
            cm->cmsg_len >= CMSG_LEN(sizeof(in6_pktinfo))) {
            in6_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(cm), sizeof(info));
            local.family = AF_INET6;
            local.addr.v6 = info.ipi6_addr;
            local.ifindex = info.ipi6_ifindex;
            return local;
        }
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
            cm->cmsg_len >= CMSG_LEN(sizeof(in_pktinfo))) {
            in_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(cm), sizeof(info));
            local.family = AF_INET;
            local.addr.v4 = info.ipi_addr;  // the header's destination (ipi_spec_dst is the route's)
            local.ifindex = static_cast<uint32_t>(info.ipi_ifindex);
            return local;
        }
    }
    return local;
}

// Makes msg carry a UDP_SEGMENT cmsg (when gso_size > 0) and a pktinfo naming `source` (when
// not empty) in `buffer`, which must outlive the sendmsg. Returns the control length (0: msg
// has no control data); 0 with nothing written when buffer is smaller than send_cmsg_space or
// misaligned. The interface is passed only for an IPv6 link-local source, which needs it; other
// sources leave the interface to the routing table (the kernel module's behaviour).
inline std::size_t write_send_cmsgs(msghdr& msg, uint16_t gso_size, const local_address& source,
                                    std::span<std::byte> buffer) noexcept {
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
    if (gso_size == 0 && source.empty()) {
        return 0;
    }
    if (buffer.size() < send_cmsg_space || reinterpret_cast<std::uintptr_t>(buffer.data()) % alignof(cmsghdr) != 0) {
        return 0;
    }
    std::memset(buffer.data(), 0, send_cmsg_space);
    std::size_t used = 0;
    auto* at = buffer.data();
    if (gso_size > 0) {
        auto* cm = reinterpret_cast<cmsghdr*>(at);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        std::memcpy(CMSG_DATA(cm), &gso_size, sizeof(gso_size));
        used += CMSG_SPACE(sizeof(uint16_t));
    }
    if (source.family == AF_INET6) {
        auto* cm = reinterpret_cast<cmsghdr*>(at + used);
        cm->cmsg_level = IPPROTO_IPV6;
        cm->cmsg_type = IPV6_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
        in6_pktinfo info{};
        info.ipi6_addr = source.addr.v6;
        info.ipi6_ifindex = IN6_IS_ADDR_LINKLOCAL(&source.addr.v6) ? source.ifindex : 0;
        std::memcpy(CMSG_DATA(cm), &info, sizeof(info));
        used += CMSG_SPACE(sizeof(in6_pktinfo));
    } else if (source.family == AF_INET) {
        auto* cm = reinterpret_cast<cmsghdr*>(at + used);
        cm->cmsg_level = IPPROTO_IP;
        cm->cmsg_type = IP_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
        in_pktinfo info{};
        info.ipi_spec_dst = source.addr.v4;
        std::memcpy(CMSG_DATA(cm), &info, sizeof(info));
        used += CMSG_SPACE(sizeof(in_pktinfo));
    }
    msg.msg_control = buffer.data();
    msg.msg_controllen = used;
    return used;
}

// Whether a send that named a source failed because that source is no longer ours: the kernel
// says EINVAL (IPv6, and IPv4 on some paths), ENETUNREACH (IPv4 route lookup with a foreign
// source) or EADDRNOTAVAIL. Takes a positive errno.
[[nodiscard]] inline bool stale_source_is(int err) noexcept {
    return err == EINVAL || err == ENETUNREACH || err == EADDRNOTAVAIL;
}

}  // namespace meshfwd::dataplane
