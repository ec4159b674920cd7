// The layer-3 TUN device meshfwd owns: one multi-queue device (IFF_MULTI_QUEUE, one queue fd per
// worker), optionally with a virtio-net header on every packet (IFF_VNET_HDR) so the kernel can hand
// us TSO/USO super-packets and partial checksums, plus its MTU, addresses and routes via netlink.
//
// Threads: create() and the set-up methods run on the main/control thread at start-up and on reload.
// Workers only use queue_fd(i) (their own i) for reads and writes through io_uring; nothing here is
// called per packet.
//
// Lifetime: the device is not persistent, so closing the last queue fd (the destructor) makes the
// kernel delete it together with its addresses and routes: a crash leaves nothing behind.
#pragma once

#include "lib/ip_address.h"
#include "lib/result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace meshfwd::dataplane {

struct tun_options {
    std::string name;      // at most 15 characters; "%d" lets the kernel pick a number
    uint32_t mtu = 1420;   // applied by create(); WireGuard's default for a 1500-byte underlay
    unsigned queues = 1;   // one per worker, 1..256
    bool vnet_hdr = true;  // prepend struct virtio_net_hdr (10 bytes) to every packet, both ways
};

// What the kernel accepted from TUNSETOFFLOAD: which super-packets and partial checksums our reads
// may carry (and our writes may use). All false without vnet_hdr.
struct tun_offloads {
    bool csum = false; // TUN_F_CSUM: packets may come with VIRTIO_NET_HDR_F_NEEDS_CSUM
    bool tso4 = false; // TUN_F_TSO4: TCP/IPv4 super-packets (gso_type TCPV4)
    bool tso6 = false; // TUN_F_TSO6: TCP/IPv6 super-packets (gso_type TCPV6)
    bool uso = false;  // TUN_F_USO4|TUN_F_USO6 (Linux 6.2+): UDP super-packets (gso_type UDP_L4)
};

// Size of the header in front of every packet when vnet_hdr() is on (struct virtio_net_hdr).
inline constexpr unsigned tun_vnet_hdr_size = 10;

class tun_device {
public:
    // Opens /dev/net/tun `queues` times under one name (IFF_TUN|IFF_NO_PI|IFF_MULTI_QUEUE, plus
    // IFF_VNET_HDR), sets the vnet header size and the widest offload set the kernel takes
    // (CSUM|TSO4|TSO6|USO4|USO6, else CSUM|TSO4|TSO6, else none), then the MTU. The link stays down.
    // Fails, naming the device, when the name is empty/too long/invalid, any network device of that
    // name already exists, or the kernel refuses. Queue fds are blocking and close-on-exec.
    static result<tun_device> create(const tun_options& options);

    tun_device(tun_device&& other) noexcept;
    tun_device& operator=(tun_device&& other) noexcept;
    tun_device(const tun_device&) = delete;
    tun_device& operator=(const tun_device&) = delete;
    ~tun_device();

    // The fd of queue i (a worker's own), or -1 when i >= queues().
    int queue_fd(unsigned i) const noexcept { return i < _fds.size() ? _fds[i] : -1; }
    unsigned queues() const noexcept { return static_cast<unsigned>(_fds.size()); }
    const std::string& name() const noexcept { return _name; }
    int ifindex() const noexcept { return _ifindex; }
    tun_offloads offloads() const noexcept { return _offloads; }
    bool vnet_hdr() const noexcept { return _vnet_hdr; }
    uint32_t mtu() const noexcept { return _mtu; }

    // MTU (68..65535) and IFF_UP in one netlink message.
    result<void> set_mtu_and_up(uint32_t mtu);
    // An IPv4 or IPv6 address with its network's prefix length (10.100.0.1/16, fd00::1/64). IPv6 gets
    // IFA_F_NODAD so it is usable at once, and needs an MTU of at least 1280. Adding an address that
    // is already there is success.
    result<void> add_address(const ip_prefix& address_with_length);
    // A route for destination via this device (main table). Success when the same route exists;
    // an error when the prefix is routed via another device. Needs the link up (IPv4).
    result<void> add_route(const ip_prefix& destination);
    // Removes the route for destination via this device; success when it is not there.
    result<void> remove_route(const ip_prefix& destination);

private:
    tun_device() = default;
    void close_all() noexcept;

    std::vector<int> _fds;
    std::string _name;
    int _ifindex = 0;
    uint32_t _mtu = 0;
    tun_offloads _offloads;
    bool _vnet_hdr = false;
};

} // namespace meshfwd::dataplane
