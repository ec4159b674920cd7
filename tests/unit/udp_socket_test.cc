// open_udp_socket and the worker cmsg helpers against the real kernel: reuseport pairs, ephemeral
// ports, GRO/GSO support, dual-stack, a UDP_SEGMENT send split into datagrams, a GRO receive
// parsed by read_udp_gro_cmsg, the destination address of a datagram (pktinfo) and replies sent
// from it, and the errors a send from an address that is not ours gets. Needs root (skips otherwise); each test runs in a fresh network
// namespace (the single-threaded test process moves into it), so ports never collide with the host.
#include "dataplane/udp_socket.h"

#include "dataplane/local_address.h"
#include "dataplane/netlink.h"
#include "dataplane/socket_address.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace meshfwd::dataplane {
namespace {

std::string enter_private_netns() {
    if (::geteuid() != 0) {
        return "needs root to run in a private network namespace";
    }
    if (::unshare(CLONE_NEWNET) != 0) {
        return std::string("unshare(CLONE_NEWNET) refused: ") + std::strerror(errno);
    }
    const int lo = static_cast<int>(if_nametoindex("lo"));
    if (lo == 0) {
        return "no lo in the new network namespace";
    }
    if (auto r = netlink::set_link_up(lo); !r) {
        return "cannot bring lo up: " + r.error_message();
    }
    return {};
}

#define ENTER_PRIVATE_NETNS()                                                                    \
    do {                                                                                         \
        if (const std::string why = enter_private_netns(); !why.empty()) {                       \
            GTEST_SKIP() << why;                                                                 \
        }                                                                                        \
    } while (false)

// endpoint::parse refuses port 0, which these tests use for ephemeral ports.
endpoint E(const char* address, uint16_t port = 0) {
    auto a = ip_address::parse(address);
    EXPECT_TRUE(a.ok()) << address;
    return endpoint(a.ok() ? *a : ip_address{}, port);
}

udp_socket open_ok(const udp_socket_options& o) {
    auto r = open_udp_socket(o);
    EXPECT_TRUE(r.ok()) << r.error_message();
    return r.ok() ? std::move(*r) : udp_socket{};
}

bool wait_readable(int fd, int ms = 2000) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}

void send_to(int fd, const endpoint& to, const std::string& data) {
    sockaddr_storage ss{};
    const socklen_t len = to.to_sockaddr(ss);
    ASSERT_EQ(::sendto(fd, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&ss), len),
              static_cast<ssize_t>(data.size()))
        << std::strerror(errno);
}

int kernel_major() {
    utsname u{};
    ::uname(&u);
    return std::atoi(u.release);
}

TEST(udp_socket, ephemeral_bind_reports_port_and_options) {
    ENTER_PRIVATE_NETNS();
    udp_socket s = open_ok({.bind = E("127.0.0.1")});
    ASSERT_GE(s.fd, 0);
    EXPECT_NE(s.port, 0);
    EXPECT_EQ(s.local, endpoint(*ip_address::parse("127.0.0.1"), s.port));
    EXPECT_FALSE(s.dual_stack);
    sockaddr_in sin{};
    socklen_t len = sizeof(sin);
    ASSERT_EQ(::getsockname(s.fd, reinterpret_cast<sockaddr*>(&sin), &len), 0);
    EXPECT_EQ(ntohs(sin.sin_port), s.port);
    EXPECT_EQ(::fcntl(s.fd, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(s.fd, F_GETFD) & FD_CLOEXEC, 0);

    std::cout << "gro=" << s.gro << " gso=" << s.gso << " rcvbuf=" << s.rcvbuf << " sndbuf=" << s.sndbuf << "\n";
    if (kernel_major() >= 6) {
        EXPECT_TRUE(s.gro);
        EXPECT_TRUE(s.gso);
    }
    // As root SO_RCVBUFFORCE grants the full 8 MiB (reported doubled), above rmem_max.
    EXPECT_GE(s.rcvbuf, 8 << 20);
    EXPECT_GE(s.sndbuf, 8 << 20);
    int pmtu = -1;
    len = sizeof(pmtu);
    ASSERT_EQ(::getsockopt(s.fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, &len), 0);
    EXPECT_EQ(pmtu, IP_PMTUDISC_DONT);

    udp_socket no_gro = open_ok({.bind = E("127.0.0.1"), .buffer_bytes = 0, .gro = false});
    EXPECT_FALSE(no_gro.gro);

    // Moving hands the fd over; the moved-from socket closes nothing.
    const int fd = s.fd;
    udp_socket moved = std::move(s);
    EXPECT_EQ(moved.fd, fd);
    EXPECT_EQ(s.fd, -1); // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_EQ(::fcntl(fd, F_GETFD) >= 0, true);
}

TEST(udp_socket, reuseport_sockets_share_a_port) {
    ENTER_PRIVATE_NETNS();
    udp_socket first = open_ok({.bind = E("127.0.0.1"), .reuseport = true});
    ASSERT_NE(first.port, 0);
    udp_socket second = open_ok({.bind = endpoint(first.local.address(), first.port), .reuseport = true});
    EXPECT_GE(second.fd, 0);
    EXPECT_EQ(second.port, first.port);

    auto plain = open_udp_socket({.bind = endpoint(first.local.address(), first.port)});
    ASSERT_FALSE(plain.ok());
    EXPECT_NE(plain.error_message().find("bind"), std::string::npos) << plain.error_message();
    EXPECT_NE(plain.error_message().find("127.0.0.1:" + std::to_string(first.port)), std::string::npos);
}

// A second node on a port whose SO_REUSEPORT group exists must be refused, not join the group.
TEST(udp_socket, port_probe_refuses_a_held_port_and_leaves_a_free_one_free) {
    ENTER_PRIVATE_NETNS();
    udp_socket group = open_ok({.bind = E("::"), .reuseport = true});
    ASSERT_NE(group.port, 0);
    auto held = check_udp_port_free(E("::", group.port));
    ASSERT_FALSE(held.ok());
    EXPECT_EQ(held.error_message(), "UDP port " + std::to_string(group.port) +
                                        " is held by another process (another meshfwd or WireGuard on the same port?)");
    // An IPv4-only holder is found by the dual-stack probe too.
    udp_socket v4 = open_ok({.bind = E("127.0.0.1")});
    EXPECT_FALSE(check_udp_port_free(E("::", v4.port)).ok());

    // A free port: the probe succeeds and closes its socket, so a group can bind it after.
    const uint16_t free_port = group.port;
    group = udp_socket{};
    ASSERT_TRUE(check_udp_port_free(E("::", free_port)).ok());
    udp_socket again = open_ok({.bind = E("::", free_port), .reuseport = true});
    EXPECT_EQ(again.port, free_port);
}

TEST(udp_socket, round_trip_over_loopback_v4_and_dual_stack) {
    ENTER_PRIVATE_NETNS();
    udp_socket a = open_ok({.bind = E("127.0.0.1")});
    udp_socket b = open_ok({.bind = E("127.0.0.1")});
    send_to(a.fd, b.local, "ping");
    ASSERT_TRUE(wait_readable(b.fd));
    char buf[64];
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(b.fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    ASSERT_EQ(n, 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
    auto src = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&from), from_len);
    ASSERT_TRUE(src);
    EXPECT_EQ(*src, a.local);
    send_to(b.fd, *src, "pong");
    ASSERT_TRUE(wait_readable(a.fd));
    n = ::recv(a.fd, buf, sizeof(buf), 0);
    ASSERT_EQ(n, 4);
    EXPECT_EQ(std::string(buf, 4), "pong");

    // The default bind is [::]:0, dual-stack: IPv4 senders arrive as v4-mapped addresses.
    udp_socket dual = open_ok({});
    EXPECT_TRUE(dual.dual_stack);
    EXPECT_TRUE(dual.local.address().is_v6());
    int v6only = -1;
    socklen_t len = sizeof(v6only);
    ASSERT_EQ(::getsockopt(dual.fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
    EXPECT_EQ(v6only, 0);
    send_to(a.fd, endpoint(*ip_address::parse("127.0.0.1"), dual.port), "v4-to-dual");
    ASSERT_TRUE(wait_readable(dual.fd));
    from_len = sizeof(from);
    n = ::recvfrom(dual.fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    ASSERT_EQ(n, 10);
    src = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&from), from_len);
    ASSERT_TRUE(src);
    EXPECT_TRUE(src->address().is_v4_mapped());
    EXPECT_EQ(src->address().unmapped(), a.local.address());
    // And plain IPv6 over ::1.
    udp_socket v6 = open_ok({.bind = E("::1")});
    EXPECT_FALSE(v6.dual_stack);
    send_to(v6.fd, endpoint(*ip_address::parse("::1"), dual.port), "v6");
    ASSERT_TRUE(wait_readable(dual.fd));
    EXPECT_EQ(::recv(dual.fd, buf, sizeof(buf), 0), 2);
}

TEST(udp_socket, refuses_unusable_addresses_and_sizes) {
    ENTER_PRIVATE_NETNS();
    auto foreign = open_udp_socket({.bind = E("192.0.2.1", 51820)});
    ASSERT_FALSE(foreign.ok());
    EXPECT_NE(foreign.error_message().find("192.0.2.1:51820"), std::string::npos) << foreign.error_message();
    EXPECT_NE(foreign.error_message().find(std::strerror(EADDRNOTAVAIL)), std::string::npos)
        << foreign.error_message();
    auto negative = open_udp_socket({.bind = E("127.0.0.1"), .buffer_bytes = -1});
    ASSERT_FALSE(negative.ok());
    EXPECT_NE(negative.error_message().find("negative"), std::string::npos);
}

// Sends `payload` as one sendmsg with a UDP_SEGMENT cmsg.
void send_segmented(const udp_socket& s, const endpoint& to, const std::vector<uint8_t>& payload, uint16_t gso) {
    sockaddr_storage ss{};
    const socklen_t ss_len = to.to_sockaddr(ss);
    iovec iov{const_cast<uint8_t*>(payload.data()), payload.size()};
    msghdr msg{};
    msg.msg_name = &ss;
    msg.msg_namelen = ss_len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) std::array<std::byte, send_cmsg_space> control{};
    ASSERT_EQ(write_send_cmsgs(msg, gso, local_address{}, control), CMSG_SPACE(sizeof(uint16_t)));
    ASSERT_EQ(::sendmsg(s.fd, &msg, 0), static_cast<ssize_t>(payload.size())) << std::strerror(errno);
}

std::vector<uint8_t> three_segments() {
    std::vector<uint8_t> payload(300);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        payload[i] = static_cast<uint8_t>(i / 100 + 1); // segment k is filled with k+1
    }
    return payload;
}

TEST(udp_socket, udp_segment_send_arrives_as_separate_datagrams) {
    ENTER_PRIVATE_NETNS();
    udp_socket tx = open_ok({.bind = E("127.0.0.1")});
    if (!tx.gso) {
        GTEST_SKIP() << "this kernel has no UDP_SEGMENT";
    }
    udp_socket rx = open_ok({.bind = E("127.0.0.1"), .gro = false});
    send_segmented(tx, rx.local, three_segments(), 100);
    for (int k = 0; k < 3; ++k) {
        ASSERT_TRUE(wait_readable(rx.fd)) << "segment " << k << " missing";
        std::array<uint8_t, 512> buf{};
        const ssize_t n = ::recv(rx.fd, buf.data(), buf.size(), 0);
        ASSERT_EQ(n, 100) << "segment " << k;
        EXPECT_EQ(buf[0], k + 1);
        EXPECT_EQ(buf[99], k + 1);
    }
    EXPECT_FALSE(wait_readable(rx.fd, 50)) << "nothing beyond the three segments";
}

TEST(udp_socket, gro_receive_reports_segment_size) {
    ENTER_PRIVATE_NETNS();
    udp_socket tx = open_ok({.bind = E("127.0.0.1")});
    udp_socket rx = open_ok({.bind = E("127.0.0.1"), .gro = true});
    if (!tx.gso || !rx.gro) {
        GTEST_SKIP() << "this kernel lacks UDP_SEGMENT or UDP_GRO";
    }
    send_segmented(tx, rx.local, three_segments(), 100);
    std::size_t total = 0;
    int reads = 0;
    while (total < 300 && wait_readable(rx.fd)) {
        std::array<uint8_t, 2048> buf{};
        iovec iov{buf.data(), buf.size()};
        alignas(cmsghdr) std::array<std::byte, udp_gro_cmsg_space + 64> control{};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        const ssize_t n = ::recvmsg(rx.fd, &msg, 0);
        ASSERT_GT(n, 0) << std::strerror(errno);
        const uint16_t seg = read_udp_gro_cmsg(msg);
        std::cout << "GRO read " << reads << ": " << n << " bytes, segment size " << seg << "\n";
        if (n > 100) {
            EXPECT_EQ(seg, 100) << "a coalesced read must carry its segment size";
        } else {
            EXPECT_TRUE(seg == 0 || seg == 100) << seg;
        }
        total += static_cast<std::size_t>(n);
        ++reads;
    }
    EXPECT_EQ(total, 300u);
}

TEST(udp_socket, cmsg_helpers_parse_and_refuse_bad_buffers) {
    // Pure helpers: no namespace or root needed.
    msghdr msg{};
    alignas(cmsghdr) std::array<std::byte, 64> control{};
    EXPECT_EQ(write_send_cmsgs(msg, 1200, local_address{}, std::span(control).first(send_cmsg_space - 1)), 0u);
    EXPECT_EQ(msg.msg_control, nullptr) << "refused: no control data";
    EXPECT_EQ(write_send_cmsgs(msg, 1200, local_address{}, std::span(control).subspan(1, 63)), 0u) << "misaligned";
    EXPECT_EQ(write_send_cmsgs(msg, 0, local_address{}, control), 0u) << "nothing to say";
    EXPECT_EQ(msg.msg_control, nullptr);
    ASSERT_EQ(write_send_cmsgs(msg, 1200, local_address{}, control), CMSG_SPACE(sizeof(uint16_t)));
    const cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    ASSERT_NE(cm, nullptr);
    EXPECT_EQ(cm->cmsg_level, SOL_UDP);
    EXPECT_EQ(cm->cmsg_type, UDP_SEGMENT);
    uint16_t v = 0;
    std::memcpy(&v, CMSG_DATA(cm), sizeof(v));
    EXPECT_EQ(v, 1200);
    EXPECT_EQ(read_udp_gro_cmsg(msg), 0) << "a UDP_SEGMENT cmsg is not a GRO one";

    EXPECT_EQ(read_udp_gro_cmsg(msghdr{}), 0) << "no control data";

    // A TTL cmsg, then UDP_GRO: the helper walks past the first.
    alignas(cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(int)) * 2> two{};
    msghdr rx{};
    rx.msg_control = two.data();
    rx.msg_controllen = two.size();
    cmsghdr* c = CMSG_FIRSTHDR(&rx);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_TTL;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    const int ttl = 64;
    std::memcpy(CMSG_DATA(c), &ttl, sizeof(ttl));
    c = CMSG_NXTHDR(&rx, c);
    ASSERT_NE(c, nullptr);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_GRO;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    const int gro = 1380;
    std::memcpy(CMSG_DATA(c), &gro, sizeof(gro));
    EXPECT_EQ(read_udp_gro_cmsg(rx), 1380);
    const int bogus = 70000; // out of range for a segment size: treated as absent
    std::memcpy(CMSG_DATA(c), &bogus, sizeof(bogus));
    EXPECT_EQ(read_udp_gro_cmsg(rx), 0);
}

// --- Source-address stickiness (local_address.h)

// Receives one datagram on s: its destination address and where it came from.
struct received {
    local_address to;
    sockaddr_storage from{};
    socklen_t from_len = 0;
    std::string data;
};

received receive_with_pktinfo(const udp_socket& s) {
    received r;
    EXPECT_TRUE(wait_readable(s.fd)) << "nothing arrived";
    std::array<char, 512> buf{};
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) std::array<std::byte, receive_cmsg_space> control{};
    msghdr msg{};
    msg.msg_name = &r.from;
    msg.msg_namelen = sizeof(r.from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t n = ::recvmsg(s.fd, &msg, MSG_DONTWAIT);
    EXPECT_GE(n, 0) << std::strerror(errno);
    EXPECT_EQ(msg.msg_flags & MSG_CTRUNC, 0) << "receive_cmsg_space too small";
    r.from_len = msg.msg_namelen;
    r.data.assign(buf.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
    r.to = read_pktinfo_cmsg(msg);
    return r;
}

// Sends `data` from `from` to `to` until `rx` has something to read (at most 25 tries, 200 ms
// apart): a new IPv6 address on lo may take a moment before it receives, even with nodad.
void send_until_readable(const udp_socket& from, const endpoint& to, const std::string& data, const udp_socket& rx) {
    for (int attempt = 0; attempt < 25; ++attempt) {
        send_to(from.fd, to, data);
        if (wait_readable(rx.fd, 200)) {
            return;
        }
    }
    ADD_FAILURE() << "nothing arrived at " << to.to_string() << " within 5 s";
}

// sendmsg from `source` (empty: the route's) to `to`; the errno, 0 when sent.
int send_from(const udp_socket& s, const sockaddr* to, socklen_t to_len, const local_address& source) {
    char byte = 'r';
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_name = const_cast<sockaddr*>(to);
    msg.msg_namelen = to_len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) std::array<std::byte, send_cmsg_space> control{};
    write_send_cmsgs(msg, 0, source, control);
    return ::sendmsg(s.fd, &msg, 0) == 1 ? 0 : errno;
}

// Where a datagram that `rx` receives came from, as text.
std::string source_of_next(const udp_socket& rx) {
    sockaddr_storage from{};
    socklen_t len = sizeof(from);
    char byte = 0;
    if (!wait_readable(rx.fd) ||
        ::recvfrom(rx.fd, &byte, 1, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len) != 1) {
        return "(nothing)";
    }
    auto e = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&from), len);
    return e ? e->address().to_string() : "(bad family)";
}

// Two addresses on lo; a peer socket on the first. The node is contacted on its second address
// and must see it as the datagram's destination, and its reply from it must come from there.
void check_reply_from_destination(bool dual_stack) {
    const int lo = static_cast<int>(if_nametoindex("lo"));
    ASSERT_TRUE(netlink::add_address(lo, *ip_prefix::parse("192.0.2.1/32"), true).ok());
    ASSERT_TRUE(netlink::add_address(lo, *ip_prefix::parse("192.0.2.2/32"), true).ok());
    udp_socket node = open_ok({.bind = dual_stack ? E("::") : E("0.0.0.0")});
    udp_socket peer = open_ok({.bind = E("192.0.2.1")});
    send_until_readable(peer, E("192.0.2.2", node.port), "hello", node);
    const received r = receive_with_pktinfo(node);
    EXPECT_EQ(r.data, "hello");
    ASSERT_FALSE(r.to.empty()) << "no pktinfo on the worker socket";
    EXPECT_EQ(r.to.family, dual_stack ? AF_INET6 : AF_INET);
    EXPECT_EQ(r.to.to_string(), dual_stack ? "::ffff:192.0.2.2" : "192.0.2.2");
    EXPECT_NE(r.to.ifindex, 0u);
    // Without the source, the route picks the primary address (192.0.2.1); with it, .2.
    ASSERT_EQ(send_from(node, reinterpret_cast<const sockaddr*>(&r.from), r.from_len, local_address{}), 0);
    EXPECT_EQ(source_of_next(peer), "192.0.2.1");
    ASSERT_EQ(send_from(node, reinterpret_cast<const sockaddr*>(&r.from), r.from_len, r.to), 0);
    EXPECT_EQ(source_of_next(peer), "192.0.2.2");
}

TEST(udp_socket, pktinfo_dual_stack_reports_destination_and_replies_from_it) {
    ENTER_PRIVATE_NETNS();
    check_reply_from_destination(true);
}

TEST(udp_socket, pktinfo_ipv4_only_reports_destination_and_replies_from_it) {
    ENTER_PRIVATE_NETNS();
    check_reply_from_destination(false);
}

TEST(udp_socket, pktinfo_ipv6_destination) {
    ENTER_PRIVATE_NETNS();
    const int lo = static_cast<int>(if_nametoindex("lo"));
    ASSERT_TRUE(netlink::add_address(lo, *ip_prefix::parse("fd00:17::1/128"), true).ok());
    ASSERT_TRUE(netlink::add_address(lo, *ip_prefix::parse("fd00:17::2/128"), true).ok());
    udp_socket node = open_ok({.bind = E("::")});
    udp_socket peer = open_ok({.bind = E("fd00:17::1")});
    send_until_readable(peer, E("fd00:17::2", node.port), "v6", node);
    const received r = receive_with_pktinfo(node);
    EXPECT_EQ(r.to.family, AF_INET6);
    EXPECT_EQ(r.to.to_string(), "fd00:17::2");
    ASSERT_EQ(send_from(node, reinterpret_cast<const sockaddr*>(&r.from), r.from_len, r.to), 0);
    EXPECT_EQ(source_of_next(peer), "fd00:17::2");
}

// A source that is not (or no longer) ours: the errors the worker takes as "forget it and resend".
TEST(udp_socket, send_from_a_foreign_source_fails_as_stale) {
    ENTER_PRIVATE_NETNS();
    const int lo = static_cast<int>(if_nametoindex("lo"));
    // Off-host destinations (routed out of lo, where they die): a local one would skip the check.
    ASSERT_TRUE(netlink::add_route(lo, *ip_prefix::parse("203.0.113.0/24")).ok());
    ASSERT_TRUE(netlink::add_route(lo, *ip_prefix::parse("fd00:99::/64")).ok());
    udp_socket dual = open_ok({.bind = E("::")});
    udp_socket v4 = open_ok({.bind = E("0.0.0.0")});
    const auto to4 = socket_address::from(E("203.0.113.9", 9), true);
    const auto to4_plain = socket_address::from(E("203.0.113.9", 9), false);
    const auto to6 = socket_address::from(E("fd00:99::9", 9), true);

    local_address foreign_mapped;
    foreign_mapped.family = AF_INET6;
    ASSERT_EQ(::inet_pton(AF_INET6, "::ffff:198.51.100.7", &foreign_mapped.addr.v6), 1);
    local_address foreign_v4;
    foreign_v4.family = AF_INET;
    ASSERT_EQ(::inet_pton(AF_INET, "198.51.100.7", &foreign_v4.addr.v4), 1);
    local_address foreign_v6;
    foreign_v6.family = AF_INET6;
    ASSERT_EQ(::inet_pton(AF_INET6, "fd00:98::7", &foreign_v6.addr.v6), 1);

    EXPECT_EQ(send_from(dual, to4.get(), to4.length, local_address{}), 0) << "the route itself works";
    EXPECT_EQ(send_from(dual, to6.get(), to6.length, local_address{}), 0);
    EXPECT_EQ(send_from(v4, to4_plain.get(), to4_plain.length, local_address{}), 0);
    const int e1 = send_from(dual, to4.get(), to4.length, foreign_mapped);
    const int e2 = send_from(dual, to6.get(), to6.length, foreign_v6);
    const int e3 = send_from(v4, to4_plain.get(), to4_plain.length, foreign_v4);
    std::cout << "foreign source errors: v4-mapped " << std::strerror(e1) << ", v6 " << std::strerror(e2)
              << ", v4 " << std::strerror(e3) << "\n";
    EXPECT_TRUE(stale_source_is(e1)) << std::strerror(e1);
    EXPECT_TRUE(stale_source_is(e2)) << std::strerror(e2);
    EXPECT_TRUE(stale_source_is(e3)) << std::strerror(e3);
}

TEST(udp_socket, send_cmsgs_carry_segment_size_and_source) {
    msghdr msg{};
    alignas(cmsghdr) std::array<std::byte, send_cmsg_space> control{};
    local_address src;
    src.family = AF_INET;
    src.ifindex = 7;
    ASSERT_EQ(::inet_pton(AF_INET, "192.0.2.2", &src.addr.v4), 1);
    ASSERT_EQ(write_send_cmsgs(msg, 1400, src, control), send_cmsg_space - CMSG_SPACE(sizeof(in6_pktinfo)) +
                                                              CMSG_SPACE(sizeof(in_pktinfo)));
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    ASSERT_NE(cm, nullptr);
    EXPECT_EQ(cm->cmsg_type, UDP_SEGMENT);
    cm = CMSG_NXTHDR(&msg, cm);
    ASSERT_NE(cm, nullptr);
    EXPECT_EQ(cm->cmsg_level, IPPROTO_IP);
    EXPECT_EQ(cm->cmsg_type, IP_PKTINFO);
    in_pktinfo info{};
    std::memcpy(&info, CMSG_DATA(cm), sizeof(info));
    EXPECT_EQ(info.ipi_spec_dst.s_addr, src.addr.v4.s_addr);
    EXPECT_EQ(info.ipi_ifindex, 0) << "the route picks the interface";
    EXPECT_EQ(CMSG_NXTHDR(&msg, cm), nullptr);

    // IPv6: the interface goes along only for a link-local source.
    local_address ll;
    ll.family = AF_INET6;
    ll.ifindex = 3;
    ASSERT_EQ(::inet_pton(AF_INET6, "fe80::1", &ll.addr.v6), 1);
    ASSERT_EQ(write_send_cmsgs(msg, 0, ll, control), CMSG_SPACE(sizeof(in6_pktinfo)));
    cm = CMSG_FIRSTHDR(&msg);
    in6_pktinfo info6{};
    std::memcpy(&info6, CMSG_DATA(cm), sizeof(info6));
    EXPECT_EQ(info6.ipi6_ifindex, 3u);
    local_address global = ll;
    ASSERT_EQ(::inet_pton(AF_INET6, "fd00::1", &global.addr.v6), 1);
    ASSERT_EQ(write_send_cmsgs(msg, 0, global, control), CMSG_SPACE(sizeof(in6_pktinfo)));
    std::memcpy(&info6, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(info6));
    EXPECT_EQ(info6.ipi6_ifindex, 0u);

    // Equality is by address only; the reading side parses what a send would carry.
    local_address other_if = src;
    other_if.ifindex = 9;
    EXPECT_TRUE(src == other_if);
    EXPECT_FALSE(src == local_address{});
    EXPECT_TRUE(read_pktinfo_cmsg(msghdr{}).empty());
}

} // namespace
} // namespace meshfwd::dataplane
