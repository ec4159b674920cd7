// Internet checksum helpers (dataplane/checksum.h): RFC 1071's worked example, a known IPv4
// header, odd lengths and alignments, chaining, pseudo-headers, all against a deliberately naive
// word-at-a-time reference.
#include "dataplane/checksum.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace meshfwd::dataplane {
namespace {

// The reference: big-endian 16-bit words, one at a time, folded at the end.
uint16_t naive_fold(const std::vector<uint8_t>& b) {
    uint64_t s = 0;
    for (std::size_t i = 0; i < b.size(); i += 2) {
        s += (uint64_t{b[i]} << 8) | (i + 1 < b.size() ? b[i + 1] : 0u);
    }
    while (s >> 16) {
        s = (s & 0xffff) + (s >> 16);
    }
    return static_cast<uint16_t>(s);
}

TEST(Checksum, Rfc1071Example) {
    // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (checksum 220d).
    const std::vector<uint8_t> b = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(checksum_fold(checksum_add(b)), 0xddf2);
    EXPECT_EQ(static_cast<uint16_t>(~checksum_fold(checksum_add(b))), 0x220d);
}

TEST(Checksum, KnownIpv4Header) {
    // 192.168.0.1 -> 192.168.0.199, UDP, total length 0x73, DF: checksum b861.
    std::vector<uint8_t> h = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                              0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    EXPECT_EQ(ipv4_header_checksum(h), 0xb861);
    EXPECT_EQ(checksum_fold(checksum_add(h)), 0xffff);  // a valid header sums to all ones
    h[10] = 0x12;  // the field itself is ignored
    h[11] = 0x34;
    EXPECT_EQ(ipv4_header_checksum(h), 0xb861);
    h[8] = 0x3f;  // TTL - 1
    EXPECT_NE(ipv4_header_checksum(h), 0xb861);
}

TEST(Checksum, OddLengthsAndAlignments) {
    std::mt19937 rng(7);
    std::vector<uint8_t> buf(300);
    for (auto& b : buf) {
        b = static_cast<uint8_t>(rng());
    }
    for (std::size_t off = 0; off < 9; ++off) {
        for (std::size_t len = 0; len + off <= buf.size(); ++len) {
            const std::vector<uint8_t> piece(buf.begin() + off, buf.begin() + off + len);
            ASSERT_EQ(checksum_fold(checksum_add({buf.data() + off, len})), naive_fold(piece))
                << "off " << off << " len " << len;
        }
    }
    EXPECT_EQ(checksum_fold(checksum_add(std::vector<uint8_t>{0xab})), 0xab00);  // odd byte is the high half
    EXPECT_EQ(checksum_add({}), 0u);
    EXPECT_EQ(checksum_add({}, 1234), 1234u);
}

TEST(Checksum, RandomDataMatchesNaive) {
    std::mt19937_64 rng(42);
    for (int round = 0; round < 200; ++round) {
        std::vector<uint8_t> b(rng() % 70000);
        for (auto& x : b) {
            x = static_cast<uint8_t>(rng());
        }
        ASSERT_EQ(checksum_fold(checksum_add(b)), naive_fold(b)) << b.size();
    }
    // All-ones data exercises every carry.
    const std::vector<uint8_t> ones(65535, 0xff);
    EXPECT_EQ(checksum_fold(checksum_add(ones)), naive_fold(ones));
}

TEST(Checksum, ChainsEvenPieces) {
    std::mt19937 rng(3);
    std::vector<uint8_t> b(1001);
    for (auto& x : b) {
        x = static_cast<uint8_t>(rng());
    }
    for (std::size_t cut = 0; cut <= b.size(); cut += 2) {
        const uint64_t s = checksum_add({b.data() + cut, b.size() - cut}, checksum_add({b.data(), cut}));
        ASSERT_EQ(checksum_fold(s), naive_fold(b)) << cut;
    }
}

TEST(Checksum, Fold) {
    EXPECT_EQ(checksum_fold(0), 0);
    EXPECT_EQ(checksum_fold(0xffff), 0xffff);
    EXPECT_EQ(checksum_fold(0x1fffe), 0xffff);
    EXPECT_EQ(checksum_fold(0x10000), 1);
    EXPECT_EQ(checksum_fold(0xffffffffffffffffULL), 0xffff);
    EXPECT_EQ(checksum_fold(0x0001000100010001ULL), 4);
    EXPECT_EQ(checksum_finish(0xffff), 0xffff);  // zero result is sent as all ones
    EXPECT_EQ(checksum_finish(0x1234), static_cast<uint16_t>(~0x1234));
}

TEST(Checksum, PseudoHeaders) {
    const std::vector<uint8_t> s4 = {10, 0, 0, 1};
    const std::vector<uint8_t> d4 = {192, 168, 77, 254};
    // IPv4 pseudo-header as bytes: src, dst, 0, proto, length.
    std::vector<uint8_t> p4 = s4;
    p4.insert(p4.end(), d4.begin(), d4.end());
    p4.insert(p4.end(), {0, 6, 0x05, 0xdc});
    EXPECT_EQ(checksum_fold(pseudo_header_sum(s4, d4, 6, 1500)), naive_fold(p4));

    std::vector<uint8_t> s6(16), d6(16);
    for (int i = 0; i < 16; ++i) {
        s6[i] = static_cast<uint8_t>(0x20 + i * 7);
        d6[i] = static_cast<uint8_t>(0xfe - i * 3);
    }
    // IPv6: src, dst, 32-bit length, 3 zeros, next header.
    std::vector<uint8_t> p6 = s6;
    p6.insert(p6.end(), d6.begin(), d6.end());
    p6.insert(p6.end(), {0x00, 0x01, 0x00, 0x10, 0, 0, 0, 17});
    EXPECT_EQ(checksum_fold(pseudo_header_sum(s6, d6, 17, 0x10010)), naive_fold(p6));
}

TEST(Checksum, ByteOrderHelpers) {
    uint8_t b[4] = {};
    store_be32(b, 0x01020304);
    EXPECT_EQ(b[0], 1);
    EXPECT_EQ(b[3], 4);
    EXPECT_EQ(load_be32(b), 0x01020304u);
    store_be16(b, 0xa1b2);
    EXPECT_EQ(b[0], 0xa1);
    EXPECT_EQ(load_be16(b), 0xa1b2);
}

}  // namespace
}  // namespace meshfwd::dataplane
