// TUN offload output: coalesces a burst of decrypted TCP packets into GSO super-packets (one
// TUN write each, IFF_VNET_HDR with TUN_F_TSO4/TSO6 offered), so the kernel's stack handles one
// big skb instead of dozens; and UDP datagrams likewise into USO super-packets (gso_type
// UDP_L4) where the device took TUN_F_USO4/USO6 (Linux 6.2+: an older kernel refuses UDP_L4
// writes, so set_udp(true) only then). Everything else (ICMP, fragments ...) passes through as
// its own write.
//
// Pipeline position: worker rx path  ... → decrypt → replay → source check
//                                     → tcp_coalescer::coalesce → TUN tx burst (writev per write).
// Threads: one tcp_coalescer per worker (not thread-safe). coalesce() allocates nothing and takes
// no lock; the constructor preallocates for max_burst packets.
//
// Coalescing follows Linux GRO (tcp_gro_receive, inet_gro_receive) and wireguard-go's
// tun/tcp_offload_linux.go, appending only (a packet joins the open group of its flow when it
// continues it; otherwise it starts a new group), so packets of one flow keep their order:
//   IPv4 without options or fragment bits, same TOS, TTL and DF; IPv4 ids consecutive, or all
//   equal with DF set. IPv6 with TCP as next header, same version/traffic class/flow label and
//   hop limit. Same addresses and ports, same ack, same TCP header length, reserved bits and
//   option bytes; flags exactly ACK, PSH allowed on the packet that ends a group; seq continues
//   the group; payload > 0 and at most the first's (gso_size); a shorter one ends the group;
//   total IP length <= 65535; at most max_segments packets (the worker's iovec array).
//   UDP (Linux udp_gro_receive_segment, wireguard-go's udpPacketsCanCoalesce): the same IP rules
//   except that IPv4 ids may be anything when DF is set (the kernel's USO numbers them first + i,
//   RFC 6864: meaningless for atomic datagrams) and must be consecutive otherwise; same addresses
//   and ports; UDP length == IP payload length; payload > 0 and all equal to the first's
//   (gso_size), except a shorter one, which ends the group. Trailing bytes past the IP length (e.g. WireGuard's zero padding,
//   if the decrypt stage left it) are left out of a coalesced write.
// Checksums are NOT verified before merging (Linux GRO relies on the NIC or stack having checked
// them): these packets were authenticated by the peer's AEAD, so a bad checksum is the peer's
// own doing, and the kernel recomputes the merged checksum from our pseudo-header seed.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace meshfwd::dataplane {

// One decrypted IP packet. The 10 bytes before `data` must be writable: the virtio-net header
// of a write goes there.
struct gro_packet {
    uint8_t* data;
    uint32_t length;
};

class tcp_coalescer {
public:
    // Preallocates everything for bursts of up to max_burst packets (max_burst >= 1). A write
    // merges at most max_segments packets (>= 1): one iovec each, and the kernel takes at most
    // UDP_MAX_SEGMENTS segments in a UDP GSO packet (64 on older kernels, later 128).
    explicit tcp_coalescer(std::size_t max_burst, uint32_t max_segments = default_max_segments);
    static constexpr uint32_t default_max_segments = 64;
    tcp_coalescer(const tcp_coalescer&) = delete;
    tcp_coalescer& operator=(const tcp_coalescer&) = delete;

    // One TUN write: iov[0] is [data - 10, data + ip_length) of its first packet with the
    // virtio-net header written in front; iov[1..] are the TCP payloads of the packets merged
    // into it, in order. A packet left alone is [data - 10, data + length) behind a zero header
    // (gso NONE, no NEEDS_CSUM), its bytes untouched. total_bytes includes the 10-byte header.
    // members[k] is the index in the burst of the packet iov[k] lies in (to free it once written).
    struct tun_write {
        const struct iovec* iov;
        const uint32_t* members;
        uint32_t iov_count;
        uint32_t total_bytes;
    };

    // Groups the first min(burst.size(), max_burst()) packets into writes, ordered by their
    // first packet; every packet is in exactly one write, and packets of one flow keep their
    // order. Rewrites the first packet's headers of each merged group (IPv4 total length and
    // header checksum or IPv6 payload length; TCP PSH if any merged packet had it; UDP length;
    // TCP/UDP checksum = pseudo-header sum for NEEDS_CSUM). The result is valid until the next call. Callers pass
    // at most max_burst() packets; consumed() says how many the last call took.
    [[nodiscard]] std::span<const tun_write> coalesce(std::span<const gro_packet> burst) noexcept;

    [[nodiscard]] std::size_t consumed() const noexcept { return _consumed; }
    [[nodiscard]] std::size_t max_burst() const noexcept { return _max_burst; }
    // Disabled: every packet becomes its own write (for peers or devices without TSO, tests).
    void set_enabled(bool on) noexcept { _enabled = on; }
    [[nodiscard]] bool enabled() const noexcept { return _enabled; }
    // UDP merged too (USO writes); off by default: only for a device that took TUN_F_USO4|6.
    void set_udp(bool on) noexcept { _udp = on; }
    [[nodiscard]] bool udp() const noexcept { return _udp; }
    [[nodiscard]] uint32_t max_segments() const noexcept { return _max_segments; }

private:
    // A write under construction: one packet, or a group of one flow's segments.
    struct group {
        uint32_t first;      // index in the burst of its first packet
        uint32_t count;      // packets in it
        uint32_t iov_start;  // its first entry in _iov
        uint32_t total;      // IP length of the merged packet so far (the first's, when alone)
        uint32_t next_seq;   // seq the next packet must have
        uint32_t ack;
        uint16_t gso_size;   // payload of the first packet
        uint16_t first_id;   // IPv4 id of the first packet
        uint8_t ip_len;
        uint8_t tcp_len;
        uint8_t id_mode;  // 0: one packet so far, 1: ids increment, 2: ids fixed (DF, TCP), 3: any (DF, UDP)
        uint8_t proto;    // 6 or 17 (merged or flow_only groups)
        bool v6;
        bool open;  // may take more packets
        bool psh;
    };
    struct slot {
        uint32_t epoch;  // == _epoch: in use this call
        uint32_t group;  // the flow's latest group
    };
    struct packet_note {
        uint32_t group;
        uint16_t hdrs;     // IP + TCP header bytes (merged packets send only what follows)
        uint32_t ip_len;   // IP length (without trailing padding)
    };

    std::size_t _max_burst;
    uint32_t _max_segments;
    std::size_t _consumed = 0;
    bool _enabled = true;
    bool _udp = false;
    uint32_t _epoch = 0;
    uint32_t _slot_mask;
    std::vector<group> _groups;
    std::vector<packet_note> _notes;
    std::vector<slot> _slots;
    std::vector<struct iovec> _iov;
    std::vector<uint32_t> _members;  // parallel to _iov
    std::vector<tun_write> _writes;
};

}  // namespace meshfwd::dataplane
