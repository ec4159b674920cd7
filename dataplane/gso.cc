// virtio-net header codec, NEEDS_CSUM completion and TSO/USO segmentation. Data-plane workers,
// per packet; no state. See gso.h for the contract.
#include "dataplane/gso.h"

#include "dataplane/checksum.h"

#include <algorithm>
#include <cstring>

namespace meshfwd::dataplane {

// <linux/virtio_net.h> is not valid C++ (a member named `class`), so gso.h spells out its values.

namespace {

constexpr uint8_t proto_tcp = 6;
constexpr uint8_t proto_udp = 17;
constexpr std::size_t ipv6_header_size = 40;
constexpr std::size_t udp_header_size = 8;
constexpr uint8_t tcp_fin = 0x01;
constexpr uint8_t tcp_psh = 0x08;
constexpr uint8_t tcp_cwr = 0x80;

inline uint16_t load_le16(const uint8_t* p) noexcept {
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline void store_le16(uint8_t* p, uint16_t v) noexcept {
    p[0] = static_cast<uint8_t>(v);
    p[1] = static_cast<uint8_t>(v >> 8);
}

// What split_super_packet learned from the packet's own headers.
struct layout {
    bool v6;
    uint8_t protocol;
    uint32_t ip_len;  // IP header length (IPv4 with options)
    uint32_t l4_len;  // TCP header (with options) or UDP header length
};

gso_reason parse_layout(uint8_t gso_type, std::span<const uint8_t> p, layout& out) noexcept {
    if (p.empty()) {
        return gso_reason::truncated;
    }
    const unsigned version = p[0] >> 4;
    const uint8_t want = gso_type == vnet::gso_tcpv4 || gso_type == vnet::gso_tcpv6 ? proto_tcp : proto_udp;
    if (version == 4) {
        if (gso_type == vnet::gso_tcpv6) {
            return gso_reason::bad_ip_header;
        }
        if (p.size() < 20) {
            return gso_reason::truncated;
        }
        const uint32_t ihl = (p[0] & 0x0fu) * 4u;
        if (ihl < 20) {
            return gso_reason::bad_ip_header;
        }
        if (p.size() < ihl) {
            return gso_reason::truncated;
        }
        const uint32_t total = load_be16(&p[2]);
        if (total > p.size()) {
            return gso_reason::truncated;
        }
        if (total != p.size() || (load_be16(&p[6]) & 0x3fffu) != 0 || p[9] != want) {
            return gso_reason::bad_ip_header;  // trailing bytes, MF/fragment offset, other protocol
        }
        out = {false, want, ihl, 0};
    } else if (version == 6) {
        if (gso_type == vnet::gso_tcpv4) {
            return gso_reason::bad_ip_header;
        }
        if (p.size() < ipv6_header_size) {
            return gso_reason::truncated;
        }
        const std::size_t total = ipv6_header_size + load_be16(&p[4]);
        if (total > p.size()) {
            return gso_reason::truncated;
        }
        if (total != p.size()) {
            return gso_reason::bad_ip_header;
        }
        if (p[6] != want) {
            return p[6] == proto_tcp || p[6] == proto_udp ? gso_reason::bad_ip_header
                                                          : gso_reason::unsupported_ipv6_extension;
        }
        out = {true, want, ipv6_header_size, 0};
    } else {
        return gso_reason::bad_ip_header;
    }
    if (want == proto_tcp) {
        if (p.size() < out.ip_len + 20) {
            return gso_reason::bad_l4_header;
        }
        const uint32_t doff = (p[out.ip_len + 12] >> 4) * 4u;
        if (doff < 20 || p.size() < out.ip_len + doff) {
            return gso_reason::bad_l4_header;
        }
        out.l4_len = doff;
    } else {
        if (p.size() < out.ip_len + udp_header_size) {
            return gso_reason::bad_l4_header;
        }
        out.l4_len = udp_header_size;
    }
    return gso_reason::ok;
}

}  // namespace

vnet_header parse_vnet_header(std::span<const uint8_t, virtio_net_hdr_size> b) noexcept {
    vnet_header h;
    h.flags = b[0];
    h.gso_type = b[1];
    h.hdr_len = load_le16(&b[2]);
    h.gso_size = load_le16(&b[4]);
    h.csum_start = load_le16(&b[6]);
    h.csum_offset = load_le16(&b[8]);
    return h;
}

void write_vnet_header(const vnet_header& h, std::span<uint8_t, virtio_net_hdr_size> b) noexcept {
    b[0] = h.flags;
    b[1] = h.gso_type;
    store_le16(&b[2], h.hdr_len);
    store_le16(&b[4], h.gso_size);
    store_le16(&b[6], h.csum_start);
    store_le16(&b[8], h.csum_offset);
}

gso_reason complete_checksum(const vnet_header& h, std::span<uint8_t> packet) noexcept {
    if (h.gso_type != vnet::gso_none) {
        return gso_reason::unsupported_gso_type;
    }
    if ((h.flags & vnet::f_needs_csum) == 0) {
        return gso_reason::ok;
    }
    const std::size_t start = h.csum_start;
    const std::size_t field = start + h.csum_offset;
    if (field + 2 > packet.size()) {
        return gso_reason::bad_csum_offset;
    }
    // The field holds the pseudo-header sum, so summing everything from csum_start includes it.
    // Linux (skb_checksum_help) also sends a zero result as 0xffff.
    const uint16_t c = checksum_finish(checksum_add(packet.subspan(start)));
    store_be16(&packet[field], c);
    return gso_reason::ok;
}

gso_split_result split_super_packet_from(const vnet_header& h, std::span<const uint8_t> packet,
                                         uint32_t first_segment, std::span<uint8_t* const> out,
                                         uint32_t segment_capacity, std::span<uint32_t> lengths) noexcept {
    const uint8_t type = h.gso_type & static_cast<uint8_t>(~vnet::gso_ecn);
    if (type != vnet::gso_tcpv4 && type != vnet::gso_tcpv6 && type != vnet::gso_udp_l4) {
        return {gso_reason::unsupported_gso_type, 0, 0};
    }
    if (h.gso_size == 0) {
        return {gso_reason::bad_gso_size, 0, 0};
    }
    layout lay{};
    if (const gso_reason r = parse_layout(type, packet, lay); r != gso_reason::ok) {
        return {r, 0, 0};
    }
    const uint32_t hdrs = lay.ip_len + lay.l4_len;
    const uint32_t payload = static_cast<uint32_t>(packet.size()) - hdrs;
    const uint32_t mss = h.gso_size;
    const uint32_t n = payload <= mss ? 1u : (payload + mss - 1) / mss;
    if (hdrs + std::min(payload, mss) > segment_capacity) {
        return {gso_reason::segment_too_large, 0, 0};
    }
    if (first_segment >= n) {
        return {gso_reason::ok, 0, n};
    }
    const uint32_t room = static_cast<uint32_t>(std::min(out.size(), lengths.size()));
    const uint32_t count = std::min(room, n - first_segment);
    if (count == 0) {
        return {gso_reason::too_many_segments, n - first_segment, n};
    }

    const uint8_t* src = packet.data();
    const std::span<const uint8_t> saddr = lay.v6 ? packet.subspan(8, 16) : packet.subspan(12, 4);
    const std::span<const uint8_t> daddr = lay.v6 ? packet.subspan(24, 16) : packet.subspan(16, 4);
    // The pseudo-header minus its length, shared by all segments.
    const uint64_t pseudo_base = pseudo_header_sum(saddr, daddr, lay.protocol, 0);
    const uint16_t first_id = lay.v6 ? 0 : load_be16(&src[4]);
    const uint32_t first_seq = lay.protocol == proto_tcp ? load_be32(&src[lay.ip_len + 4]) : 0;
    const uint8_t tcp_flags = lay.protocol == proto_tcp ? src[lay.ip_len + 13] : 0;

    for (uint32_t k = 0; k < count; ++k) {
        const uint32_t i = first_segment + k;  // the segment's place in the whole
        const uint32_t off = i * mss;
        const uint32_t len = std::min(mss, payload - std::min(payload, off));
        const uint32_t l4_total = lay.l4_len + len;
        const uint32_t seg_len = hdrs + len;
        uint8_t* d = out[k];
        std::memcpy(d, src, hdrs);
        std::memcpy(d + hdrs, src + hdrs + off, len);

        if (lay.v6) {
            store_be16(&d[4], static_cast<uint16_t>(seg_len - ipv6_header_size));
        } else {
            store_be16(&d[2], static_cast<uint16_t>(seg_len));
            store_be16(&d[4], static_cast<uint16_t>(first_id + i));
            store_be16(&d[10], ipv4_header_checksum({d, lay.ip_len}));
        }
        uint8_t* l4 = d + lay.ip_len;
        uint8_t* csum_at;
        if (lay.protocol == proto_tcp) {
            store_be32(&l4[4], first_seq + off);
            uint8_t flags = tcp_flags;
            if (i + 1 < n) {
                flags &= static_cast<uint8_t>(~(tcp_fin | tcp_psh));
            }
            if (i > 0) {
                flags &= static_cast<uint8_t>(~tcp_cwr);
            }
            l4[13] = flags;
            csum_at = &l4[16];
        } else {
            store_be16(&l4[4], static_cast<uint16_t>(l4_total));
            csum_at = &l4[6];
        }
        csum_at[0] = 0;
        csum_at[1] = 0;
        uint64_t sum = pseudo_base + (l4_total >> 16) + (l4_total & 0xffffu);
        sum = checksum_add({l4, lay.l4_len}, sum);  // l4_len is even (8 or a multiple of 4)
        sum = checksum_add({d + hdrs, len}, sum);
        store_be16(csum_at, checksum_finish(sum));
        lengths[k] = seg_len;
    }
    return {gso_reason::ok, count, n};
}

gso_split_result split_super_packet(const vnet_header& h, std::span<const uint8_t> packet,
                                    std::span<uint8_t* const> out, uint32_t segment_capacity,
                                    std::span<uint32_t> lengths) noexcept {
    // Size the output first so that a refusal writes nothing: the partial split would start.
    const gso_split_result need = split_super_packet_from(h, packet, ~0u, {}, segment_capacity, {});
    if (need.reason != gso_reason::ok) {
        return need;
    }
    if (need.total > out.size() || need.total > lengths.size()) {
        return {gso_reason::too_many_segments, need.total, need.total};
    }
    return split_super_packet_from(h, packet, 0, out, segment_capacity, lengths);
}

}  // namespace meshfwd::dataplane
