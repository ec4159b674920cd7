// Unit tests for lib/stun: RFC 5769 section 2.2 and 2.3 known answers (XOR-MAPPED-ADDRESS and
// FINGERPRINT, alongside SOFTWARE and MESSAGE-INTEGRITY), the Binding builders, and malformed
// input refused with the right reason. Test thread only.
#include "lib/stun.h"

#include <gtest/gtest.h>

#include <vector>

namespace meshfwd::stun {
namespace {

// RFC 5769 2.2: Binding success response, IPv4, with SOFTWARE, XOR-MAPPED-ADDRESS,
// MESSAGE-INTEGRITY and FINGERPRINT.
const std::vector<uint8_t> rfc5769_ipv4_response = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96};

// RFC 5769 2.3: the same for IPv6.
const std::vector<uint8_t> rfc5769_ipv6_response = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14,
    0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75,
    0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c};

const std::array<uint8_t, 12> rfc5769_txid = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

TEST(stun_test, crc32_known_answer) {
    const std::string s = "123456789";
    EXPECT_EQ(crc32({reinterpret_cast<const uint8_t*>(s.data()), s.size()}), 0xCBF43926u);
}

TEST(stun_test, rfc5769_ipv4_response) {
    ASSERT_TRUE(is_stun_message(rfc5769_ipv4_response));
    message m;
    ASSERT_EQ(parse(rfc5769_ipv4_response, m), parse_result::ok);
    EXPECT_EQ(m.type, binding_success);
    EXPECT_EQ(m.transaction_id, rfc5769_txid);
    EXPECT_TRUE(m.has_fingerprint);
    ASSERT_EQ(m.attribute_count, 4u);
    EXPECT_EQ(m.attributes[0].type, attr::software);
    EXPECT_EQ(std::string(m.attributes[0].value.begin(), m.attributes[0].value.end()), "test vector");
    EXPECT_EQ(m.attributes[2].type, attr::message_integrity);
    EXPECT_EQ(m.attributes[2].value.size(), 20u);
    const auto mapped = xor_mapped_address(m);
    ASSERT_TRUE(mapped.has_value());
    EXPECT_EQ(mapped->to_string(), "192.0.2.1:32853");
    EXPECT_FALSE(mapped_address(m).has_value());
}

TEST(stun_test, rfc5769_ipv6_response) {
    ASSERT_TRUE(is_stun_message(rfc5769_ipv6_response));
    message m;
    ASSERT_EQ(parse(rfc5769_ipv6_response, m), parse_result::ok);
    EXPECT_TRUE(m.has_fingerprint);
    const auto mapped = xor_mapped_address(m);
    ASSERT_TRUE(mapped.has_value());
    EXPECT_EQ(mapped->to_string(), "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
}

TEST(stun_test, fingerprint_mismatch_refused) {
    for (const auto* vec : {&rfc5769_ipv4_response, &rfc5769_ipv6_response}) {
        auto bad = *vec;
        bad[30] ^= 0x01; // inside SOFTWARE: covered by the CRC
        message m;
        EXPECT_EQ(parse(bad, m), parse_result::bad_fingerprint);
        auto bad_crc = *vec;
        bad_crc.back() ^= 0x80;
        EXPECT_EQ(parse(bad_crc, m), parse_result::bad_fingerprint);
    }
}

TEST(stun_test, builds_binding_success_that_parses_back) {
    const std::array<uint8_t, 12> txid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    for (const char* text : {"198.51.100.7:51820", "[2001:db8::42]:4242"}) {
        const auto ep = endpoint::parse(text);
        ASSERT_TRUE(ep.ok()) << text;
        std::array<uint8_t, max_binding_success_size> buf{};
        const std::size_t n = build_binding_success(buf, txid, *ep);
        ASSERT_GT(n, 0u);
        const std::span<const uint8_t> out(buf.data(), n);
        ASSERT_TRUE(is_stun_message(out));
        message m;
        ASSERT_EQ(parse(out, m), parse_result::ok);
        EXPECT_EQ(m.type, binding_success);
        EXPECT_EQ(m.transaction_id, txid);
        EXPECT_TRUE(m.has_fingerprint);
        const auto back = xor_mapped_address(m);
        ASSERT_TRUE(back.has_value());
        EXPECT_EQ(*back, *ep);
    }
}

TEST(stun_test, v4_mapped_peer_answered_as_ipv4) {
    const auto ep = endpoint::parse("[::ffff:192.0.2.9]:1000");
    ASSERT_TRUE(ep.ok());
    std::array<uint8_t, max_binding_success_size> buf{};
    const std::size_t n = build_binding_success(buf, {}, *ep);
    message m;
    ASSERT_EQ(parse(std::span<const uint8_t>(buf.data(), n), m), parse_result::ok);
    EXPECT_EQ(xor_mapped_address(m)->to_string(), "192.0.2.9:1000");
}

TEST(stun_test, builder_refuses_small_buffer) {
    std::array<uint8_t, 20> small{};
    EXPECT_EQ(build_binding_success(small, {}, endpoint(ip_address::v4(0x7f000001), 1)), 0u);
    EXPECT_EQ(build_binding_request(small, {}), 0u);
}

TEST(stun_test, binding_request_round_trip) {
    const std::array<uint8_t, 12> txid = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    std::array<uint8_t, binding_request_size> buf{};
    ASSERT_EQ(build_binding_request(buf, txid), binding_request_size);
    message m;
    ASSERT_EQ(parse(buf, m), parse_result::ok);
    EXPECT_EQ(m.type, binding_request);
    EXPECT_TRUE(m.has_fingerprint);
}

TEST(stun_test, malformed_messages_named) {
    message m;
    std::vector<uint8_t> v(rfc5769_ipv4_response.begin(), rfc5769_ipv4_response.begin() + 19);
    EXPECT_EQ(parse(v, m), parse_result::too_short);
    EXPECT_FALSE(is_stun_message(v));

    auto bad_cookie = rfc5769_ipv4_response;
    bad_cookie[4] = 0x22;
    EXPECT_EQ(parse(bad_cookie, m), parse_result::not_stun);
    EXPECT_FALSE(is_stun_message(bad_cookie));

    auto top_bits = rfc5769_ipv4_response;
    top_bits[0] |= 0x80;
    EXPECT_EQ(parse(top_bits, m), parse_result::not_stun);

    auto short_datagram = rfc5769_ipv4_response;
    short_datagram.pop_back();
    EXPECT_EQ(parse(short_datagram, m), parse_result::bad_length);
    EXPECT_FALSE(is_stun_message(short_datagram));

    // A header length that is right for the datagram but an attribute longer than what is left.
    std::vector<uint8_t> overrun = {0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                    0x80, 0x22, 0x00, 0x09, 'a', 'b', 'c', 'd'};
    EXPECT_TRUE(is_stun_message(overrun));
    EXPECT_EQ(parse(overrun, m), parse_result::truncated_attribute);

    // Something after FINGERPRINT.
    std::array<uint8_t, binding_request_size> req{};
    ASSERT_GT(build_binding_request(req, {}), 0u);
    std::vector<uint8_t> after(req.begin(), req.end());
    after.insert(after.end(), {0x80, 0x22, 0x00, 0x00});
    after[3] = 12;
    // Re-sign the FINGERPRINT over the header with its new length, so only the order is wrong.
    const uint32_t fp = crc32(std::span<const uint8_t>(after.data(), header_size)) ^ fingerprint_xor;
    for (int i = 0; i < 4; ++i) {
        after[24 + i] = static_cast<uint8_t>(fp >> (24 - 8 * i));
    }
    EXPECT_EQ(parse(after, m), parse_result::after_fingerprint);
}

TEST(stun_test, too_many_attributes_refused) {
    std::vector<uint8_t> msg = {0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    for (std::size_t i = 0; i < max_attributes + 1; ++i) {
        msg.insert(msg.end(), {0x80, 0x22, 0x00, 0x00}); // empty SOFTWARE
    }
    const std::size_t len = msg.size() - header_size;
    msg[2] = static_cast<uint8_t>(len >> 8);
    msg[3] = static_cast<uint8_t>(len);
    message m;
    EXPECT_EQ(parse(msg, m), parse_result::too_many_attributes);
}

TEST(stun_test, answers_binding_requests_only) {
    const std::array<uint8_t, 12> txid = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
    std::array<uint8_t, binding_request_size> req{};
    ASSERT_GT(build_binding_request(req, txid), 0u);
    const endpoint from(ip_address::v4(0xcb007105), 40000); // 203.0.113.5
    std::array<uint8_t, max_binding_success_size> out{};
    parse_result why = parse_result::too_short;
    const std::size_t n = answer_binding_request(req, from, out, &why);
    ASSERT_GT(n, 0u);
    EXPECT_EQ(why, parse_result::ok);
    message m;
    ASSERT_EQ(parse(std::span<const uint8_t>(out.data(), n), m), parse_result::ok);
    EXPECT_EQ(m.transaction_id, txid);
    EXPECT_EQ(xor_mapped_address(m), from);
    // A response is not answered; garbage says why.
    EXPECT_EQ(answer_binding_request(rfc5769_ipv4_response, from, out, &why), 0u);
    EXPECT_EQ(why, parse_result::ok);
    const std::array<uint8_t, 4> junk = {1, 2, 3, 4};
    EXPECT_EQ(answer_binding_request(junk, from, out, &why), 0u);
    EXPECT_EQ(why, parse_result::too_short);
}

TEST(stun_test, wireguard_messages_are_not_stun) {
    // A WireGuard handshake initiation starts 01 00 00 00 and is 148 bytes.
    std::vector<uint8_t> wg(148, 0);
    wg[0] = 1;
    EXPECT_FALSE(is_stun_message(wg));
}

} // namespace
} // namespace meshfwd::stun
