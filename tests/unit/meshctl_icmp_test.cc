// meshctl's ICMP echo builder and reply parser: RFC 1071 checksums, IPv4 and IPv6 (with the
// ICMPv6 pseudo-header), WireGuard's zero padding after the IP packet, and rejection of every
// truncation and of corrupted checksums.
#include "tools/meshctl_icmp.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace meshfwd::meshctl {
namespace {

ip_address addr(const char* text) { return ip_address::parse(text).value(); }

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
void put16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

// Turns our echo request into the reply a peer's IP stack would send: addresses swapped,
// echo-reply type, checksums recomputed (IPv6: over the pseudo-header).
std::vector<uint8_t> reply_to(std::vector<uint8_t> pkt, bool v6) {
    const size_t ip_len = v6 ? icmp::ipv6_header_len : icmp::ipv4_header_len;
    const size_t addr_off = v6 ? 8 : 12;
    const size_t addr_len = v6 ? 16 : 4;
    std::array<uint8_t, 16> tmp{};
    std::copy_n(pkt.begin() + addr_off, addr_len, tmp.begin());
    std::copy_n(pkt.begin() + addr_off + addr_len, addr_len, pkt.begin() + addr_off);
    std::copy_n(tmp.begin(), addr_len, pkt.begin() + addr_off + addr_len);
    uint8_t* m = pkt.data() + ip_len;
    m[0] = v6 ? icmp::type_echo_reply_v6 : icmp::type_echo_reply_v4;
    put16(m + 2, 0);
    const std::span<const uint8_t> msg(m, pkt.size() - ip_len);
    uint32_t sum = 0;
    if (v6) {
        sum = checksum_add(sum, std::span<const uint8_t>(pkt.data() + 8, 32));
        const uint8_t tail[8] = {0, 0, static_cast<uint8_t>(msg.size() >> 8), static_cast<uint8_t>(msg.size()), 0, 0, 0,
                                 icmp::proto_icmpv6};
        sum = checksum_add(sum, tail);
    } else {
        put16(pkt.data() + 10, 0);
        put16(pkt.data() + 10, checksum_fold(checksum_add(0, std::span<const uint8_t>(pkt.data(), ip_len))));
    }
    put16(m + 2, checksum_fold(checksum_add(sum, msg)));
    return pkt;
}

std::vector<uint8_t> request(const char* src, const char* dst, uint16_t id, uint16_t seq) {
    std::array<uint8_t, icmp::default_payload_len> payload{};
    for (size_t i = 0; i < payload.size(); ++i) {
        payload[i] = static_cast<uint8_t>(i);
    }
    std::vector<uint8_t> out(128);
    const size_t n = build_echo_request(out, addr(src), addr(dst), id, seq, payload);
    out.resize(n);
    return out;
}

TEST(Checksum, Rfc1071Example) {
    // RFC 1071 section 3: these bytes sum to 0xddf2; the checksum is its complement.
    const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(checksum_fold(checksum_add(0, data)), static_cast<uint16_t>(~0xddf2));
    // Odd length: the last byte is padded with a zero on the right.
    const uint8_t odd[] = {0x01};
    EXPECT_EQ(checksum_fold(checksum_add(0, odd)), static_cast<uint16_t>(~0x0100));
}

TEST(EchoRequest, Ipv4HeaderAndChecksums) {
    const auto pkt = request("10.0.0.1", "10.0.0.2", 0x1234, 7);
    ASSERT_EQ(pkt.size(), icmp::ipv4_header_len + icmp::echo_header_len + icmp::default_payload_len);
    EXPECT_EQ(pkt[0], 0x45);
    EXPECT_EQ(get16(&pkt[2]), pkt.size());
    EXPECT_EQ(pkt[8], icmp::default_ttl);
    EXPECT_EQ(pkt[9], icmp::proto_icmp);
    EXPECT_EQ(checksum_fold(checksum_add(0, std::span<const uint8_t>(pkt.data(), 20))), 0);
    const std::span<const uint8_t> msg(pkt.data() + 20, pkt.size() - 20);
    EXPECT_EQ(msg[0], icmp::type_echo_request_v4);
    EXPECT_EQ(get16(&msg[4]), 0x1234);
    EXPECT_EQ(get16(&msg[6]), 7);
    EXPECT_EQ(checksum_fold(checksum_add(0, msg)), 0);
}

TEST(EchoRequest, MixedFamiliesAndShortBufferRefused) {
    std::vector<uint8_t> out(128);
    EXPECT_EQ(build_echo_request(out, addr("10.0.0.1"), addr("fd00::2"), 1, 1, {}), 0u);
    std::vector<uint8_t> tiny(20);
    EXPECT_EQ(build_echo_request(tiny, addr("10.0.0.1"), addr("10.0.0.2"), 1, 1, {}), 0u);
}

class EchoReply : public ::testing::TestWithParam<bool> {};

TEST_P(EchoReply, ParsesAReplyWithPaddingAndRefusesDamage) {
    const bool v6 = GetParam();
    const auto req = v6 ? request("fd00::1", "fd00::2", 0xbeef, 3) : request("10.0.0.1", "10.0.0.2", 0xbeef, 3);
    auto reply = reply_to(req, v6);

    auto parsed = parse_echo_reply(reply);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->from, v6 ? addr("fd00::2") : addr("10.0.0.2"));
    EXPECT_EQ(parsed->to, v6 ? addr("fd00::1") : addr("10.0.0.1"));
    EXPECT_EQ(parsed->id, 0xbeef);
    EXPECT_EQ(parsed->seq, 3);
    EXPECT_EQ(parsed->icmp_len, icmp::echo_header_len + icmp::default_payload_len);
    ASSERT_EQ(parsed->payload.size(), icmp::default_payload_len);
    EXPECT_EQ(parsed->payload[5], 5);

    // WireGuard pads the decrypted packet with zeros to a multiple of 16.
    auto padded = reply;
    padded.resize((padded.size() + 15) / 16 * 16 + 16, 0);
    ASSERT_TRUE(parse_echo_reply(padded).has_value());
    EXPECT_EQ(parse_echo_reply(padded)->payload.size(), icmp::default_payload_len);

    // Our own request is not a reply.
    EXPECT_FALSE(parse_echo_reply(req).has_value());

    // Every truncation is refused without reading past the end.
    for (size_t n = 0; n < reply.size(); ++n) {
        std::vector<uint8_t> cut(reply.begin(), reply.begin() + static_cast<std::ptrdiff_t>(n));
        EXPECT_FALSE(parse_echo_reply(cut).has_value()) << "length " << n;
    }
    // A flipped bit anywhere in the ICMP message breaks its checksum.
    const size_t ip_len = v6 ? icmp::ipv6_header_len : icmp::ipv4_header_len;
    for (size_t i = ip_len; i < reply.size(); ++i) {
        auto bad = reply;
        bad[i] ^= 0x01;
        EXPECT_FALSE(parse_echo_reply(bad).has_value()) << "byte " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(Families, EchoReply, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? std::string("ipv6") : std::string("ipv4"); });

} // namespace
} // namespace meshfwd::meshctl
