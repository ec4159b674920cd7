// tun_device and dataplane/netlink.h against the real kernel: a 2-queue TUN with vnet headers in a
// private network namespace; MTU, link state, addresses and routes read back; one IPv4/UDP packet
// each way through the device; clear errors for bad names, MTUs, addresses and conflicting routes.
// Needs root (skips otherwise). Each test moves the (single-threaded) test process into fresh
// network and mount namespaces, so nothing leaks to the host and devices vanish with the process.
#include "dataplane/tun_device.h"

#include "dataplane/netlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace meshfwd::dataplane {
namespace {

using namespace std::chrono_literals;

// struct virtio_net_hdr (linux/virtio_net.h does not compile as C++: a member is named `class`).
// Native byte order: we never ask for TUNSETVNETLE/BE.
struct raw_vnet_header {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
};
static_assert(sizeof(raw_vnet_header) == tun_vnet_hdr_size);
constexpr uint8_t vnet_needs_csum = 1; // vnet_needs_csum
constexpr uint8_t vnet_gso_none = 0;   // vnet_gso_none

// True when /sys was remounted inside our namespace, so /sys/class/net shows our devices.
bool g_sysfs_private = false;

// Enters fresh network and mount namespaces with lo up. Returns why the test must skip, or "".
std::string enter_private_netns() {
    if (::geteuid() != 0) {
        return "needs root to create TUN devices in a private network namespace";
    }
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
        return std::string("unshare(CLONE_NEWNET|CLONE_NEWNS) refused: ") + std::strerror(errno);
    }
    // sysfs shows the network namespace of whoever mounted it: remount it in our own mount
    // namespace, after making every mount private so nothing propagates back to the host.
    g_sysfs_private = ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
                      ::umount2("/sys", MNT_DETACH) == 0 && ::mount("sysfs", "/sys", "sysfs", 0, nullptr) == 0;
    const int lo = static_cast<int>(if_nametoindex("lo"));
    if (lo == 0) {
        return "no lo in the new network namespace";
    }
    if (auto r = netlink::set_link_up(lo); !r) {
        return "cannot bring lo up: " + r.error_message();
    }
    if (::access("/dev/net/tun", R_OK | W_OK) != 0) {
        return std::string("/dev/net/tun is not usable here: ") + std::strerror(errno);
    }
    return {};
}

#define ENTER_PRIVATE_NETNS()                                                                    \
    do {                                                                                         \
        if (const std::string why = enter_private_netns(); !why.empty()) {                       \
            GTEST_SKIP() << why;                                                                 \
        }                                                                                        \
    } while (false)

ip_prefix P(const char* text) {
    auto p = ip_prefix::parse(text);
    EXPECT_TRUE(p.ok()) << text;
    return p.ok() ? *p : ip_prefix{};
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::string s;
    std::getline(in, s);
    return s;
}

int link_flags(const std::string& name) {
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), std::size_t{IFNAMSIZ - 1}));
    const int rc = ::ioctl(s, SIOCGIFFLAGS, &ifr);
    ::close(s);
    return rc == 0 ? ifr.ifr_flags : -1;
}

uint16_t ip_checksum(const uint8_t* p, std::size_t n) {
    uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2) {
        sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<uint16_t>(~sum);
}

// An IPv4/UDP packet (UDP checksum 0 = none, allowed for IPv4).
std::vector<uint8_t> ipv4_udp(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, const std::string& payload) {
    std::vector<uint8_t> p(28 + payload.size());
    const auto total = static_cast<uint16_t>(p.size());
    p[0] = 0x45;
    p[2] = static_cast<uint8_t>(total >> 8);
    p[3] = static_cast<uint8_t>(total);
    p[8] = 64;
    p[9] = IPPROTO_UDP;
    for (int i = 0; i < 4; ++i) {
        p[12 + i] = static_cast<uint8_t>(src >> (24 - 8 * i));
        p[16 + i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
    }
    const uint16_t c = ip_checksum(p.data(), 20);
    p[10] = static_cast<uint8_t>(c >> 8);
    p[11] = static_cast<uint8_t>(c);
    const auto udp_len = static_cast<uint16_t>(8 + payload.size());
    p[20] = static_cast<uint8_t>(sport >> 8);
    p[21] = static_cast<uint8_t>(sport);
    p[22] = static_cast<uint8_t>(dport >> 8);
    p[23] = static_cast<uint8_t>(dport);
    p[24] = static_cast<uint8_t>(udp_len >> 8);
    p[25] = static_cast<uint8_t>(udp_len);
    std::memcpy(p.data() + 28, payload.data(), payload.size());
    return p;
}

uint32_t be32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}
uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

constexpr uint32_t addr_local = 0x0a090001;  // 10.9.0.1, ours on mftest0
constexpr uint32_t addr_remote = 0x0a090002; // 10.9.0.2, "behind" the tunnel

bool has_prefix(const std::vector<ip_prefix>& v, const ip_prefix& p) {
    return std::find(v.begin(), v.end(), p) != v.end();
}

const netlink::route_entry* find_route(const std::vector<netlink::route_entry>& v, const ip_prefix& dst) {
    for (const auto& r : v) {
        if (r.table == RT_TABLE_MAIN && r.destination == dst) {
            return &r;
        }
    }
    return nullptr;
}

TEST(tun_device, creates_configures_and_carries_packets) {
    ENTER_PRIVATE_NETNS();
    auto created = tun_device::create({.name = "mftest0", .mtu = 1420, .queues = 2, .vnet_hdr = true});
    ASSERT_TRUE(created.ok()) << created.error_message();
    auto dev = std::make_unique<tun_device>(std::move(*created));
    const tun_offloads off = dev->offloads();
    std::cout << "offloads on this kernel: csum=" << off.csum << " tso4=" << off.tso4 << " tso6=" << off.tso6
              << " uso=" << off.uso << "\n";
    EXPECT_EQ(dev->name(), "mftest0");
    EXPECT_EQ(dev->queues(), 2u);
    EXPECT_TRUE(dev->vnet_hdr());
    EXPECT_GT(dev->ifindex(), 0);
    EXPECT_EQ(static_cast<int>(if_nametoindex("mftest0")), dev->ifindex());
    EXPECT_TRUE(off.csum && off.tso4 && off.tso6) << "every kernel since 2.6 takes CSUM|TSO4|TSO6";
    EXPECT_EQ(dev->queue_fd(2), -1);

    // Both queues are attached to the same device, blocking and close-on-exec.
    for (unsigned i = 0; i < 2; ++i) {
        const int fd = dev->queue_fd(i);
        ASSERT_GE(fd, 0);
        ifreq ifr{};
        ASSERT_EQ(::ioctl(fd, TUNGETIFF, &ifr), 0) << std::strerror(errno);
        EXPECT_STREQ(ifr.ifr_name, "mftest0");
        EXPECT_NE(ifr.ifr_flags & IFF_MULTI_QUEUE, 0);
        EXPECT_NE(ifr.ifr_flags & IFF_VNET_HDR, 0);
        EXPECT_NE(ifr.ifr_flags & IFF_NO_PI, 0);
        EXPECT_EQ(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
        EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
        int hdr = 0;
        ASSERT_EQ(::ioctl(fd, TUNGETVNETHDRSZ, &hdr), 0);
        EXPECT_EQ(hdr, 10);
    }
    EXPECT_EQ(link_flags("mftest0") & IFF_UP, 0) << "create() leaves the link down";

    ASSERT_TRUE(dev->set_mtu_and_up(1380).ok());
    EXPECT_EQ(dev->mtu(), 1380u);
    EXPECT_NE(link_flags("mftest0") & IFF_UP, 0);
    if (g_sysfs_private) {
        EXPECT_EQ(read_file("/sys/class/net/mftest0/mtu"), "1380");
        const unsigned long flags = std::stoul(read_file("/sys/class/net/mftest0/flags"), nullptr, 16);
        EXPECT_NE(flags & IFF_UP, 0u);
    }

    const ip_prefix v4 = P("10.9.0.1/24");
    const ip_prefix v6 = P("fd00:9::1/64");
    const ip_prefix route = P("10.10.0.0/16");
    ASSERT_TRUE(dev->add_address(v4).ok());
    auto r6 = dev->add_address(v6);
    ASSERT_TRUE(r6.ok()) << r6.error_message();
    EXPECT_TRUE(dev->add_address(v4).ok()) << "the same address again is success";
    auto rr = dev->add_route(route);
    ASSERT_TRUE(rr.ok()) << rr.error_message();
    EXPECT_TRUE(dev->add_route(route).ok()) << "an identical route is skipped";
    EXPECT_TRUE(dev->add_route(P("fd00:10::/48")).ok());

    auto addrs = netlink::list_addresses(dev->ifindex());
    ASSERT_TRUE(addrs.ok()) << addrs.error_message();
    EXPECT_TRUE(has_prefix(*addrs, v4));
    EXPECT_TRUE(has_prefix(*addrs, v6));
    auto routes4 = netlink::list_routes(ip_family::v4);
    ASSERT_TRUE(routes4.ok()) << routes4.error_message();
    const auto* found = find_route(*routes4, route);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->oif, dev->ifindex());
    EXPECT_EQ(found->protocol, RTPROT_BOOT);
    auto routes6 = netlink::list_routes(ip_family::v6);
    ASSERT_TRUE(routes6.ok()) << routes6.error_message();
    EXPECT_NE(find_route(*routes6, P("fd00:10::/48")), nullptr);

    // remove_route, twice (the second finds nothing and still succeeds).
    ASSERT_TRUE(dev->remove_route(P("fd00:10::/48")).ok());
    EXPECT_TRUE(dev->remove_route(P("fd00:10::/48")).ok());
    routes6 = netlink::list_routes(ip_family::v6);
    ASSERT_TRUE(routes6.ok());
    EXPECT_EQ(find_route(*routes6, P("fd00:10::/48")), nullptr);

    // Tunnel -> host: a packet written into the TUN (with an all-zero vnet header) reaches a
    // socket bound to our address.
    const int rx = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(rx, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(addr_local);
    ASSERT_EQ(::bind(rx, reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0) << std::strerror(errno);
    socklen_t len = sizeof(local);
    ASSERT_EQ(::getsockname(rx, reinterpret_cast<sockaddr*>(&local), &len), 0);
    const uint16_t rx_port = ntohs(local.sin_port);

    std::vector<uint8_t> frame(sizeof(raw_vnet_header), 0);
    const auto pkt = ipv4_udp(addr_remote, addr_local, 40000, rx_port, "hello-tun");
    frame.insert(frame.end(), pkt.begin(), pkt.end());
    ASSERT_EQ(::write(dev->queue_fd(1), frame.data(), frame.size()), static_cast<ssize_t>(frame.size()))
        << std::strerror(errno);
    pollfd pfd{rx, POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 3000), 1) << "the packet written into the TUN never reached the socket";
    char buf[256];
    sockaddr_in from{};
    socklen_t from_len = sizeof(from);
    const ssize_t n = ::recvfrom(rx, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    ASSERT_EQ(n, 9);
    EXPECT_EQ(std::string(buf, 9), "hello-tun");
    EXPECT_EQ(ntohl(from.sin_addr.s_addr), addr_remote);
    EXPECT_EQ(ntohs(from.sin_port), 40000);

    // Host -> tunnel: a datagram to 10.9.0.2 comes out of one of the queues with its vnet header.
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(addr_remote);
    to.sin_port = htons(40001);
    ASSERT_EQ(::sendto(rx, "hello-wire", 10, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 10)
        << std::strerror(errno);
    bool seen = false;
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    std::vector<uint8_t> in(70000);
    while (!seen && std::chrono::steady_clock::now() < deadline) {
        std::array<pollfd, 2> qs{{{dev->queue_fd(0), POLLIN, 0}, {dev->queue_fd(1), POLLIN, 0}}};
        if (::poll(qs.data(), qs.size(), 200) <= 0) {
            continue;
        }
        for (const auto& q : qs) {
            if ((q.revents & POLLIN) == 0) {
                continue;
            }
            const ssize_t got = ::read(q.fd, in.data(), in.size());
            ASSERT_GT(got, 0) << std::strerror(errno);
            // Other traffic (IPv6 router solicitations, MLD) may come first: skip it.
            const std::size_t h = sizeof(raw_vnet_header);
            if (static_cast<std::size_t>(got) < h + 28 || in[h] != 0x45 || in[h + 9] != IPPROTO_UDP ||
                be32(&in[h + 16]) != addr_remote || be16(&in[h + 22]) != 40001) {
                continue;
            }
            raw_vnet_header vh{};
            std::memcpy(&vh, in.data(), sizeof(vh));
            std::cout << "vnet header on the host->tunnel datagram: flags=" << int{vh.flags}
                      << " gso_type=" << int{vh.gso_type} << " csum_start=" << vh.csum_start
                      << " csum_offset=" << vh.csum_offset << "\n";
            EXPECT_EQ(vh.gso_type, vnet_gso_none);
            if ((vh.flags & vnet_needs_csum) != 0) {
                EXPECT_TRUE(off.csum);
                EXPECT_EQ(vh.csum_start, 20); // the UDP header
                EXPECT_EQ(vh.csum_offset, 6); // its checksum field
            }
            EXPECT_EQ(static_cast<std::size_t>(got), h + 28 + 10);
            EXPECT_EQ(std::string(reinterpret_cast<const char*>(&in[h + 28]), 10), "hello-wire");
            seen = true;
        }
    }
    EXPECT_TRUE(seen) << "the datagram to 10.9.0.2 never came out of the TUN queues";
    ::close(rx);

    // Closing every queue removes the device, its addresses and routes.
    dev.reset();
    EXPECT_EQ(if_nametoindex("mftest0"), 0u);
    if (g_sysfs_private) {
        EXPECT_FALSE(std::filesystem::exists("/sys/class/net/mftest0"));
    }
    routes4 = netlink::list_routes(ip_family::v4);
    ASSERT_TRUE(routes4.ok());
    EXPECT_EQ(find_route(*routes4, route), nullptr);
}

TEST(tun_device, without_vnet_hdr_reports_no_offloads) {
    ENTER_PRIVATE_NETNS();
    auto dev = tun_device::create({.name = "mftest%d", .mtu = 1420, .queues = 1, .vnet_hdr = false});
    ASSERT_TRUE(dev.ok()) << dev.error_message();
    EXPECT_EQ(dev->name(), "mftest0") << "the kernel expands %d";
    EXPECT_FALSE(dev->vnet_hdr());
    const tun_offloads off = dev->offloads();
    EXPECT_FALSE(off.csum || off.tso4 || off.tso6 || off.uso);
    ifreq ifr{};
    ASSERT_EQ(::ioctl(dev->queue_fd(0), TUNGETIFF, &ifr), 0);
    EXPECT_EQ(ifr.ifr_flags & IFF_VNET_HDR, 0);
    if (g_sysfs_private) {
        EXPECT_EQ(read_file("/sys/class/net/mftest0/mtu"), "1420");
    }
}

TEST(tun_device, refuses_bad_names_mtus_and_queue_counts) {
    ENTER_PRIVATE_NETNS();
    auto long_name = tun_device::create({.name = "mftest0123456789"});
    ASSERT_FALSE(long_name.ok());
    EXPECT_NE(long_name.error_message().find("at most 15"), std::string::npos) << long_name.error_message();
    EXPECT_NE(long_name.error_message().find("mftest0123456789"), std::string::npos);

    auto empty = tun_device::create({.name = ""});
    ASSERT_FALSE(empty.ok());
    EXPECT_NE(empty.error_message().find("empty"), std::string::npos);

    auto slash = tun_device::create({.name = "mf/test"});
    ASSERT_FALSE(slash.ok());
    EXPECT_NE(slash.error_message().find("'/'"), std::string::npos) << slash.error_message();

    for (const uint32_t mtu : {0u, 67u, 70000u}) {
        auto bad = tun_device::create({.name = "mftest0", .mtu = mtu});
        ASSERT_FALSE(bad.ok()) << mtu;
        EXPECT_NE(bad.error_message().find("MTU " + std::to_string(mtu)), std::string::npos) << bad.error_message();
        EXPECT_NE(bad.error_message().find("mftest0"), std::string::npos);
    }
    EXPECT_EQ(if_nametoindex("mftest0"), 0u) << "a refused create leaves no device";

    auto no_queues = tun_device::create({.name = "mftest0", .queues = 0});
    ASSERT_FALSE(no_queues.ok());
    EXPECT_NE(no_queues.error_message().find("queues"), std::string::npos);

    auto dev = tun_device::create({.name = "mftest0", .queues = 2});
    ASSERT_TRUE(dev.ok()) << dev.error_message();
    for (const uint32_t mtu : {0u, 70000u}) {
        auto r = dev->set_mtu_and_up(mtu);
        ASSERT_FALSE(r.ok());
        EXPECT_NE(r.error_message().find("MTU " + std::to_string(mtu) + " is out of range"), std::string::npos)
            << r.error_message();
    }
    EXPECT_EQ(dev->mtu(), 1420u) << "a refused MTU changes nothing";

    // The name is taken (by our own device here): a second create must not attach to it.
    auto twice = tun_device::create({.name = "mftest0", .queues = 2});
    ASSERT_FALSE(twice.ok());
    EXPECT_NE(twice.error_message().find("already exists"), std::string::npos) << twice.error_message();
    EXPECT_EQ(dev->queues(), 2u);
    ifreq ifr{};
    EXPECT_EQ(::ioctl(dev->queue_fd(1), TUNGETIFF, &ifr), 0) << "the first device is untouched";

    // A name taken by a device that is not a TUN at all (lo).
    auto lo = tun_device::create({.name = "lo"});
    ASSERT_FALSE(lo.ok());
    EXPECT_NE(lo.error_message().find("already exists"), std::string::npos) << lo.error_message();
}

TEST(tun_device, refuses_bad_addresses_and_conflicting_routes) {
    ENTER_PRIVATE_NETNS();
    // A family/length mismatch cannot even be built: ip_prefix checks it.
    EXPECT_FALSE(ip_prefix::parse("10.9.0.1/33").ok());
    EXPECT_FALSE(ip_prefix::make(*ip_address::parse("10.9.0.1"), 64).ok());

    auto created = tun_device::create({.name = "mftest0", .mtu = 1000});
    ASSERT_TRUE(created.ok()) << created.error_message();
    tun_device& dev = *created;
    ASSERT_TRUE(dev.set_mtu_and_up(1000).ok());

    auto v6_small_mtu = dev.add_address(P("fd00:9::1/64"));
    ASSERT_FALSE(v6_small_mtu.ok());
    EXPECT_NE(v6_small_mtu.error_message().find("1280"), std::string::npos) << v6_small_mtu.error_message();

    auto zero_len = dev.add_address(P("10.9.0.1/0"));
    ASSERT_FALSE(zero_len.ok());
    EXPECT_NE(zero_len.error_message().find("prefix length 0"), std::string::npos) << zero_len.error_message();
    EXPECT_NE(zero_len.error_message().find("mftest0"), std::string::npos);

    auto unspecified = dev.add_address(P("0.0.0.0/24"));
    ASSERT_FALSE(unspecified.ok());
    EXPECT_NE(unspecified.error_message().find("unspecified"), std::string::npos) << unspecified.error_message();

    ASSERT_TRUE(dev.set_mtu_and_up(1420).ok());
    ASSERT_TRUE(dev.add_address(P("fd00:9::1/64")).ok());
    auto other_len = dev.add_address(P("fd00:9::1/48"));
    ASSERT_FALSE(other_len.ok()) << "the same IPv6 address with another length is not 'already there'";
    EXPECT_NE(other_len.error_message().find("fd00:9::1/64"), std::string::npos) << other_len.error_message();

    // Host bits in a route are cleared, as `ip route` would insist.
    ASSERT_TRUE(dev.add_route(P("10.20.1.2/16")).ok());
    auto routes = netlink::list_routes(ip_family::v4);
    ASSERT_TRUE(routes.ok());
    EXPECT_NE(find_route(*routes, P("10.20.0.0/16")), nullptr);

    // The same prefix via another device is a conflict, not "already there".
    auto other = tun_device::create({.name = "mftest1"});
    ASSERT_TRUE(other.ok()) << other.error_message();
    ASSERT_TRUE(other->set_mtu_and_up(1420).ok());
    auto conflict = other->add_route(P("10.20.0.0/16"));
    ASSERT_FALSE(conflict.ok());
    EXPECT_NE(conflict.error_message().find("already routed via"), std::string::npos) << conflict.error_message();
    EXPECT_NE(conflict.error_message().find("mftest0"), std::string::npos) << conflict.error_message();

    // The kernel's own reason comes through: a route via a link that is down.
    auto down = tun_device::create({.name = "mftest2"});
    ASSERT_TRUE(down.ok());
    auto r = down->add_route(P("10.30.0.0/16"));
    ASSERT_FALSE(r.ok());
    std::cout << "route via a down link: " << r.error_message() << "\n";
    EXPECT_NE(r.error_message().find("mftest2"), std::string::npos);
    EXPECT_NE(r.error_message().find("10.30.0.0/16"), std::string::npos);
}

} // namespace
} // namespace meshfwd::dataplane
