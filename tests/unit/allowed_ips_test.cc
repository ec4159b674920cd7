// allowed_ips: edge cases, a randomized differential test against a deliberately naive linear
// scan (the kernel's horrible_allowedips idea), and the packet helpers on real and malformed
// IPv4/IPv6 headers (run under ASan in the clang build to catch any read past the span).
#include "dataplane/allowed_ips.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

namespace meshfwd::dataplane {
namespace {

constexpr uint32_t none = allowed_ips::no_match;

ip_prefix pfx(const char* text) {
    auto p = ip_prefix::parse(text);
    EXPECT_TRUE(p.ok()) << text;
    return p.ok() ? *p : ip_prefix{};
}

ip_address addr(const char* text) {
    auto a = ip_address::parse(text);
    EXPECT_TRUE(a.ok()) << text;
    return a.ok() ? *a : ip_address{};
}

// The reference: a linear scan for the longest containing prefix; on equal length (the same
// prefix) the later entry wins.
class slow_table {
public:
    explicit slow_table(const std::vector<allowed_ips::entry>& entries) {
        for (const auto& e : entries) {
            const ip_prefix m = e.prefix.masked();
            row r{m.address().is_v6(), m.length(), e.value, {}};
            std::memcpy(r.bytes.data(), m.address().bytes().data(), m.address().bytes().size());
            _rows.push_back(r);
        }
    }

    uint32_t lookup(const ip_address& a) const {
        std::array<uint8_t, 16> b{};
        std::memcpy(b.data(), a.bytes().data(), a.bytes().size());
        int best_len = -1;
        uint32_t best = allowed_ips::no_match;
        for (const auto& r : _rows) {
            if (r.v6 == a.is_v6() && r.len >= best_len && covers(r, b)) {
                best_len = r.len;
                best = r.value;
            }
        }
        return best;
    }

private:
    struct row {
        bool v6;
        int len;
        uint32_t value;
        std::array<uint8_t, 16> bytes;
    };

    static bool covers(const row& r, const std::array<uint8_t, 16>& b) {
        const auto full = static_cast<std::size_t>(r.len / 8);
        if (std::memcmp(r.bytes.data(), b.data(), full) != 0) {
            return false;
        }
        const int rest = r.len % 8;
        if (rest == 0) {
            return true;
        }
        const auto mask = static_cast<uint8_t>(0xff00u >> rest);
        return (b[full] & mask) == r.bytes[full];
    }

    std::vector<row> _rows;
};

uint32_t slow_lookup(const std::vector<allowed_ips::entry>& entries, const ip_address& a) {
    return slow_table(entries).lookup(a);
}

TEST(AllowedIps, EmptyTable) {
    allowed_ips t;
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.lookup(addr("10.0.0.1")), none);
    EXPECT_EQ(t.lookup(addr("::1")), none);
    EXPECT_EQ(t.lookup(addr("255.255.255.255")), none);
    EXPECT_GT(t.memory_bytes(), 0u);
    auto built = allowed_ips::build({});
    EXPECT_EQ(built.lookup(addr("0.0.0.0")), none);
    EXPECT_EQ(built.lookup(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), none);
}

TEST(AllowedIps, DefaultRoutesAndHosts) {
    const std::vector<allowed_ips::entry> entries = {
        {pfx("0.0.0.0/0"), 1},        {pfx("::/0"), 2},           {pfx("10.0.0.0/8"), 3},
        {pfx("10.1.2.3/32"), 4},      {pfx("2001:db8::/32"), 5},  {pfx("2001:db8::1/128"), 6},
        {pfx("10.1.2.0/31"), 7},      {pfx("10.1.2.2/31"), 8},    {pfx("fd00::/8"), 9},
    };
    const auto t = allowed_ips::build(entries);
    EXPECT_EQ(t.size(), entries.size());
    EXPECT_EQ(t.lookup(addr("192.0.2.1")), 1u);
    EXPECT_EQ(t.lookup(addr("255.255.255.255")), 1u);
    EXPECT_EQ(t.lookup(addr("10.200.0.1")), 3u);
    EXPECT_EQ(t.lookup(addr("10.1.2.3")), 4u);
    EXPECT_EQ(t.lookup(addr("10.1.2.2")), 8u);
    EXPECT_EQ(t.lookup(addr("10.1.2.1")), 7u);
    EXPECT_EQ(t.lookup(addr("10.1.2.4")), 3u);
    EXPECT_EQ(t.lookup(addr("::1")), 2u);
    EXPECT_EQ(t.lookup(addr("2001:db8::1")), 6u);
    EXPECT_EQ(t.lookup(addr("2001:db8::2")), 5u);
    EXPECT_EQ(t.lookup(addr("2001:db9::1")), 2u);
    EXPECT_EQ(t.lookup(addr("fdff::1")), 9u);
    // IPv4-mapped IPv6 is plain IPv6: it takes ::/0, never 10.0.0.0/8.
    EXPECT_EQ(t.lookup(addr("::ffff:10.1.2.3")), 2u);
}

TEST(AllowedIps, HostBitsMaskedAndLaterDuplicateWins) {
    const std::vector<allowed_ips::entry> entries = {
        {pfx("10.1.2.3/8"), 1},
        {pfx("10.9.9.9/8"), 2},  // the same prefix as 10.0.0.0/8: this later entry wins
        {pfx("2001:db8::ffff/64"), 3},
        {pfx("2001:db8::/64"), 4},
        {pfx("2001:db8::/64"), 5},
    };
    const auto t = allowed_ips::build(entries);
    EXPECT_EQ(t.size(), 2u);
    EXPECT_EQ(t.lookup(addr("10.0.0.0")), 2u);
    EXPECT_EQ(t.lookup(addr("10.255.255.255")), 2u);
    EXPECT_EQ(t.lookup(addr("11.0.0.0")), none);
    EXPECT_EQ(t.lookup(addr("2001:db8::1234")), 5u);
    EXPECT_EQ(t.lookup(addr("2001:db8:0:1::")), none);
}

TEST(AllowedIps, FullLengthEdges) {
    // Host routes at both ends of each address space, and prefixes ending at every alignment
    // against the 6-bit strides (slots past the last address bit are padding).
    std::vector<allowed_ips::entry> entries = {
        {pfx("0.0.0.0/32"), 1},
        {pfx("255.255.255.255/32"), 2},
        {pfx("::/128"), 3},
        {pfx("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), 4},
        {pfx("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"), 5},
        {pfx("255.255.255.254/31"), 6},
    };
    const auto t = allowed_ips::build(entries);
    EXPECT_EQ(t.lookup(addr("0.0.0.0")), 1u);
    EXPECT_EQ(t.lookup(addr("0.0.0.1")), none);
    EXPECT_EQ(t.lookup(addr("255.255.255.255")), 2u);
    EXPECT_EQ(t.lookup(addr("255.255.255.254")), 6u);
    EXPECT_EQ(t.lookup(addr("255.255.255.253")), none);
    EXPECT_EQ(t.lookup(addr("::")), 3u);
    EXPECT_EQ(t.lookup(addr("::1")), none);
    EXPECT_EQ(t.lookup(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), 4u);
    EXPECT_EQ(t.lookup(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")), 5u);
    EXPECT_EQ(t.lookup(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd")), none);

    for (unsigned len = 0; len <= 128; ++len) {
        const std::vector<allowed_ips::entry> one = {{*ip_prefix::make(addr("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"), len), 7}};
        const auto t1 = allowed_ips::build(one);
        EXPECT_EQ(t1.lookup(addr("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff")), 7u) << len;
        EXPECT_EQ(t1.lookup(addr("2001:db8:aaaa:bbbb:cccc:dddd:eeee:fffe")), len == 128 ? none : 7u) << len;
        EXPECT_EQ(t1.lookup(addr("::1")), slow_lookup(one, addr("::1"))) << len;
    }
}

// Random addresses drawn around a few bases so that prefixes nest, share long paths and diverge
// at every depth (exercising path compression and leaf runs).
class generator {
public:
    // One prefix in short_one_in is /8 or shorter.
    generator(uint32_t seed, uint32_t short_one_in) : _rng(seed), _short_one_in(short_one_in) {
        for (auto& b : _bases4) {
            fill(b.data(), 4);
        }
        for (auto& b : _bases6) {
            fill(b.data(), 16);
        }
    }

    ip_address address(bool v6) {
        std::array<uint8_t, 16> bytes{};
        const std::size_t n = v6 ? 16 : 4;
        const uint8_t* base = v6 ? _bases6[pick(_bases6.size())].data() : _bases4[pick(_bases4.size())].data();
        std::memcpy(bytes.data(), base, n);
        // Keep a random number of leading bits of the base, randomize the rest (sometimes all).
        const unsigned keep = pick(4) == 0 ? 0 : pick(static_cast<uint32_t>(n * 8 + 1));
        for (unsigned bit = keep; bit < n * 8; ++bit) {
            const auto mask = static_cast<uint8_t>(0x80u >> (bit % 8));
            if (pick(2) != 0) {
                bytes[bit / 8] = static_cast<uint8_t>(bytes[bit / 8] ^ mask);
            }
        }
        return ip_address::from_bytes(std::span<const uint8_t>(bytes.data(), n));
    }

    ip_prefix prefix(bool v6) {
        const unsigned max = v6 ? 128 : 32;
        // Host routes, rare short prefixes (/0../8: they would cover everything in a big table),
        // the rest uniform.
        unsigned len;
        if (pick(_short_one_in) == 0) {
            len = pick(4) == 0 ? 0 : 1 + pick(8);
        } else if (pick(10) < 3) {
            len = max;
        } else {
            len = 9 + pick(max - 8);
        }
        return *ip_prefix::make(address(v6), len);
    }

    uint32_t pick(uint32_t n) { return std::uniform_int_distribution<uint32_t>(0, n - 1)(_rng); }

private:
    void fill(uint8_t* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            p[i] = static_cast<uint8_t>(pick(256));
        }
    }

    std::mt19937 _rng;
    uint32_t _short_one_in;
    std::array<std::array<uint8_t, 4>, 4> _bases4{};
    std::array<std::array<uint8_t, 16>, 4> _bases6{};
};

std::size_t differential(uint32_t seed, std::size_t n_prefixes, std::size_t n_lookups) {
    // About two short prefixes per table, so that some address space stays uncovered.
    generator g(seed, static_cast<uint32_t>(n_prefixes / 2 + 1));
    std::vector<allowed_ips::entry> entries;
    for (std::size_t i = 0; i < n_prefixes; ++i) {
        const bool v6 = g.pick(2) != 0;
        if (!entries.empty() && g.pick(10) == 0) {
            // A duplicate (maybe with other host bits): the later one must win.
            const auto& prev = entries[g.pick(static_cast<uint32_t>(entries.size()))].prefix;
            entries.push_back({prev, static_cast<uint32_t>(i)});
            continue;
        }
        if (!entries.empty() && g.pick(5) == 0) {
            // A prefix nested in an earlier one.
            const auto& outer = entries[g.pick(static_cast<uint32_t>(entries.size()))].prefix;
            const unsigned max = outer.address().is_v4() ? 32 : 128;
            const unsigned len = outer.length() + g.pick(max - outer.length() + 1);
            entries.push_back({*ip_prefix::make(outer.address(), len), static_cast<uint32_t>(i)});
            continue;
        }
        entries.push_back({g.prefix(v6), static_cast<uint32_t>(i)});
    }
    const auto t = allowed_ips::build(entries);
    const slow_table reference(entries);
    std::size_t matched = 0;
    for (std::size_t i = 0; i < n_lookups; ++i) {
        ip_address a;
        const auto& p = entries[g.pick(static_cast<uint32_t>(entries.size()))].prefix;
        switch (g.pick(3)) {
            case 0: a = g.address(g.pick(2) != 0); break;
            case 1: a = p.address(); break;  // inside a listed prefix
            default: {
                // Next to a listed prefix: one bit flipped.
                auto bytes = p.address().bytes();
                std::array<uint8_t, 16> b{};
                std::memcpy(b.data(), bytes.data(), bytes.size());
                b[g.pick(static_cast<uint32_t>(bytes.size()))] ^= static_cast<uint8_t>(1u << g.pick(8));
                a = ip_address::from_bytes(std::span<const uint8_t>(b.data(), bytes.size()));
                break;
            }
        }
        const uint32_t want = reference.lookup(a);
        matched += want != none ? 1 : 0;
        const uint32_t got = t.lookup(a);
        if (got != want) {
            ADD_FAILURE() << "seed " << seed << " address " << a.to_string() << ": got " << got << ", want " << want;
            return matched;
        }
    }
    return matched;
}

TEST(AllowedIps, DifferentialSmall) {
    std::size_t matched = 0;
    for (uint32_t seed = 1; seed <= 200; ++seed) {
        matched += differential(seed, 1 + seed % 40, 300);
    }
    // The comparison means something only if both outcomes are common.
    EXPECT_GT(matched, 200u * 300 / 4);
    EXPECT_LT(matched, 200u * 300 * 3 / 4);
}

TEST(AllowedIps, DifferentialLarge) {
    // Past 256 prefixes a family gets the 16-bit root.
    std::size_t matched = 0;
    for (uint32_t seed = 1000; seed < 1006; ++seed) {
        matched += differential(seed, 3000, 6000);
    }
    EXPECT_GT(matched, 6u * 6000 / 4);
    EXPECT_LT(matched, 6u * 6000 * 9 / 10);
}

TEST(AllowedIps, MemoryStaysCompactForRandomHostRoutes) {
    // 10k peers, each with a v4 /32 and a random v6 /128 in one /48: the snapshot-rebuild case.
    std::mt19937 rng(7);
    std::vector<allowed_ips::entry> entries;
    for (uint32_t i = 0; i < 10000; ++i) {
        entries.push_back({*ip_prefix::make(ip_address::v4(0x0a640000u + i), 32), i});
        std::array<uint8_t, 16> b = {0xfd, 0x12, 0x34, 0x56, 0x78, 0x9a};
        for (std::size_t k = 6; k < 16; ++k) {
            b[k] = static_cast<uint8_t>(rng());
        }
        entries.push_back({*ip_prefix::make(ip_address::v6(b), 128), i});
    }
    const auto t = allowed_ips::build(entries);
    EXPECT_EQ(t.size(), 20000u);
    EXPECT_LT(t.memory_bytes(), 4u << 20) << t.memory_bytes();
    for (const auto& e : entries) {
        ASSERT_EQ(t.lookup(e.prefix.address()), e.value) << e.prefix.to_string();
    }
}

// A 20-byte IPv4 header and a 40-byte IPv6 header with the given addresses.
std::vector<uint8_t> ipv4_packet(const char* src, const char* dst) {
    std::vector<uint8_t> p(28, 0);
    p[0] = 0x45;
    p[3] = 28;
    p[8] = 64;
    p[9] = 17;
    std::memcpy(&p[12], addr(src).bytes().data(), 4);
    std::memcpy(&p[16], addr(dst).bytes().data(), 4);
    return p;
}

std::vector<uint8_t> ipv6_packet(const char* src, const char* dst) {
    std::vector<uint8_t> p(48, 0);
    p[0] = 0x60;
    p[5] = 8;
    p[6] = 17;
    p[7] = 64;
    std::memcpy(&p[8], addr(src).bytes().data(), 16);
    std::memcpy(&p[24], addr(dst).bytes().data(), 16);
    return p;
}

TEST(AllowedIps, PacketSourceAndDestination) {
    const std::vector<allowed_ips::entry> entries = {
        {pfx("10.0.0.1/32"), 1}, {pfx("10.0.0.2/32"), 2}, {pfx("fd00::1/128"), 3}, {pfx("fd00::2/128"), 4}};
    const auto t = allowed_ips::build(entries);
    const auto p4 = ipv4_packet("10.0.0.1", "10.0.0.2");
    EXPECT_EQ(t.lookup_source(p4), 1u);
    EXPECT_EQ(t.lookup_destination(p4), 2u);
    const auto p6 = ipv6_packet("fd00::2", "fd00::1");
    EXPECT_EQ(t.lookup_source(p6), 4u);
    EXPECT_EQ(t.lookup_destination(p6), 3u);
    // Exactly the minimal header is enough.
    EXPECT_EQ(t.lookup_destination(std::span<const uint8_t>(p4.data(), 20)), 2u);
    EXPECT_EQ(t.lookup_source(std::span<const uint8_t>(p6.data(), 40)), 4u);
}

TEST(AllowedIps, MalformedPacketsGiveNoMatch) {
    const std::vector<allowed_ips::entry> entries = {{pfx("0.0.0.0/0"), 1}, {pfx("::/0"), 2}};
    const auto t = allowed_ips::build(entries);
    EXPECT_EQ(t.lookup_destination({}), none);
    EXPECT_EQ(t.lookup_source({}), none);

    const auto p4 = ipv4_packet("10.0.0.1", "10.0.0.2");
    const auto p6 = ipv6_packet("fd00::2", "fd00::1");
    // Truncated: copied into exactly-sized heap buffers so ASan flags any read past the end.
    for (std::size_t len = 1; len < 20; ++len) {
        auto buf = std::make_unique<uint8_t[]>(len);
        std::memcpy(buf.get(), p4.data(), len);
        EXPECT_EQ(t.lookup_destination({buf.get(), len}), none) << len;
        EXPECT_EQ(t.lookup_source({buf.get(), len}), none) << len;
    }
    for (std::size_t len = 1; len < 40; ++len) {
        auto buf = std::make_unique<uint8_t[]>(len);
        std::memcpy(buf.get(), p6.data(), len);
        EXPECT_EQ(t.lookup_destination({buf.get(), len}), none) << len;
        EXPECT_EQ(t.lookup_source({buf.get(), len}), none) << len;
    }
    // A v6 version nibble on a v4-sized packet, and other versions.
    auto odd = p4;
    odd[0] = 0x65;
    EXPECT_EQ(t.lookup_destination(odd), none);
    for (unsigned v = 0; v < 16; ++v) {
        if (v == 4 || v == 6) {
            continue;
        }
        auto garbage = p6;
        garbage[0] = static_cast<uint8_t>(v << 4);
        EXPECT_EQ(t.lookup_destination(garbage), none) << v;
        EXPECT_EQ(t.lookup_source(garbage), none) << v;
    }
    EXPECT_EQ(t.lookup_destination(p4), 1u);
    EXPECT_EQ(t.lookup_destination(p6), 2u);
}

} // namespace
} // namespace meshfwd::dataplane
