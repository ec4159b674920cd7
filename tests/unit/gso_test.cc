// TUN offload input (dataplane/gso.h): virtio-net header codec, NEEDS_CSUM completion, and
// TSO/USO splitting of real TCPv4/TCPv6/UDPv4/UDPv6 super-packets built as the kernel hands them
// over (pseudo-header sum in the L4 checksum field). Every segment is checked field by field and
// its checksums with a naive reference; every truncation and bad header must be refused by reason.
#include "dataplane/gso.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace meshfwd::dataplane {
namespace {

constexpr uint8_t tcp_fin = 0x01, tcp_psh = 0x08, tcp_ack = 0x10, tcp_ece = 0x40, tcp_cwr = 0x80;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t be32(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]; }
void put16(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
    put16(p, v >> 16);
    put16(p + 2, v);
}

// Naive one's complement sum of big-endian words, folded (RFC 1071), independent of checksum.cc.
uint32_t naive_sum(const uint8_t* b, std::size_t n, uint32_t s = 0) {
    uint64_t acc = s;
    for (std::size_t i = 0; i < n; i += 2) {
        acc += (uint64_t{b[i]} << 8) | (i + 1 < n ? b[i + 1] : 0u);
    }
    while (acc >> 16) {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    return static_cast<uint32_t>(acc);
}

struct spec {
    bool v6 = false;
    uint8_t proto = 6;
    uint16_t id = 0x1234;
    bool df = true;
    uint32_t seq = 0xfffff000;  // wraps during a 10 KB split
    uint32_t ack = 77;
    uint8_t flags = tcp_ack;
    std::vector<uint8_t> ip_options;   // IPv4 only, multiple of 4
    std::vector<uint8_t> tcp_options;  // multiple of 4
};

struct layout {
    std::size_t ip_len, l4_len;
};

layout layout_of(const spec& s) {
    return {s.v6 ? 40 : 20 + s.ip_options.size(), s.proto == 6 ? 20 + s.tcp_options.size() : 8};
}

// The pseudo-header as bytes (RFC 768/793, RFC 8200 8.1).
std::vector<uint8_t> pseudo(const uint8_t* pkt, bool v6, uint8_t proto, uint32_t l4_len) {
    std::vector<uint8_t> p;
    if (v6) {
        p.assign(pkt + 8, pkt + 40);
        p.insert(p.end(), {static_cast<uint8_t>(l4_len >> 24), static_cast<uint8_t>(l4_len >> 16),
                           static_cast<uint8_t>(l4_len >> 8), static_cast<uint8_t>(l4_len), 0, 0, 0, proto});
    } else {
        p.assign(pkt + 12, pkt + 20);
        p.insert(p.end(), {0, proto, static_cast<uint8_t>(l4_len >> 8), static_cast<uint8_t>(l4_len)});
    }
    return p;
}

// A super-packet as tun gives it: full lengths, L4 checksum field = folded pseudo-header sum.
std::vector<uint8_t> build(const spec& s, const std::vector<uint8_t>& payload) {
    const layout l = layout_of(s);
    std::vector<uint8_t> p(l.ip_len + l.l4_len + payload.size());
    if (s.v6) {
        p[0] = 0x60;
        put16(&p[4], static_cast<uint32_t>(p.size() - 40));
        p[6] = s.proto;
        p[7] = 64;
        for (int i = 0; i < 16; ++i) {
            p[8 + i] = static_cast<uint8_t>(0xfd + i);
            p[24 + i] = static_cast<uint8_t>(0x20 + 3 * i);
        }
    } else {
        p[0] = static_cast<uint8_t>(0x40 | (l.ip_len / 4));
        put16(&p[2], static_cast<uint32_t>(p.size()));
        put16(&p[4], s.id);
        p[6] = s.df ? 0x40 : 0;
        p[8] = 64;
        p[9] = s.proto;
        const uint8_t a[8] = {10, 1, 2, 3, 192, 168, 9, 250};
        std::memcpy(&p[12], a, 8);
        std::copy(s.ip_options.begin(), s.ip_options.end(), p.begin() + 20);
        put16(&p[10], static_cast<uint16_t>(~naive_sum(p.data(), l.ip_len)));
    }
    uint8_t* t = &p[l.ip_len];
    put16(t, 40000);
    put16(t + 2, 443);
    std::size_t csum_at;
    if (s.proto == 6) {
        put32(t + 4, s.seq);
        put32(t + 8, s.ack);
        t[12] = static_cast<uint8_t>((l.l4_len / 4) << 4);
        t[13] = s.flags;
        put16(t + 14, 501);
        std::copy(s.tcp_options.begin(), s.tcp_options.end(), t + 20);
        csum_at = 16;
    } else {
        put16(t + 4, static_cast<uint32_t>(l.l4_len + payload.size()));
        csum_at = 6;
    }
    std::copy(payload.begin(), payload.end(), p.begin() + static_cast<long>(l.ip_len + l.l4_len));
    const auto ph = pseudo(p.data(), s.v6, s.proto, static_cast<uint32_t>(p.size() - l.ip_len));
    put16(t + csum_at, naive_sum(ph.data(), ph.size()));
    return p;
}

vnet_header gso_header(const spec& s, uint16_t gso_size) {
    const layout l = layout_of(s);
    vnet_header h;
    h.flags = vnet::f_needs_csum;
    h.gso_type = s.proto == 17 ? vnet::gso_udp_l4 : (s.v6 ? vnet::gso_tcpv6 : vnet::gso_tcpv4);
    h.hdr_len = static_cast<uint16_t>(l.ip_len + l.l4_len);
    h.gso_size = gso_size;
    h.csum_start = static_cast<uint16_t>(l.ip_len);
    h.csum_offset = s.proto == 6 ? 16 : 6;
    return h;
}

std::vector<uint8_t> random_payload(std::size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> b(n);
    for (auto& x : b) {
        x = static_cast<uint8_t>(rng());
    }
    return b;
}

// Output buffers for split_super_packet.
struct outputs {
    static constexpr uint32_t capacity = 2048;
    std::vector<std::vector<uint8_t>> bufs;
    std::vector<uint8_t*> ptrs;
    std::vector<uint32_t> lengths;
    explicit outputs(std::size_t n, uint32_t cap = capacity) : bufs(n, std::vector<uint8_t>(cap, 0xee)), lengths(n) {
        for (auto& b : bufs) {
            ptrs.push_back(b.data());
        }
    }
};

// Splits and checks every segment against the original; returns the segment count.
uint32_t split_and_check(const spec& s, const std::vector<uint8_t>& payload, uint16_t gso_size) {
    const auto pkt = build(s, payload);
    const layout l = layout_of(s);
    const std::size_t hdrs = l.ip_len + l.l4_len;
    const uint32_t expect_n = payload.size() <= gso_size ? 1 : static_cast<uint32_t>((payload.size() + gso_size - 1) / gso_size);
    outputs o(expect_n + 3);
    const auto r = split_super_packet(gso_header(s, gso_size), pkt, o.ptrs, outputs::capacity, o.lengths);
    EXPECT_EQ(r.reason, gso_reason::ok) << describe(r.reason);
    EXPECT_EQ(r.segments, expect_n);
    if (r.reason != gso_reason::ok) {
        return 0;
    }
    std::vector<uint8_t> joined;
    for (uint32_t i = 0; i < r.segments; ++i) {
        SCOPED_TRACE(i);
        const uint8_t* d = o.ptrs[i];
        const uint32_t len = o.lengths[i];
        const std::size_t want_payload = std::min<std::size_t>(gso_size, payload.size() - std::min<std::size_t>(payload.size(), std::size_t{i} * gso_size));
        EXPECT_EQ(len, hdrs + want_payload);
        // Everything in the headers but the fixed fields is copied.
        if (s.v6) {
            EXPECT_EQ(be16(d + 4), len - 40);
            EXPECT_EQ(std::memcmp(d, pkt.data(), 4), 0);
            EXPECT_EQ(std::memcmp(d + 6, pkt.data() + 6, 34), 0);
        } else {
            EXPECT_EQ(be16(d + 2), len);
            EXPECT_EQ(be16(d + 4), static_cast<uint16_t>(s.id + i));
            EXPECT_EQ(naive_sum(d, l.ip_len), 0xffffu) << "IPv4 header checksum";
            EXPECT_EQ(std::memcmp(d + 12, pkt.data() + 12, l.ip_len - 12), 0);  // addresses, options
            EXPECT_EQ(d[1], pkt[1]);
            EXPECT_EQ(std::memcmp(d + 6, pkt.data() + 6, 4), 0);
        }
        const uint8_t* t = d + l.ip_len;
        EXPECT_EQ(std::memcmp(t, pkt.data() + l.ip_len, 4), 0);  // ports
        if (s.proto == 6) {
            EXPECT_EQ(be32(t + 4), s.seq + i * gso_size);
            EXPECT_EQ(be32(t + 8), s.ack);
            uint8_t want = s.flags;
            if (i + 1 < r.segments) {
                want &= static_cast<uint8_t>(~(tcp_fin | tcp_psh));
            }
            if (i > 0) {
                want &= static_cast<uint8_t>(~tcp_cwr);
            }
            EXPECT_EQ(t[13], want);
            EXPECT_EQ(std::memcmp(t + 12, pkt.data() + l.ip_len + 12, 1), 0);
            EXPECT_EQ(std::memcmp(t + 14, pkt.data() + l.ip_len + 14, 2), 0);  // window
            EXPECT_EQ(std::memcmp(t + 18, pkt.data() + l.ip_len + 18, l.l4_len - 18), 0);  // urg, options
        } else {
            EXPECT_EQ(be16(t + 4), len - l.ip_len);
            EXPECT_NE(be16(t + 6), 0) << "UDP checksum 0 means none";
        }
        const auto ph = pseudo(d, s.v6, s.proto, static_cast<uint32_t>(len - l.ip_len));
        EXPECT_EQ(naive_sum(t, len - l.ip_len, naive_sum(ph.data(), ph.size())), 0xffffu) << "L4 checksum";
        joined.insert(joined.end(), d + hdrs, d + len);
    }
    EXPECT_EQ(joined, payload);
    return r.segments;
}

TEST(Gso, VnetHeaderCodec) {
    const std::array<uint8_t, 10> wire = {0x01, 0x81, 0x34, 0x00, 0x78, 0x05, 0x14, 0x00, 0x10, 0x00};
    const vnet_header h = parse_vnet_header(wire);
    EXPECT_EQ(h.flags, vnet::f_needs_csum);
    EXPECT_EQ(h.gso_type, vnet::gso_tcpv4 | vnet::gso_ecn);
    EXPECT_EQ(h.hdr_len, 52);
    EXPECT_EQ(h.gso_size, 1400);
    EXPECT_EQ(h.csum_start, 20);
    EXPECT_EQ(h.csum_offset, 16);
    std::array<uint8_t, 10> back{};
    write_vnet_header(h, back);
    EXPECT_EQ(back, wire);
}

TEST(Gso, TcpV4) {
    spec s;
    s.flags = tcp_ack | tcp_psh | tcp_fin | tcp_cwr | tcp_ece;
    EXPECT_EQ(split_and_check(s, random_payload(10000, 1), 1400), 8u);
}

TEST(Gso, TcpV4WithOptions) {
    spec s;
    s.ip_options = {0x01, 0x01, 0x01, 0x00};  // NOP NOP NOP EOL
    s.tcp_options = {0x01, 0x01, 0x08, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8};  // NOP NOP timestamps
    s.id = 0xfffe;  // ids wrap
    EXPECT_EQ(split_and_check(s, random_payload(10000, 2), 1388), 8u);
}

TEST(Gso, TcpV6) {
    spec s;
    s.v6 = true;
    s.flags = tcp_ack | tcp_psh;
    s.tcp_options = {0x01, 0x01, 0x08, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8};
    EXPECT_EQ(split_and_check(s, random_payload(10000, 3), 1400), 8u);
    EXPECT_EQ(split_and_check(s, random_payload(1399, 4), 1400), 1u);
    EXPECT_EQ(split_and_check(s, random_payload(2800, 4), 1400), 2u);
}

TEST(Gso, UdpV4AndV6) {
    spec s;
    s.proto = 17;
    EXPECT_EQ(split_and_check(s, random_payload(10000, 5), 1400), 8u);
    EXPECT_EQ(split_and_check(s, random_payload(10001, 6), 1000), 11u);
    s.v6 = true;
    EXPECT_EQ(split_and_check(s, random_payload(10000, 7), 1400), 8u);
}

TEST(Gso, LargestSuperPacket) {
    spec s;
    EXPECT_EQ(split_and_check(s, random_payload(65535 - 40, 8), 1448), 46u);
    s.v6 = true;
    EXPECT_EQ(split_and_check(s, random_payload(65535 - 20, 9), 1428), 46u);
}

// A small MSS gives hundreds of segments: split in parts of a few output buffers (as the worker
// does with 128), each part must equal the same segments of a whole split, byte for byte.
void split_in_parts_and_check(const spec& s, std::size_t payload_size, uint16_t gso_size, uint32_t part,
                              uint32_t expect_n) {
    SCOPED_TRACE(testing::Message() << "v6 " << s.v6 << " proto " << int(s.proto) << " part " << part);
    const auto payload = random_payload(payload_size, gso_size);
    EXPECT_EQ(split_and_check(s, payload, gso_size), expect_n);
    const auto pkt = build(s, payload);
    const vnet_header h = gso_header(s, gso_size);
    outputs whole(expect_n);
    const auto rw = split_super_packet(h, pkt, whole.ptrs, outputs::capacity, whole.lengths);
    ASSERT_EQ(rw.reason, gso_reason::ok);
    ASSERT_EQ(rw.segments, expect_n);
    outputs o(part);
    uint32_t done = 0;
    for (uint32_t calls = 0; done < expect_n; ++calls) {
        ASSERT_LT(calls, expect_n) << "no progress";
        for (auto& b : o.bufs) {
            std::fill(b.begin(), b.end(), 0xee);
        }
        const auto r = split_super_packet_from(h, pkt, done, o.ptrs, outputs::capacity, o.lengths);
        ASSERT_EQ(r.reason, gso_reason::ok) << describe(r.reason);
        ASSERT_EQ(r.total, expect_n);
        ASSERT_EQ(r.segments, std::min(part, expect_n - done));
        for (uint32_t k = 0; k < r.segments; ++k) {
            ASSERT_EQ(o.lengths[k], whole.lengths[done + k]) << "segment " << done + k;
            ASSERT_EQ(std::memcmp(o.ptrs[k], whole.ptrs[done + k], o.lengths[k]), 0) << "segment " << done + k;
        }
        done += r.segments;
    }
    EXPECT_EQ(done, expect_n);
    // Past the end: nothing more, and still the total.
    const auto end = split_super_packet_from(h, pkt, expect_n, o.ptrs, outputs::capacity, o.lengths);
    EXPECT_EQ(end.reason, gso_reason::ok);
    EXPECT_EQ(end.segments, 0u);
    EXPECT_EQ(end.total, expect_n);
    // No buffers with segments left: refused, not an endless loop of zero-segment parts.
    EXPECT_EQ(split_super_packet_from(h, pkt, 0, {}, outputs::capacity, {}).reason, gso_reason::too_many_segments);
}

TEST(Gso, HundredsOfSegmentsSplitInParts) {
    spec s;
    s.tcp_options = {0x01, 0x01, 0x08, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8};
    s.flags = tcp_ack | tcp_psh | tcp_cwr;
    // 200 segments: more than the 128 the worker splits at once (a 64 KiB super-packet, MSS 325).
    split_in_parts_and_check(s, 65000, 325, 128, 200);
    // 500 segments of 130 bytes, in parts of 128 and of 7 (parts that end mid-way everywhere).
    split_in_parts_and_check(s, 65000, 130, 128, 500);
    split_in_parts_and_check(s, 65000, 130, 7, 500);
    s.v6 = true;
    split_in_parts_and_check(s, 65000, 130, 128, 500);
    s.proto = 17;
    split_in_parts_and_check(s, 65001, 130, 128, 501);
    s.v6 = false;
    split_in_parts_and_check(s, 64999, 325, 128, 200);
}

TEST(Gso, SmallAndEmptyPayloadGiveOneSegment) {
    spec s;
    EXPECT_EQ(split_and_check(s, random_payload(100, 10), 1400), 1u);
    EXPECT_EQ(split_and_check(s, {}, 1400), 1u);
    s.proto = 17;
    s.v6 = true;
    EXPECT_EQ(split_and_check(s, {}, 1400), 1u);
}

TEST(Gso, EcnFlagAccepted) {
    spec s;
    s.flags = tcp_ack | tcp_cwr;
    const auto pkt = build(s, random_payload(3000, 11));
    vnet_header h = gso_header(s, 1000);
    h.gso_type |= vnet::gso_ecn;
    outputs o(4);
    const auto r = split_super_packet(h, pkt, o.ptrs, outputs::capacity, o.lengths);
    ASSERT_EQ(r.reason, gso_reason::ok);
    EXPECT_EQ(r.segments, 3u);
    EXPECT_EQ(o.ptrs[0][20 + 13], tcp_ack | tcp_cwr);
    EXPECT_EQ(o.ptrs[1][20 + 13], tcp_ack);
}

TEST(Gso, HeaderFieldsFromTunAreNotTrusted) {
    spec s;
    const auto pkt = build(s, random_payload(5000, 12));
    vnet_header h = gso_header(s, 1400);
    h.hdr_len = 9999;  // e.g. the whole first packet on the FORWARD path
    h.csum_start = 3;
    h.csum_offset = 60000;
    h.flags = 0;
    outputs o(8);
    const auto r = split_super_packet(h, pkt, o.ptrs, outputs::capacity, o.lengths);
    ASSERT_EQ(r.reason, gso_reason::ok);
    EXPECT_EQ(r.segments, 4u);
    EXPECT_EQ(o.lengths[0], 1440u);
}

TEST(Gso, EveryTruncationRefused) {
    for (const bool v6 : {false, true}) {
        for (const uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
            spec s;
            s.v6 = v6;
            s.proto = proto;
            s.tcp_options = {1, 1, 1, 1};
            const auto pkt = build(s, random_payload(3000, 13));
            const vnet_header h = gso_header(s, 1000);
            outputs o(8);
            for (std::size_t cut = 0; cut < pkt.size(); ++cut) {
                const std::vector<uint8_t> shorter(pkt.begin(), pkt.begin() + static_cast<long>(cut));
                const auto r = split_super_packet(h, shorter, o.ptrs, outputs::capacity, o.lengths);
                ASSERT_NE(r.reason, gso_reason::ok) << "v6 " << v6 << " proto " << int(proto) << " cut " << cut;
                ASSERT_EQ(r.segments, 0u);
            }
            std::vector<uint8_t> longer = pkt;
            longer.push_back(0);
            EXPECT_EQ(split_super_packet(h, longer, o.ptrs, outputs::capacity, o.lengths).reason,
                      gso_reason::bad_ip_header);
        }
    }
}

TEST(Gso, BadGsoSizeAndTypes) {
    spec s;
    const auto pkt = build(s, random_payload(3000, 14));
    outputs o(8);
    vnet_header h = gso_header(s, 0);
    EXPECT_EQ(split_super_packet(h, pkt, o.ptrs, outputs::capacity, o.lengths).reason, gso_reason::bad_gso_size);
    for (const uint8_t type : {vnet::gso_none, vnet::gso_udp, uint8_t{2}, uint8_t{6}, uint8_t{0x7f}, uint8_t{0xff}}) {
        h = gso_header(s, 1000);
        h.gso_type = type;
        EXPECT_EQ(split_super_packet(h, pkt, o.ptrs, outputs::capacity, o.lengths).reason,
                  gso_reason::unsupported_gso_type)
            << int(type);
    }
    // Type and packet disagree.
    h = gso_header(s, 1000);
    h.gso_type = vnet::gso_tcpv6;
    EXPECT_EQ(split_super_packet(h, pkt, o.ptrs, outputs::capacity, o.lengths).reason, gso_reason::bad_ip_header);
    h.gso_type = vnet::gso_udp_l4;
    EXPECT_EQ(split_super_packet(h, pkt, o.ptrs, outputs::capacity, o.lengths).reason, gso_reason::bad_ip_header);
}

TEST(Gso, BadIpHeaders) {
    spec s;
    const vnet_header h = gso_header(s, 1000);
    outputs o(8);
    const auto good = build(s, random_payload(3000, 15));
    auto split = [&](const std::vector<uint8_t>& p) {
        return split_super_packet(h, p, o.ptrs, outputs::capacity, o.lengths).reason;
    };
    auto p = good;
    p[6] |= 0x20;  // MF
    EXPECT_EQ(split(p), gso_reason::bad_ip_header);
    p = good;
    p[7] = 1;  // fragment offset
    EXPECT_EQ(split(p), gso_reason::bad_ip_header);
    p = good;
    p[0] = 0x44;  // IHL 16 bytes
    EXPECT_EQ(split(p), gso_reason::bad_ip_header);
    p = good;
    p[0] = 0x55;
    EXPECT_EQ(split(p), gso_reason::bad_ip_header);
    p = good;
    p[20 + 12] = 0x40;  // TCP data offset 16 bytes
    EXPECT_EQ(split(p), gso_reason::bad_l4_header);
    p = good;
    put16(&p[2], 3000);  // total length short of the packet
    EXPECT_EQ(split(p), gso_reason::bad_ip_header);

    spec s6;
    s6.v6 = true;
    auto q = build(s6, random_payload(3000, 16));
    q[6] = 0;  // hop-by-hop options header
    EXPECT_EQ(split_super_packet(gso_header(s6, 1000), q, o.ptrs, outputs::capacity, o.lengths).reason,
              gso_reason::unsupported_ipv6_extension);
    q[6] = 44;  // fragment header
    EXPECT_EQ(split_super_packet(gso_header(s6, 1000), q, o.ptrs, outputs::capacity, o.lengths).reason,
              gso_reason::unsupported_ipv6_extension);
}

TEST(Gso, RefusesWhenOutputTooSmall) {
    spec s;
    const auto pkt = build(s, random_payload(10000, 17));
    const vnet_header h = gso_header(s, 1400);
    outputs o(7);  // needs 8
    auto r = split_super_packet(h, pkt, o.ptrs, outputs::capacity, o.lengths);
    EXPECT_EQ(r.reason, gso_reason::too_many_segments);
    EXPECT_EQ(r.segments, 8u);
    for (const auto& b : o.bufs) {
        EXPECT_EQ(b[0], 0xee) << "nothing written when refused";
    }
    outputs o8(8);
    r = split_super_packet(h, pkt, o8.ptrs, outputs::capacity, std::span<uint32_t>(o8.lengths).first(7));
    EXPECT_EQ(r.reason, gso_reason::too_many_segments);
    // Capacity: headers (40) + 1400 must fit.
    r = split_super_packet(h, pkt, o8.ptrs, 1439, o8.lengths);
    EXPECT_EQ(r.reason, gso_reason::segment_too_large);
    EXPECT_EQ(r.segments, 0u);
    EXPECT_EQ(o8.bufs[0][0], 0xee);
    r = split_super_packet(h, pkt, o8.ptrs, 1440, o8.lengths);
    EXPECT_EQ(r.reason, gso_reason::ok);
    r = split_super_packet(h, pkt, {}, 1440, {});
    EXPECT_EQ(r.reason, gso_reason::too_many_segments);
}

TEST(Gso, CompleteChecksumTcpAndUdp) {
    for (const uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
        for (const bool v6 : {false, true}) {
            spec s;
            s.proto = proto;
            s.v6 = v6;
            auto pkt = build(s, random_payload(999, 18));  // odd length
            vnet_header h = gso_header(s, 0);
            h.gso_type = vnet::gso_none;
            ASSERT_EQ(complete_checksum(h, pkt), gso_reason::ok);
            const layout l = layout_of(s);
            const auto ph = pseudo(pkt.data(), v6, proto, static_cast<uint32_t>(pkt.size() - l.ip_len));
            EXPECT_EQ(naive_sum(pkt.data() + l.ip_len, pkt.size() - l.ip_len, naive_sum(ph.data(), ph.size())), 0xffffu);
        }
    }
}

TEST(Gso, CompleteChecksumZeroIsSentAsOnes) {
    spec s;
    s.proto = 17;
    auto pkt = build(s, std::vector<uint8_t>(64, 0));
    // Pick the last payload word so that the whole sum is 0xffff: the checksum would be 0.
    const uint32_t partial = naive_sum(pkt.data() + 20, pkt.size() - 20);
    put16(&pkt[pkt.size() - 2], 0xffff - partial);
    vnet_header h = gso_header(s, 0);
    h.gso_type = vnet::gso_none;
    ASSERT_EQ(complete_checksum(h, pkt), gso_reason::ok);
    EXPECT_EQ(be16(&pkt[26]), 0xffff);
}

TEST(Gso, CompleteChecksumBounds) {
    std::vector<uint8_t> pkt(60, 0x11);
    const auto orig = pkt;
    vnet_header h;
    EXPECT_EQ(complete_checksum(h, pkt), gso_reason::ok);  // no NEEDS_CSUM: nothing to do
    EXPECT_EQ(pkt, orig);
    h.flags = vnet::f_needs_csum;
    h.csum_start = 40;
    h.csum_offset = 18;  // field at 58..59: last two bytes
    EXPECT_EQ(complete_checksum(h, pkt), gso_reason::ok);
    EXPECT_NE(pkt, orig);
    h.csum_offset = 19;
    EXPECT_EQ(complete_checksum(h, pkt), gso_reason::bad_csum_offset);
    h.csum_start = 61;
    h.csum_offset = 0;
    EXPECT_EQ(complete_checksum(h, pkt), gso_reason::bad_csum_offset);
    h.csum_start = 0xffff;
    h.csum_offset = 0xffff;
    EXPECT_EQ(complete_checksum(h, pkt), gso_reason::bad_csum_offset);
    EXPECT_EQ(complete_checksum(h, {}), gso_reason::bad_csum_offset);
    h.gso_type = vnet::gso_tcpv4;
    EXPECT_EQ(complete_checksum(h, pkt), gso_reason::unsupported_gso_type);
}

TEST(Gso, RandomBytesNeverCrash) {
    std::mt19937 rng(19);
    outputs o(64, 600);
    for (int i = 0; i < 20000; ++i) {
        std::vector<uint8_t> p(rng() % 200);
        for (auto& b : p) {
            b = static_cast<uint8_t>(rng());
        }
        if (!p.empty() && (i & 1)) {
            p[0] = static_cast<uint8_t>((i & 2) ? 0x45 : 0x60);
        }
        vnet_header h;
        h.gso_type = static_cast<uint8_t>(rng() % 6);
        h.gso_size = static_cast<uint16_t>(rng() % 64);
        h.flags = static_cast<uint8_t>(rng());
        h.csum_start = static_cast<uint16_t>(rng() % 256);
        h.csum_offset = static_cast<uint16_t>(rng() % 32);
        const auto r = split_super_packet(h, p, o.ptrs, 600, o.lengths);
        if (r.reason == gso_reason::ok) {
            ASSERT_GE(r.segments, 1u);
            ASSERT_LE(r.segments, 64u);
        }
        (void)complete_checksum(h, p);
    }
}

}  // namespace
}  // namespace meshfwd::dataplane
