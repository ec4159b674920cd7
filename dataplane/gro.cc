// TCP and UDP coalescing for TUN writes (see gro.h for the rules). One instance per worker.
//
// coalesce() makes four passes over the burst, all O(n) with preallocated arrays:
//   1. classify each packet and put it into its flow's open group or a new one (flows are found
//      in an open-addressing table stamped with a per-call epoch, so it is never cleared);
//   2. give each group a contiguous range of iovec entries (prefix sums of the counts);
//   3. fill the iovecs (and which packet each is from) in burst order, which keeps each group's
//      packets in order;
//   4. rewrite merged groups' first headers and write every virtio-net header.
#include "dataplane/gro.h"

#include "dataplane/checksum.h"
#include "dataplane/gso.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace meshfwd::dataplane {

namespace {

constexpr uint8_t proto_tcp = 6;
constexpr uint8_t proto_udp = 17;
constexpr uint32_t udp_header_size = 8;
constexpr uint8_t tcp_ack = 0x10;
constexpr uint8_t tcp_psh = 0x08;
constexpr uint8_t ipv4_df = 0x40;   // in byte 6
constexpr uint32_t max_ip_length = 65535;
constexpr uint32_t no_group = ~0u;

enum class kind : uint8_t {
    other,      // not TCP/UDP we can identify: always its own write, belongs to no flow
    flow_only,  // TCP/UDP with a 4-tuple but not mergeable (SYN/FIN/RST, IP options, no payload,
                // UDP length not the IP length ...): its own write, and it ends its flow's open
                // group so later packets stay behind it
    mergeable,
};

struct tcp_view {
    kind k = kind::other;
    bool v6 = false;
    uint8_t proto = 0;    // proto_tcp or proto_udp (k != other)
    uint8_t ip_len = 0;
    uint8_t tcp_len = 0;  // L4 header length: TCP with options, or 8 for UDP
    uint8_t flags = 0;
    uint32_t length = 0;  // IP length
    uint32_t payload = 0;
    uint32_t seq = 0;
    uint32_t ack = 0;
};

// `udp`: UDP may be merged (the device takes USO); otherwise UDP is `other`.
tcp_view classify(const uint8_t* d, uint32_t length, bool udp) noexcept {
    tcp_view v;
    if (length < 20 || d == nullptr) {
        return v;
    }
    const unsigned version = d[0] >> 4;
    bool simple_ip = false;  // no IPv4 options
    uint8_t proto = 0;
    if (version == 4) {
        proto = d[9];
    } else if (version == 6 && length >= 40) {
        proto = d[6];  // extension headers: not ours to parse here
    }
    if (proto != proto_tcp && !(udp && proto == proto_udp)) {
        return v;
    }
    const uint32_t min_l4 = proto == proto_tcp ? 20 : udp_header_size;
    if (version == 4) {
        const uint32_t ihl = (d[0] & 0x0fu) * 4u;
        const uint32_t total = load_be16(&d[2]);
        const uint16_t frag = load_be16(&d[6]);
        if (ihl < 20 || total > length || total < ihl + min_l4 || (frag & 0x3fffu) != 0) {
            return v;  // fragments (even first ones) are left to the kernel's reassembly
        }
        v.ip_len = static_cast<uint8_t>(ihl);
        v.length = total;
        simple_ip = ihl == 20;
    } else {
        const uint32_t total = 40u + load_be16(&d[4]);
        if (total > length || total < 40 + min_l4) {
            return v;  // includes jumbograms (payload length 0)
        }
        v.v6 = true;
        v.ip_len = 40;
        v.length = total;
        simple_ip = true;
    }
    v.k = kind::flow_only;
    v.proto = proto;
    if (proto == proto_udp) {
        // The UDP length must be the IP payload's: the merged packet's is recomputed, so a
        // datagram that says otherwise (trailing bytes inside the IP packet) stays as it is.
        v.tcp_len = udp_header_size;
        v.payload = v.length - v.ip_len - udp_header_size;
        if (simple_ip && v.payload > 0 && load_be16(d + v.ip_len + 4) == v.length - v.ip_len) {
            v.k = kind::mergeable;
        }
        return v;
    }
    const uint8_t* t = d + v.ip_len;
    const uint32_t doff = (t[12] >> 4) * 4u;
    if (doff < 20 || v.ip_len + doff > v.length) {
        return v;
    }
    v.tcp_len = static_cast<uint8_t>(doff);
    v.flags = t[13];
    v.seq = load_be32(&t[4]);
    v.ack = load_be32(&t[8]);
    v.payload = v.length - v.ip_len - doff;
    if (simple_ip && v.payload > 0 && v.payload <= 0xffff && (v.flags & ~tcp_psh) == tcp_ack) {
        v.k = kind::mergeable;
    }
    return v;
}

// Addresses, protocol and ports; v4 and v6 hash apart.
uint32_t flow_hash(const uint8_t* d, const tcp_view& v) noexcept {
    uint64_t h = (v.v6 ? 0x6a09e667f3bcc908ULL : 0xbb67ae8584caa73bULL) + v.proto;
    const uint8_t* a = v.v6 ? d + 8 : d + 12;
    const std::size_t words = v.v6 ? 8 : 2;
    for (std::size_t i = 0; i < words; ++i) {
        h = (h ^ load_be32(a + 4 * i)) * 0x9e3779b97f4a7c15ULL;
    }
    h = (h ^ load_be32(d + v.ip_len)) * 0x9e3779b97f4a7c15ULL;
    return static_cast<uint32_t>(h >> 32);
}

bool same_flow(const uint8_t* a, uint8_t a_ip_len, bool a_v6, uint8_t a_proto, const uint8_t* b,
               const tcp_view& v) noexcept {
    if (a_v6 != v.v6 || a_proto != v.proto) {
        return false;
    }
    const bool addrs = v.v6 ? std::memcmp(a + 8, b + 8, 32) == 0 : std::memcmp(a + 12, b + 12, 8) == 0;
    return addrs && std::memcmp(a + a_ip_len, b + v.ip_len, 4) == 0;
}

}  // namespace

tcp_coalescer::tcp_coalescer(std::size_t max_burst, uint32_t max_segments)
    : _max_burst(std::max<std::size_t>(max_burst, 1)), _max_segments(std::max<uint32_t>(max_segments, 1)) {
    // Load factor <= 1/2: each packet adds at most one flow.
    const std::size_t slots = std::bit_ceil(std::max<std::size_t>(16, 2 * _max_burst));
    _slot_mask = static_cast<uint32_t>(slots - 1);
    _groups.resize(_max_burst);
    _notes.resize(_max_burst);
    _slots.assign(slots, slot{0, 0});
    _iov.resize(_max_burst);
    _members.resize(_max_burst);
    _writes.resize(_max_burst);
}

std::span<const tcp_coalescer::tun_write> tcp_coalescer::coalesce(std::span<const gro_packet> burst) noexcept {
    const uint32_t n = static_cast<uint32_t>(std::min(burst.size(), _max_burst));
    _consumed = n;
    if (++_epoch == 0) {
        // Every 2^32 calls: stale stamps could look current again.
        for (slot& s : _slots) {
            s.epoch = 0;
        }
        _epoch = 1;
    }

    // Pass 1: groups.
    uint32_t n_groups = 0;
    for (uint32_t i = 0; i < n; ++i) {
        uint8_t* d = burst[i].data;
        const tcp_view v = _enabled ? classify(d, burst[i].length, _udp) : tcp_view{};
        slot* s = nullptr;
        uint32_t gi = no_group;
        if (v.k != kind::other) {
            for (uint32_t h = flow_hash(d, v);; ++h) {
                s = &_slots[h & _slot_mask];
                if (s->epoch != _epoch) {
                    s->epoch = _epoch;
                    s->group = no_group;
                    break;
                }
                const group& f = _groups[s->group];
                if (same_flow(burst[f.first].data, f.ip_len, f.v6, f.proto, d, v)) {
                    break;
                }
            }
            if (v.k == kind::mergeable && s->group != no_group) {
                group& g = _groups[s->group];
                const uint8_t* f = burst[g.first].data;
                const bool tcp = v.proto == proto_tcp;  // same_flow: the group's protocol too
                bool ok = g.open && g.v6 == v.v6 && g.count < _max_segments && v.payload <= g.gso_size &&
                          g.total + v.payload <= max_ip_length;
                if (ok && tcp) {
                    ok = v.seq == g.next_seq && v.ack == g.ack && v.tcp_len == g.tcp_len &&
                         f[g.ip_len + 12] == d[v.ip_len + 12] &&  // data offset and reserved bits
                         std::memcmp(f + g.ip_len + 20, d + v.ip_len + 20, v.tcp_len - 20u) == 0;
                }
                uint8_t id_mode = g.id_mode;
                if (ok && v.v6) {
                    ok = std::memcmp(f, d, 4) == 0 && f[7] == d[7];
                } else if (ok) {
                    ok = f[1] == d[1] && (f[6] & 0xe0) == (d[6] & 0xe0) && f[8] == d[8];
                    const uint16_t id = load_be16(&d[4]);
                    if (id == static_cast<uint16_t>(g.first_id + g.count) && id_mode != 2) {
                        id_mode = 1;
                    } else if (tcp && id == g.first_id && (d[6] & ipv4_df) != 0 && id_mode != 1) {
                        id_mode = 2;
                    } else if (!tcp && (d[6] & ipv4_df) != 0) {
                        // USO segmentation numbers the ids first + i; for datagrams that may
                        // not be fragmented the id means nothing (RFC 6864), so any will do.
                        id_mode = 3;
                    } else {
                        ok = false;
                    }
                }
                if (ok) {
                    g.id_mode = id_mode;
                    ++g.count;
                    g.next_seq += v.payload;
                    g.total += v.payload;
                    const bool psh = tcp && (v.flags & tcp_psh) != 0;
                    g.psh = g.psh || psh;
                    g.open = !psh && v.payload == g.gso_size;  // a shorter one is the last
                    gi = s->group;
                }
            }
        }
        if (gi == no_group) {
            gi = n_groups++;
            group& g = _groups[gi];
            g.first = i;
            g.count = 1;
            g.total = 0;
            g.open = false;
            if (v.k == kind::mergeable) {
                g.total = v.length;  // used once a second packet joins
                g.next_seq = v.seq + v.payload;
                g.ack = v.ack;
                g.gso_size = static_cast<uint16_t>(v.payload);
                g.first_id = v.v6 ? 0 : load_be16(&d[4]);
                g.ip_len = v.ip_len;
                g.tcp_len = v.tcp_len;
                g.id_mode = 0;
                g.v6 = v.v6;
                g.proto = v.proto;
                g.psh = v.proto == proto_tcp && (v.flags & tcp_psh) != 0;
                g.open = !g.psh;
            } else if (v.k == kind::flow_only) {
                // Only its key is read later (same_flow); it stays closed.
                g.ip_len = v.ip_len;
                g.v6 = v.v6;
                g.proto = v.proto;
            }
            if (s != nullptr) {
                s->group = gi;
            }
        }
        _notes[i].group = gi;
        _notes[i].hdrs = static_cast<uint16_t>(v.ip_len + v.tcp_len);
        _notes[i].ip_len = v.length;
    }

    // Pass 2: iovec ranges; _writes[].iov_count is the fill cursor in pass 3.
    uint32_t pos = 0;
    for (uint32_t gi = 0; gi < n_groups; ++gi) {
        _groups[gi].iov_start = pos;
        _writes[gi].iov_count = 0;
        pos += _groups[gi].count;
    }

    // Pass 3: iovecs in burst order, so each group's entries follow its packets' order (its
    // first packet comes first).
    for (uint32_t i = 0; i < n; ++i) {
        const packet_note& note = _notes[i];
        const group& g = _groups[note.group];
        uint8_t* d = burst[i].data;
        uint32_t& placed = _writes[note.group].iov_count;
        if (g.first == i) {
            const uint32_t len = g.count > 1 ? note.ip_len : burst[i].length;
            _iov[g.iov_start] = {d - virtio_net_hdr_size, virtio_net_hdr_size + len};
        } else {
            _iov[g.iov_start + placed] = {d + note.hdrs, static_cast<std::size_t>(note.ip_len - note.hdrs)};
        }
        _members[g.iov_start + placed] = i;
        ++placed;
    }

    // Pass 4: headers and the result.
    for (uint32_t gi = 0; gi < n_groups; ++gi) {
        const group& g = _groups[gi];
        uint8_t* d = burst[g.first].data;
        vnet_header h;  // gso NONE, no NEEDS_CSUM
        if (g.count > 1) {
            if (g.v6) {
                store_be16(&d[4], static_cast<uint16_t>(g.total - 40));
            } else {
                store_be16(&d[2], static_cast<uint16_t>(g.total));
                store_be16(&d[10], ipv4_header_checksum({d, g.ip_len}));
            }
            uint8_t* t = d + g.ip_len;
            const bool tcp = g.proto == proto_tcp;
            if (g.psh) {
                t[13] |= tcp_psh;
            }
            if (!tcp) {
                store_be16(&t[4], static_cast<uint16_t>(g.total - g.ip_len));  // UDP length of the whole
            }
            // The L4 checksum field holds the folded pseudo-header sum over the whole length:
            // the kernel adjusts it per segment (tcp_gso_segment, __udp_gso_segment) and sums.
            const std::size_t alen = g.v6 ? 16 : 4;
            const uint8_t* src = g.v6 ? d + 8 : d + 12;
            const uint64_t pseudo = pseudo_header_sum({src, alen}, {src + alen, alen}, g.proto, g.total - g.ip_len);
            const uint16_t csum_offset = tcp ? 16 : 6;
            store_be16(&t[csum_offset], checksum_fold(pseudo));
            h.flags = vnet::f_needs_csum;
            h.gso_type = !tcp ? vnet::gso_udp_l4 : g.v6 ? vnet::gso_tcpv6 : vnet::gso_tcpv4;
            h.hdr_len = static_cast<uint16_t>(g.ip_len + g.tcp_len);
            h.gso_size = g.gso_size;
            h.csum_start = g.ip_len;
            h.csum_offset = csum_offset;
        }
        write_vnet_header(h, std::span<uint8_t, virtio_net_hdr_size>(d - virtio_net_hdr_size, virtio_net_hdr_size));
        const uint32_t ip_bytes = g.count > 1 ? g.total : burst[g.first].length;
        _writes[gi] = {&_iov[g.iov_start], &_members[g.iov_start], g.count,
                       static_cast<uint32_t>(virtio_net_hdr_size + ip_bytes)};
    }
    return {_writes.data(), n_groups};
}

}  // namespace meshfwd::dataplane
