// TCP and UDP coalescing for TUN writes (dataplane/gro.h). Each write is flattened to the bytes
// the kernel would read and split back (TCP with split_super_packet, UDP the way the kernel's
// __udp_gso_segment does it: the checksum seed adjusted per segment, then completed); the
// packets that come out must be the packets that went in, byte for byte, each flow in order.
// Covers one flow, interleaved flows, seq gaps, ack changes, FIN/SYN, IPv6, short last
// segments, PSH, the 64 KiB limit, the segment cap, non-TCP packets, IP id rules, padding, UDP
// (sizes, flows, ids, lengths, ICMP), and randomized round trips.
#include "dataplane/gro.h"

#include "dataplane/gso.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <span>
#include <vector>

namespace meshfwd::dataplane {
namespace {

constexpr uint8_t tcp_fin = 0x01, tcp_syn = 0x02, tcp_psh = 0x08, tcp_ack = 0x10;

void put16(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
    put16(p, v >> 16);
    put16(p + 2, v);
}
uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Naive RFC 1071 sum, independent of checksum.cc.
uint32_t naive_sum(const uint8_t* b, std::size_t n, uint64_t acc = 0) {
    for (std::size_t i = 0; i < n; i += 2) {
        acc += (uint64_t{b[i]} << 8) | (i + 1 < n ? b[i + 1] : 0u);
    }
    while (acc >> 16) {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    return static_cast<uint32_t>(acc);
}

struct tcp_spec {
    bool v6 = false;
    uint8_t flow = 0;  // varies the source port and address
    uint32_t seq = 1000;
    uint32_t ack = 5;
    uint8_t flags = tcp_ack;
    uint16_t id = 7;
    bool df = true;
    uint8_t ttl = 64;
    uint8_t proto = 6;
    std::vector<uint8_t> tcp_options;
};

// A complete, valid packet (checksums filled as a sender would; 0 sent as 0xffff like Linux GSO).
std::vector<uint8_t> make_packet(const tcp_spec& s, std::size_t payload_len, uint32_t fill) {
    const std::size_t ip_len = s.v6 ? 40 : 20;
    const std::size_t l4_len = s.proto == 6 ? 20 + s.tcp_options.size() : 8;
    std::vector<uint8_t> p(ip_len + l4_len + payload_len);
    if (s.v6) {
        p[0] = 0x60;
        p[1] = 0x0a;  // traffic class / flow label bits
        p[3] = 0x42;
        put16(&p[4], static_cast<uint32_t>(p.size() - 40));
        p[6] = s.proto;
        p[7] = s.ttl;
        for (int i = 0; i < 16; ++i) {
            p[8 + i] = static_cast<uint8_t>(0xfd + i + s.flow);
            p[24 + i] = static_cast<uint8_t>(0x30 + i);
        }
    } else {
        p[0] = 0x45;
        put16(&p[2], static_cast<uint32_t>(p.size()));
        put16(&p[4], s.id);
        p[6] = s.df ? 0x40 : 0;
        p[8] = s.ttl;
        p[9] = s.proto;
        const uint8_t a[8] = {10, 7, 0, static_cast<uint8_t>(1 + s.flow), 10, 7, 0, 200};
        std::memcpy(&p[12], a, 8);
        put16(&p[10], static_cast<uint16_t>(~naive_sum(p.data(), 20)));
    }
    uint8_t* t = &p[ip_len];
    put16(t, 30000u + s.flow);
    put16(t + 2, 5201);
    for (std::size_t i = 0; i < payload_len; ++i) {
        t[l4_len + i] = static_cast<uint8_t>(fill * 131 + i * 7);
    }
    std::size_t csum_at = 6;
    if (s.proto == 6) {
        put32(t + 4, s.seq);
        put32(t + 8, s.ack);
        t[12] = static_cast<uint8_t>((l4_len / 4) << 4);
        t[13] = s.flags;
        put16(t + 14, 2000);
        std::copy(s.tcp_options.begin(), s.tcp_options.end(), t + 20);
        csum_at = 16;
    } else if (s.proto == 17) {
        put16(t + 4, static_cast<uint32_t>(l4_len + payload_len));
    }
    const uint32_t l4_total = static_cast<uint32_t>(l4_len + payload_len);
    uint64_t acc = s.proto + (l4_total >> 16) + (l4_total & 0xffff);
    acc = s.v6 ? naive_sum(&p[8], 32, acc) : naive_sum(&p[12], 8, acc);
    const uint16_t c = static_cast<uint16_t>(~naive_sum(t, l4_total, acc));
    put16(t + csum_at, c == 0 ? 0xffff : c);
    return p;
}

// Packet buffers with the 10 bytes of headroom the coalescer writes into.
struct burst_buf {
    std::vector<std::vector<uint8_t>> storage;
    std::vector<std::vector<uint8_t>> originals;
    std::vector<gro_packet> packets;

    void add(const std::vector<uint8_t>& pkt, std::size_t padding = 0) {
        originals.push_back(pkt);
        std::vector<uint8_t> b(virtio_net_hdr_size + pkt.size() + padding, 0xcc);
        std::copy(pkt.begin(), pkt.end(), b.begin() + virtio_net_hdr_size);
        std::fill(b.end() - static_cast<long>(padding), b.end(), 0);
        storage.push_back(std::move(b));
    }
    std::span<const gro_packet> span() {
        packets.clear();
        for (std::size_t i = 0; i < storage.size(); ++i) {
            packets.push_back({storage[i].data() + virtio_net_hdr_size,
                               static_cast<uint32_t>(storage[i].size() - virtio_net_hdr_size)});
        }
        return packets;
    }
};

std::vector<uint8_t> flatten(const tcp_coalescer::tun_write& w) {
    std::vector<uint8_t> bytes;
    for (uint32_t i = 0; i < w.iov_count; ++i) {
        const auto* b = static_cast<const uint8_t*>(w.iov[i].iov_base);
        bytes.insert(bytes.end(), b, b + w.iov[i].iov_len);
    }
    EXPECT_EQ(bytes.size(), w.total_bytes);
    return bytes;
}

// One's complement 16-bit add (csum16_add).
uint16_t add16(uint32_t a, uint32_t b) {
    uint32_t s = a + b;
    return static_cast<uint16_t>((s & 0xffff) + (s >> 16));
}

// The datagrams the kernel makes of a USO write (inet_gso_segment + __udp_gso_segment, then
// the checksum completed as for CHECKSUM_PARTIAL): IP header copied with its length fixed
// (IPv4: id first + i, header checksum), UDP length per segment, and the checksum field's
// seed adjusted from the whole length to the segment's (csum16_add(csum16_sub(check, len),
// newlen)) before summing from csum_start.
std::vector<std::vector<uint8_t>> kernel_uso_segment(const vnet_header& h, std::span<const uint8_t> pkt,
                                                     uint32_t iov_count) {
    const bool v6 = (pkt[0] >> 4) == 6;
    const std::size_t ip_len = v6 ? 40 : 20;
    EXPECT_EQ(h.csum_start, ip_len);
    EXPECT_EQ(h.csum_offset, 6);
    EXPECT_EQ(h.hdr_len, ip_len + 8);
    const uint32_t l4 = static_cast<uint32_t>(pkt.size() - ip_len);
    EXPECT_EQ(be16(&pkt[ip_len + 4]), l4) << "UDP length of the whole";
    // The checksum field holds the folded pseudo-header sum over the whole UDP length.
    const uint64_t ph = 17 + (l4 >> 16) + (l4 & 0xffff);
    const uint32_t seed = v6 ? naive_sum(&pkt[8], 32, ph) : naive_sum(&pkt[12], 8, ph);
    EXPECT_EQ(be16(&pkt[ip_len + 6]), seed);
    EXPECT_GT(h.gso_size, 0);
    std::vector<std::vector<uint8_t>> out;
    if (h.gso_size == 0) {
        return out;
    }
    const std::size_t payload = pkt.size() - ip_len - 8;
    EXPECT_GT(payload, h.gso_size) << "a USO write has at least two segments";
    for (std::size_t off = 0, i = 0; off < payload; off += h.gso_size, ++i) {
        const std::size_t len = std::min<std::size_t>(h.gso_size, payload - off);
        std::vector<uint8_t> seg(pkt.begin(), pkt.begin() + static_cast<long>(ip_len + 8));
        seg.insert(seg.end(), pkt.begin() + static_cast<long>(ip_len + 8 + off),
                   pkt.begin() + static_cast<long>(ip_len + 8 + off + len));
        if (v6) {
            put16(&seg[4], static_cast<uint32_t>(seg.size() - 40));
        } else {
            put16(&seg[2], static_cast<uint32_t>(seg.size()));
            put16(&seg[4], be16(&pkt[4]) + static_cast<uint32_t>(i));
            put16(&seg[10], 0);
            put16(&seg[10], static_cast<uint16_t>(~naive_sum(seg.data(), 20)));
        }
        const uint32_t newlen = static_cast<uint32_t>(8 + len);
        put16(&seg[ip_len + 4], newlen);
        put16(&seg[ip_len + 6], add16(add16(seed, static_cast<uint16_t>(~l4)), newlen));
        vnet_header partial;
        partial.flags = vnet::f_needs_csum;
        partial.csum_start = static_cast<uint16_t>(ip_len);
        partial.csum_offset = 6;
        EXPECT_EQ(complete_checksum(partial, seg), gso_reason::ok);
        out.push_back(std::move(seg));
    }
    EXPECT_EQ(out.size(), iov_count) << "one segment per merged datagram";
    return out;
}

// What the kernel would see from one write, as individual packets.
std::vector<std::vector<uint8_t>> unpack(const tcp_coalescer::tun_write& w, vnet_header* header_out = nullptr) {
    const auto bytes = flatten(w);
    EXPECT_GE(bytes.size(), virtio_net_hdr_size);
    if (bytes.size() < virtio_net_hdr_size) {
        return {};
    }
    const vnet_header h = parse_vnet_header(std::span<const uint8_t, 10>(bytes.data(), 10));
    if (header_out != nullptr) {
        *header_out = h;
    }
    const std::span<const uint8_t> pkt(bytes.data() + 10, bytes.size() - 10);
    if (h.gso_type == vnet::gso_none) {
        EXPECT_EQ(h, vnet_header{}) << "a lone packet has a zero header";
        EXPECT_EQ(w.iov_count, 1u);
        return {std::vector<uint8_t>(pkt.begin(), pkt.end())};
    }
    EXPECT_EQ(h.flags, vnet::f_needs_csum);
    if (h.gso_type == vnet::gso_udp_l4) {
        return kernel_uso_segment(h, pkt, w.iov_count);
    }
    const bool v6 = h.gso_type == vnet::gso_tcpv6;
    EXPECT_EQ(h.csum_start, v6 ? 40 : 20);
    EXPECT_EQ(h.csum_offset, 16);
    EXPECT_EQ(h.hdr_len, h.csum_start + (pkt[h.csum_start + 12] >> 4) * 4);
    // The checksum field holds the folded pseudo-header sum (what the kernel's TSO leaves there).
    const uint32_t l4 = static_cast<uint32_t>(pkt.size() - h.csum_start);
    const uint64_t ph = 6 + (l4 >> 16) + (l4 & 0xffff);
    const uint32_t want = v6 ? naive_sum(&pkt[8], 32, ph) : naive_sum(&pkt[12], 8, ph);
    EXPECT_EQ(be16(&pkt[h.csum_start + 16]), want);
    std::vector<std::vector<uint8_t>> bufs(w.iov_count + 1, std::vector<uint8_t>(70000));
    std::vector<uint8_t*> ptrs;
    for (auto& b : bufs) {
        ptrs.push_back(b.data());
    }
    std::vector<uint32_t> lengths(bufs.size());
    const auto r = split_super_packet(h, pkt, ptrs, 70000, lengths);
    EXPECT_EQ(r.reason, gso_reason::ok) << describe(r.reason);
    EXPECT_EQ(r.segments, w.iov_count) << "one segment per merged packet";
    std::vector<std::vector<uint8_t>> out;
    for (uint32_t i = 0; i < r.segments; ++i) {
        out.emplace_back(bufs[i].begin(), bufs[i].begin() + lengths[i]);
    }
    return out;
}

// Coalesces `b` and returns every packet the kernel would see, in write order.
struct result {
    std::size_t writes = 0;
    std::vector<std::vector<uint8_t>> packets;
    std::vector<uint32_t> iov_counts;
    std::vector<vnet_header> headers;
};

// Every packet of the burst is the member of exactly one iovec, and each iovec lies inside the
// bytes of the packet it names (the worker frees packets by these indices once written).
void expect_members(std::span<const tcp_coalescer::tun_write> writes, burst_buf& b, std::size_t consumed) {
    std::vector<int> seen(consumed, 0);
    for (const auto& w : writes) {
        for (uint32_t k = 0; k < w.iov_count; ++k) {
            const uint32_t m = w.members[k];
            ASSERT_LT(m, consumed);
            ++seen[m];
            const auto* lo = b.storage[m].data();
            const auto* at = static_cast<const uint8_t*>(w.iov[k].iov_base);
            EXPECT_TRUE(at >= lo && at + w.iov[k].iov_len <= lo + b.storage[m].size()) << "iovec " << k << " of packet " << m;
        }
    }
    for (std::size_t i = 0; i < consumed; ++i) {
        EXPECT_EQ(seen[i], 1) << "packet " << i;
    }
}

result run(tcp_coalescer& c, burst_buf& b) {
    result r;
    const auto writes = c.coalesce(b.span());
    expect_members(writes, b, c.consumed());
    r.writes = writes.size();
    for (const auto& w : writes) {
        vnet_header h;
        for (auto& p : unpack(w, &h)) {
            // A lone packet goes out untouched, padding and all; compare up to its IP length.
            std::size_t ip_len = p.size();
            if (p.size() >= 20 && (p[0] >> 4) == 4) {
                ip_len = be16(&p[2]);
            } else if (p.size() >= 40 && (p[0] >> 4) == 6) {
                ip_len = 40u + be16(&p[4]);
            }
            p.resize(std::min(p.size(), ip_len));
            r.packets.push_back(std::move(p));
        }
        r.iov_counts.push_back(w.iov_count);
        r.headers.push_back(h);
    }
    return r;
}

// Output equals input when grouped by flow (version, protocol and source port tell the test flows
// apart), and
// nothing is lost or duplicated.
void expect_same_by_flow(const std::vector<std::vector<uint8_t>>& in, const std::vector<std::vector<uint8_t>>& out) {
    ASSERT_EQ(in.size(), out.size());
    auto key = [](const std::vector<uint8_t>& p) -> uint64_t {
        if (p.size() < 24) {
            return ~0ull;
        }
        const std::size_t l3 = (p[0] >> 4) == 6 ? 40 : 20;
        if (p.size() < l3 + 2) {
            return ~0ull;
        }
        const uint64_t version = p[0] >> 4;
        const uint64_t proto = l3 == 40 ? p[6] : p[9];
        return (version << 40) | (proto << 32) | be16(&p[l3]);  // source port tells flows apart
    };
    std::map<uint64_t, std::vector<std::vector<uint8_t>>> a, b;
    for (const auto& p : in) {
        a[key(p)].push_back(p);
    }
    for (const auto& p : out) {
        b[key(p)].push_back(p);
    }
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [k, seq] : a) {
        ASSERT_TRUE(b.count(k)) << k;
        const auto& got = b[k];
        ASSERT_EQ(seq.size(), got.size()) << k;
        for (std::size_t i = 0; i < seq.size(); ++i) {
            if (seq[i] != got[i]) {
                std::size_t at = 0;
                while (at < seq[i].size() && at < got[i].size() && seq[i][at] == got[i][at]) {
                    ++at;
                }
                FAIL() << "flow " << k << " packet " << i << ": sizes " << seq[i].size() << "/" << got[i].size()
                       << ", first difference at byte " << at;
            }
        }
    }
}

// n consecutive segments of one flow.
void add_flow(burst_buf& b, tcp_spec s, std::size_t n, std::size_t mss, std::size_t last = 0) {
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t len = (i + 1 == n && last != 0) ? last : mss;
        b.add(make_packet(s, len, static_cast<uint32_t>(s.seq)));
        s.seq += static_cast<uint32_t>(len);
        ++s.id;
    }
}

TEST(Gro, OneFlowCoalescesIntoOneWrite) {
    tcp_coalescer c(64);
    burst_buf b;
    tcp_spec s;
    s.tcp_options = {0x01, 0x01, 0x08, 0x0a, 0, 0, 1, 0, 0, 0, 2, 0};
    add_flow(b, s, 10, 1000);
    const auto writes = c.coalesce(b.span());
    ASSERT_EQ(writes.size(), 1u);
    EXPECT_EQ(writes[0].iov_count, 10u);
    EXPECT_EQ(writes[0].total_bytes, 10u + 20 + 32 + 10000);
    vnet_header h;
    const auto pkts = unpack(writes[0], &h);
    EXPECT_EQ(h.gso_type, vnet::gso_tcpv4);
    EXPECT_EQ(h.gso_size, 1000);
    EXPECT_EQ(h.hdr_len, 52);
    EXPECT_EQ(pkts, b.originals);
    EXPECT_EQ(c.consumed(), 10u);
}

TEST(Gro, TwoInterleavedFlows) {
    tcp_coalescer c(64);
    burst_buf b;
    tcp_spec a, z;
    z.flow = 1;
    z.seq = 0xfffffc00;  // seq wraps inside the group
    for (int i = 0; i < 6; ++i) {
        b.add(make_packet(a, 1200, i));
        b.add(make_packet(z, 800, 100 + i));
        a.seq += 1200;
        ++a.id;
        z.seq += 800;
        ++z.id;
    }
    const auto r = run(c, b);
    EXPECT_EQ(r.writes, 2u);
    EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{6, 6}));
    expect_same_by_flow(b.originals, r.packets);
}

TEST(Gro, SeqGapAckChangeTtlAndOptionsSplitGroups) {
    tcp_coalescer c(64);
    burst_buf b;
    tcp_spec s;
    add_flow(b, s, 3, 1000);  // 0 1 2
    s.seq += 3000 + 1;        // gap
    s.id += 3;
    add_flow(b, s, 2, 1000);  // 3 4
    s.seq += 2000;
    s.id += 2;
    s.ack += 1;  // ack moved
    add_flow(b, s, 2, 1000);  // 5 6
    s.seq += 2000;
    s.id += 2;
    s.ttl = 63;
    add_flow(b, s, 1, 1000);  // 7
    s.seq += 1000;
    s.id += 1;
    s.tcp_options = {1, 1, 1, 1};
    add_flow(b, s, 2, 1000);  // 8 9
    const auto r = run(c, b);
    EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{3, 2, 2, 1, 2}));
    EXPECT_EQ(r.packets, b.originals);
}

TEST(Gro, FinAndSynStayAloneAndKeepOrder) {
    tcp_coalescer c(64);
    burst_buf b;
    tcp_spec s;
    tcp_spec syn;
    syn.flow = 3;
    syn.flags = tcp_syn;
    syn.tcp_options = {2, 4, 0x05, 0xb4};
    b.add(make_packet(syn, 0, 0));
    add_flow(b, s, 2, 1000);
    s.seq += 2000;
    s.id += 2;
    s.flags = tcp_ack | tcp_fin;
    b.add(make_packet(s, 500, 9));  // FIN with data: alone
    s.seq += 501;
    ++s.id;
    s.flags = tcp_ack;
    add_flow(b, s, 2, 1000);  // after the FIN (nonsense for TCP, but must not jump ahead of it)
    const auto r = run(c, b);
    EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{1, 2, 1, 2}));
    EXPECT_EQ(r.headers[0], vnet_header{});
    EXPECT_EQ(r.headers[2], vnet_header{});
    EXPECT_EQ(r.packets, b.originals);
}

TEST(Gro, Ipv6) {
    tcp_coalescer c(64);
    burst_buf b;
    tcp_spec s;
    s.v6 = true;
    add_flow(b, s, 8, 1380, 17);
    const auto r = run(c, b);
    ASSERT_EQ(r.writes, 1u);
    EXPECT_EQ(r.headers[0].gso_type, vnet::gso_tcpv6);
    EXPECT_EQ(r.headers[0].gso_size, 1380);
    EXPECT_EQ(r.packets, b.originals);
}

TEST(Gro, Ipv6HeaderFieldsMustMatch) {
    tcp_coalescer c(64);
    for (const int field : {1, 3, 7}) {  // traffic class, flow label, hop limit
        burst_buf b;
        tcp_spec s;
        s.v6 = true;
        add_flow(b, s, 2, 500);
        b.storage[1][virtio_net_hdr_size + field] ^= 0x01;
        EXPECT_EQ(c.coalesce(b.span()).size(), 2u) << field;
    }
}

TEST(Gro, V4AndV6OfSamePortsAreDifferentFlows) {
    tcp_coalescer c(64);
    burst_buf b;
    tcp_spec s4, s6;
    s6.v6 = true;
    b.add(make_packet(s4, 100, 1));
    b.add(make_packet(s6, 100, 2));
    s4.seq += 100;
    s6.seq += 100;
    ++s4.id;
    b.add(make_packet(s4, 100, 3));
    b.add(make_packet(s6, 100, 4));
    const auto r = run(c, b);
    EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{2, 2}));
    expect_same_by_flow(b.originals, r.packets);
}

TEST(Gro, SmallLastSegmentEndsGroup) {
    tcp_coalescer c(64);
    burst_buf b;
    tcp_spec s;
    add_flow(b, s, 6, 1000, 300);  // 5 x 1000 + 300
    s.seq += 5300;
    s.id += 6;
    add_flow(b, s, 2, 1000);  // cannot follow the short one
    s.seq += 2000;
    s.id += 2;
    add_flow(b, s, 2, 800);  // smaller than that group's gso_size: joins as its end
    const auto r = run(c, b);
    EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{6, 3, 1}));
    EXPECT_EQ(r.packets, b.originals);
}

TEST(Gro, LargerSegmentStartsNewGroup) {
    tcp_coalescer c(64);
    burst_buf b;
    tcp_spec s;
    add_flow(b, s, 2, 500);
    s.seq += 1000;
    s.id += 2;
    add_flow(b, s, 2, 600);
    const auto r = run(c, b);
    EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{2, 2}));
    EXPECT_EQ(r.packets, b.originals);
}

TEST(Gro, PshEndsGroup) {
    tcp_coalescer c(64);
    burst_buf b;
    tcp_spec s;
    add_flow(b, s, 3, 1000);
    s.seq += 3000;
    s.id += 3;
    s.flags = tcp_ack | tcp_psh;
    b.add(make_packet(s, 1000, 4));
    s.seq += 1000;
    ++s.id;
    s.flags = tcp_ack;
    add_flow(b, s, 2, 1000);
    const auto r = run(c, b);
    EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{4, 2}));
    EXPECT_EQ(r.packets, b.originals);  // PSH only on the 4th after splitting
}

TEST(Gro, Over64KiBSplitsIntoSeveralWrites) {
    tcp_coalescer c(128);
    burst_buf b;
    tcp_spec s;
    add_flow(b, s, 100, 1400);  // 140 KB
    const auto writes = c.coalesce(b.span());
    ASSERT_GE(writes.size(), 3u);
    uint32_t total = 0;
    for (const auto& w : writes) {
        EXPECT_LE(w.total_bytes, 10u + 65535);
        total += w.iov_count;
    }
    EXPECT_EQ(total, 100u);
    // (65535 - 40) / 1400 = 46 payloads fit under the IP length limit.
    EXPECT_EQ(writes[0].iov_count, 46u);
    const auto r = run(c, b);
    EXPECT_NE(r.packets, b.originals);  // first headers were rewritten by the first call
    burst_buf fresh;
    add_flow(fresh, s, 100, 1400);
    EXPECT_EQ(run(c, fresh).packets, fresh.originals);
}

TEST(Gro, NonTcpPassesAloneUntouched) {
    tcp_coalescer c(64);
    burst_buf b;
    tcp_spec s;
    tcp_spec udp;
    udp.proto = 17;
    tcp_spec icmp6;
    icmp6.v6 = true;
    icmp6.proto = 58;
    b.add(make_packet(s, 1000, 1));
    b.add(make_packet(udp, 1000, 2));
    s.seq += 1000;
    ++s.id;
    b.add(make_packet(s, 1000, 3));
    b.add(make_packet(icmp6, 56, 4));
    b.add({0x45, 0x00});  // garbage
    b.add({});
    const auto writes = c.coalesce(b.span());
    ASSERT_EQ(writes.size(), 5u);
    EXPECT_EQ(writes[0].iov_count, 2u);
    const std::vector<std::size_t> alone = {1, 3, 4, 5};
    for (std::size_t k = 0; k < alone.size(); ++k) {
        const auto bytes = flatten(writes[k + 1]);
        std::vector<uint8_t> want(10, 0);
        want.insert(want.end(), b.originals[alone[k]].begin(), b.originals[alone[k]].end());
        EXPECT_EQ(bytes, want) << k;
    }
}

TEST(Gro, Ipv4IdRules) {
    tcp_coalescer c(64);
    {
        burst_buf b;
        tcp_spec s;
        b.add(make_packet(s, 100, 1));
        s.seq += 100;
        s.id += 2;  // not consecutive
        b.add(make_packet(s, 100, 2));
        EXPECT_EQ(c.coalesce(b.span()).size(), 2u);
    }
    {
        burst_buf b;
        tcp_spec s;  // DF with a fixed id (atomic datagrams, RFC 6864): allowed
        for (int i = 0; i < 3; ++i) {
            b.add(make_packet(s, 100, i));
            s.seq += 100;
        }
        EXPECT_EQ(c.coalesce(b.span()).size(), 1u);
    }
    {
        burst_buf b;
        tcp_spec s;  // fixed, then consecutive: the id rule may not change within a group
        b.add(make_packet(s, 100, 1));
        s.seq += 100;
        b.add(make_packet(s, 100, 2));
        s.seq += 100;
        s.id += 2;
        b.add(make_packet(s, 100, 3));
        EXPECT_EQ(c.coalesce(b.span()).size(), 2u);
    }
    {
        burst_buf b;
        tcp_spec s;
        s.df = false;  // fixed id without DF: no
        b.add(make_packet(s, 100, 1));
        s.seq += 100;
        b.add(make_packet(s, 100, 2));
        EXPECT_EQ(c.coalesce(b.span()).size(), 2u);
    }
    {
        burst_buf b;
        tcp_spec s;
        s.id = 0xffff;  // consecutive across the wrap
        add_flow(b, s, 3, 100);
        const auto r = run(c, b);
        EXPECT_EQ(r.writes, 1u);
        EXPECT_EQ(r.packets, b.originals);
    }
    {
        burst_buf b;
        tcp_spec s;
        b.add(make_packet(s, 100, 1));
        s.seq += 100;
        s.df = false;  // DF differs
        ++s.id;
        b.add(make_packet(s, 100, 2));
        EXPECT_EQ(c.coalesce(b.span()).size(), 2u);
    }
}

TEST(Gro, TrailingPaddingIsLeftOut) {
    tcp_coalescer c(64);
    auto make = [] {
        burst_buf b;
        tcp_spec s;
        for (int i = 0; i < 4; ++i) {
            b.add(make_packet(s, 1000, i), 12);  // WireGuard pads plaintext to 16 bytes
            s.seq += 1000;
            ++s.id;
        }
        s.flags = tcp_ack | tcp_fin;
        b.add(make_packet(s, 3, 9), 13);
        return b;
    };
    burst_buf b = make();
    const auto writes = c.coalesce(b.span());
    ASSERT_EQ(writes.size(), 2u);
    EXPECT_EQ(writes[0].total_bytes, 10u + 40 + 4000);
    EXPECT_EQ(writes[1].total_bytes, 10u + 43 + 13) << "a lone packet is written as it came";
    burst_buf again = make();
    EXPECT_EQ(run(c, again).packets, again.originals);
}

TEST(Gro, DisabledPassesEverythingAlone) {
    tcp_coalescer c(64);
    c.set_enabled(false);
    EXPECT_FALSE(c.enabled());
    burst_buf b;
    add_flow(b, tcp_spec{}, 5, 1000);
    const auto r = run(c, b);
    EXPECT_EQ(r.writes, 5u);
    EXPECT_EQ(r.packets, b.originals);
}

TEST(Gro, BurstLargerThanMaxIsCut) {
    tcp_coalescer c(4);
    burst_buf b;
    add_flow(b, tcp_spec{}, 6, 1000);
    const auto writes = c.coalesce(b.span());
    EXPECT_EQ(c.consumed(), 4u);
    ASSERT_EQ(writes.size(), 1u);
    EXPECT_EQ(writes[0].iov_count, 4u);
    EXPECT_TRUE(c.coalesce({}).empty());
    EXPECT_EQ(c.consumed(), 0u);
}

TEST(Gro, ManyFlowsFillTheTable) {
    tcp_coalescer c(64);
    burst_buf b;
    std::vector<tcp_spec> flows(32);
    for (std::size_t f = 0; f < flows.size(); ++f) {
        flows[f].flow = static_cast<uint8_t>(f);
    }
    for (int round = 0; round < 2; ++round) {
        for (auto& f : flows) {
            b.add(make_packet(f, 100, round));
            f.seq += 100;
            ++f.id;
        }
    }
    const auto r = run(c, b);
    EXPECT_EQ(r.writes, 32u);
    expect_same_by_flow(b.originals, r.packets);
}

// Random flows, sizes, PSH, ack moves, gaps and stray packets: coalesce then split gives the
// same packets, each flow in order.
TEST(Gro, RandomRoundTrip) {
    std::mt19937 rng(2024);
    tcp_coalescer c(64);
    std::size_t merged = 0;
    for (int iter = 0; iter < 400; ++iter) {
        burst_buf b;
        std::vector<tcp_spec> flows(1 + rng() % 4);
        for (std::size_t f = 0; f < flows.size(); ++f) {
            flows[f].flow = static_cast<uint8_t>(f);
            flows[f].v6 = rng() % 3 == 0;
            flows[f].seq = static_cast<uint32_t>(rng());
            flows[f].id = static_cast<uint16_t>(rng());
        }
        const std::size_t mss = 200 + rng() % 1300;
        const std::size_t n = 1 + rng() % 64;
        for (std::size_t i = 0; i < n; ++i) {
            const uint32_t pick = static_cast<uint32_t>(rng() % 100);
            if (pick < 3) {
                tcp_spec u;
                u.proto = 17;
                u.flow = 200;
                b.add(make_packet(u, rng() % 300, static_cast<uint32_t>(i)));
                continue;
            }
            tcp_spec& f = flows[rng() % flows.size()];
            std::size_t len = rng() % 8 == 0 ? 1 + rng() % mss : mss;
            f.flags = rng() % 10 == 0 ? uint8_t{tcp_ack | tcp_psh} : tcp_ack;
            if (rng() % 20 == 0) {
                f.ack += 1000;
            }
            if (rng() % 30 == 0) {
                f.seq += 1;  // gap
            }
            if (rng() % 40 == 0) {
                len = 0;  // pure ACK
            }
            b.add(make_packet(f, len, static_cast<uint32_t>(rng())), rng() % 4 == 0 ? rng() % 16 : 0);
            f.seq += static_cast<uint32_t>(len);
            ++f.id;
        }
        const auto r = run(c, b);
        ASSERT_LE(r.writes, n);
        merged += n - r.writes;
        expect_same_by_flow(b.originals, r.packets);
        if (HasFatalFailure()) {
            FAIL() << "iteration " << iter;
        }
    }
    EXPECT_GT(merged, 1000u) << "the test should exercise coalescing";
}

}  // namespace
}  // namespace meshfwd::dataplane

namespace meshfwd::dataplane {
namespace {

tcp_spec udp_spec(uint8_t flow = 0, bool v6 = false) {
    tcp_spec s;
    s.proto = 17;
    s.flow = flow;
    s.v6 = v6;
    return s;
}

TEST(GroUdp, OneFlowCoalescesIntoOneUsoWrite) {
    for (const bool v6 : {false, true}) {
        SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
        tcp_coalescer c(64);
        c.set_udp(true);
        EXPECT_TRUE(c.udp());
        burst_buf b;
        add_flow(b, udp_spec(0, v6), 10, 1300, 300);  // the last one shorter
        const auto writes = c.coalesce(b.span());
        ASSERT_EQ(writes.size(), 1u);
        EXPECT_EQ(writes[0].iov_count, 10u);
        const uint32_t ip_len = v6 ? 40 : 20;
        EXPECT_EQ(writes[0].total_bytes, 10u + ip_len + 8 + 9 * 1300 + 300);
        vnet_header h;
        const auto pkts = unpack(writes[0], &h);
        EXPECT_EQ(h.flags, vnet::f_needs_csum);
        EXPECT_EQ(h.gso_type, vnet::gso_udp_l4);
        EXPECT_EQ(h.gso_size, 1300);
        EXPECT_EQ(h.hdr_len, ip_len + 8);
        EXPECT_EQ(h.csum_start, ip_len);
        EXPECT_EQ(h.csum_offset, 6);
        EXPECT_EQ(pkts, b.originals) << "byte for byte, checksums included, after the kernel's split";
    }
}

TEST(GroUdp, OffUnlessTheDeviceTakesUso) {
    tcp_coalescer c(64);
    EXPECT_FALSE(c.udp());
    burst_buf b;
    add_flow(b, udp_spec(), 5, 1000);
    const auto r = run(c, b);
    EXPECT_EQ(r.writes, 5u);
    EXPECT_EQ(r.packets, b.originals);
}

TEST(GroUdp, SizesFlowsAndProtocolsKeepApart) {
    tcp_coalescer c(64);
    c.set_udp(true);
    {
        // A larger datagram cannot join (gso_size is the first's); a shorter one ends the group.
        burst_buf b;
        tcp_spec s = udp_spec();
        add_flow(b, s, 3, 1000);
        s.id = static_cast<uint16_t>(s.id + 3);
        add_flow(b, s, 2, 1200);
        s.id = static_cast<uint16_t>(s.id + 2);
        add_flow(b, s, 3, 1200, 500);
        s.id = static_cast<uint16_t>(s.id + 3);
        add_flow(b, s, 2, 1200);
        const auto r = run(c, b);
        EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{3, 5, 2}));
        EXPECT_EQ(r.packets, b.originals);
    }
    {
        // Two interleaved flows, IPv4 and IPv6 of the same ports, and TCP of the same ports.
        burst_buf b;
        tcp_spec x = udp_spec(0), y = udp_spec(1), z = udp_spec(0, true), t;
        for (int i = 0; i < 4; ++i) {
            for (tcp_spec* s : {&x, &y, &z, &t}) {
                b.add(make_packet(*s, 700, static_cast<uint32_t>(i)));
                s->seq += 700;
                ++s->id;
            }
        }
        const auto r = run(c, b);
        EXPECT_EQ(r.writes, 4u);
        EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{4, 4, 4, 4}));
        expect_same_by_flow(b.originals, r.packets);
    }
    {
        // ICMP, an empty datagram, a UDP length that is not the IP payload's and an IPv4
        // fragment stay alone, and end their flow's group (the order within a flow is kept).
        burst_buf b;
        tcp_spec s = udp_spec();
        tcp_spec icmp;
        icmp.proto = 1;
        b.add(make_packet(s, 500, 1));
        ++s.id;
        b.add(make_packet(icmp, 56, 2));
        b.add(make_packet(s, 0, 3));
        ++s.id;
        auto odd = make_packet(s, 500, 4);
        put16(&odd[24], 8 + 400);  // UDP length short of the IP payload
        b.add(odd);
        ++s.id;
        auto frag = make_packet(s, 500, 5);
        frag[6] |= 0x20;  // MF
        put16(&frag[10], 0);
        put16(&frag[10], static_cast<uint16_t>(~naive_sum(frag.data(), 20)));
        b.add(frag);
        ++s.id;
        b.add(make_packet(s, 500, 6));
        ++s.id;
        b.add(make_packet(s, 500, 7));
        const auto r = run(c, b);
        EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{1, 1, 1, 1, 1, 2}));
        EXPECT_EQ(r.packets, b.originals);
    }
}

TEST(GroUdp, Ipv4IdRules) {
    tcp_coalescer c(64);
    c.set_udp(true);
    {
        // Without DF the ids must be consecutive (the kernel's split numbers them first + i).
        burst_buf b;
        tcp_spec s = udp_spec();
        s.df = false;
        b.add(make_packet(s, 800, 1));
        ++s.id;
        b.add(make_packet(s, 800, 2));
        s.id = static_cast<uint16_t>(s.id + 5);
        b.add(make_packet(s, 800, 3));
        const auto r = run(c, b);
        EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{2, 1}));
        EXPECT_EQ(r.packets, b.originals);
    }
    {
        // With DF any ids merge; they come out renumbered, everything else as it was.
        burst_buf b;
        tcp_spec s = udp_spec();
        for (const uint16_t id : {uint16_t{9}, uint16_t{9}, uint16_t{4000}, uint16_t{3}}) {
            s.id = id;
            b.add(make_packet(s, 800, id));
        }
        const auto r = run(c, b);
        ASSERT_EQ(r.iov_counts, (std::vector<uint32_t>{4}));
        ASSERT_EQ(r.packets.size(), 4u);
        for (std::size_t i = 0; i < 4; ++i) {
            auto want = b.originals[i];
            put16(&want[4], 9 + static_cast<uint32_t>(i));
            put16(&want[10], 0);
            put16(&want[10], static_cast<uint16_t>(~naive_sum(want.data(), 20)));
            EXPECT_EQ(r.packets[i], want) << i;
        }
    }
}

// More packets of one flow than a write may take: several writes of at most max_segments each
// (one iovec per packet: the worker's writev has 128; UDP GSO takes 64 segments on older kernels).
TEST(GroUdp, SegmentCapSplitsLongBursts) {
    for (const uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
        SCOPED_TRACE(int(proto));
        tcp_coalescer c(256);
        c.set_udp(true);
        EXPECT_EQ(c.max_segments(), 64u);
        burst_buf b;
        tcp_spec s = proto == 17 ? udp_spec() : tcp_spec{};
        add_flow(b, s, 200, 100);  // 20 KB: far under 64 KiB, so only the cap splits it
        const auto r = run(c, b);
        EXPECT_EQ(r.iov_counts, (std::vector<uint32_t>{64, 64, 64, 8}));
        EXPECT_EQ(r.packets, b.originals);
        tcp_coalescer small(256, 5);
        small.set_udp(true);
        burst_buf again;
        add_flow(again, s, 12, 100);
        const auto r5 = run(small, again);
        EXPECT_EQ(r5.iov_counts, (std::vector<uint32_t>{5, 5, 2}));
        EXPECT_EQ(r5.packets, again.originals);
    }
}

// Random UDP flows (v4/v6, DF on, consecutive ids), sizes and stray TCP/ICMP: coalesce, then the
// kernel's split gives the same datagrams, each flow in order.
TEST(GroUdp, RandomRoundTrip) {
    std::mt19937 rng(77);
    tcp_coalescer c(128);
    c.set_udp(true);
    std::size_t merged = 0;
    for (int iter = 0; iter < 300; ++iter) {
        burst_buf b;
        std::vector<tcp_spec> flows(1 + rng() % 4);
        for (std::size_t f = 0; f < flows.size(); ++f) {
            flows[f] = udp_spec(static_cast<uint8_t>(f), rng() % 3 == 0);
            flows[f].id = static_cast<uint16_t>(rng());
            flows[f].df = rng() % 4 != 0;
        }
        const std::size_t size = 1 + rng() % 1400;
        const std::size_t n = 1 + rng() % 128;
        for (std::size_t i = 0; i < n; ++i) {
            if (rng() % 50 == 0) {
                tcp_spec icmp;
                icmp.proto = 1;
                icmp.flow = 201;
                b.add(make_packet(icmp, rng() % 100, static_cast<uint32_t>(i)));
                continue;
            }
            tcp_spec& f = flows[rng() % flows.size()];
            const std::size_t len = rng() % 10 == 0 ? rng() % (size + 1) : size;
            b.add(make_packet(f, len, static_cast<uint32_t>(rng())), rng() % 4 == 0 ? rng() % 16 : 0);
            ++f.id;
        }
        const auto r = run(c, b);
        ASSERT_LE(r.writes, n);
        merged += n - r.writes;
        expect_same_by_flow(b.originals, r.packets);
        if (HasFatalFailure()) {
            FAIL() << "iteration " << iter;
        }
    }
    EXPECT_GT(merged, 1000u) << "the test should exercise coalescing";
}

}  // namespace
}  // namespace meshfwd::dataplane
