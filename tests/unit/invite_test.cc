// Unit tests for coord/invite: round trip, forged codes (payload or signature byte flipped, signed
// by another network's key) said to be forged, and truncated, oversized and garbage codes said to
// be malformed. Test thread only.
#include "coord/invite.h"

#include <gtest/gtest.h>
#include <sodium.h>

namespace meshfwd::coord {
namespace {

class invite_test : public ::testing::Test {
protected:
    static void SetUpTestSuite() { ASSERT_GE(sodium_init(), 0); }
    void SetUp() override {
        make_invite_keypair(pub, sec);
        make_invite_keypair(other_pub, other_sec);
        inv.invite_id = new_invite_id();
        inv.network_id = "home";
        inv.server_urls = {"https://coord.example:8443", "http://198.51.100.2:8080"};
        inv.server_public_key.fill(0x5a);
        inv.expires_unix = 1'900'000'000;
    }
    std::vector<uint8_t> pub, sec, other_pub, other_sec;
    invite inv;
};

// Flips one bit of the character at `at` within the base64url alphabet (keeps it decodable).
std::string flip(std::string code, std::size_t at) {
    code[at] = code[at] == 'A' ? 'B' : 'A';
    return code;
}

TEST_F(invite_test, round_trip) {
    const std::string code = encode_invite(inv, sec);
    ASSERT_FALSE(code.empty());
    EXPECT_EQ(code.rfind("mfinv1.", 0), 0u);
    EXPECT_EQ(inv.invite_id.size(), 22u);
    for (auto decoded : {decode_invite(code), verify_invite(code, pub), verify_invite("  " + code + "\n", pub)}) {
        ASSERT_TRUE(decoded.ok()) << decoded.error_message();
        EXPECT_EQ(decoded->invite_id, inv.invite_id);
        EXPECT_EQ(decoded->network_id, "home");
        EXPECT_EQ(decoded->server_urls, inv.server_urls);
        EXPECT_EQ(decoded->server_public_key, inv.server_public_key);
        EXPECT_EQ(decoded->expires_unix, 1'900'000'000);
    }
    EXPECT_NE(new_invite_id(), new_invite_id());
}

TEST_F(invite_test, forged_codes_said_forged) {
    const std::string code = encode_invite(inv, sec);
    const std::size_t dot = code.rfind('.');
    // A byte in the payload: the server key region, so the payload still decodes.
    const std::string payload_flip = flip(code, dot - 20);
    ASSERT_TRUE(decode_invite(payload_flip).ok());
    const std::string sig_flip = flip(code, dot + 5);
    const std::string other_network = encode_invite(inv, other_sec);
    for (const auto& forged : {payload_flip, sig_flip, other_network}) {
        auto v = verify_invite(forged, pub);
        ASSERT_FALSE(v.ok());
        EXPECT_NE(v.error_message().find("forged"), std::string::npos) << v.error_message();
    }
}

TEST_F(invite_test, malformed_codes_said_malformed) {
    const std::string code = encode_invite(inv, sec);
    const std::size_t dot = code.rfind('.');
    const std::vector<std::string> bad = {
        "",
        "garbage",
        "mfinv2." + code.substr(7),
        code.substr(0, dot),                          // no signature
        code.substr(0, code.size() - 3),              // truncated signature
        code.substr(0, 20) + code.substr(dot),        // truncated payload
        code + "AAAA",                                // signature too long
        std::string(max_invite_code + 1, 'A'),        // oversized
        "mfinv1." + std::string(5000, 'A') + ".x",    // oversized payload
        "mfinv1.\xff\xfe." + code.substr(dot + 1),    // not base64url
        "mfinv1.AA." + code.substr(dot + 1),          // payload of one byte
        code.substr(0, dot) + "=" + code.substr(dot), // padding
    };
    for (const auto& b : bad) {
        auto d = decode_invite(b);
        ASSERT_FALSE(d.ok()) << b;
        EXPECT_NE(d.error_message().find("malformed"), std::string::npos) << d.error_message();
        EXPECT_FALSE(verify_invite(b, pub).ok());
    }
}

TEST_F(invite_test, encode_refuses_bad_fields) {
    auto bad = inv;
    bad.network_id = "Not An Id";
    EXPECT_EQ(encode_invite(bad, sec), "");
    bad = inv;
    bad.server_urls = {"ftp://x"};
    EXPECT_EQ(encode_invite(bad, sec), "");
    bad = inv;
    bad.server_urls.clear();
    EXPECT_EQ(encode_invite(bad, sec), "");
    EXPECT_EQ(encode_invite(inv, std::vector<uint8_t>(10)), "");
    EXPECT_FALSE(verify_invite(encode_invite(inv, sec), std::vector<uint8_t>(31)).ok());
}

} // namespace
} // namespace meshfwd::coord
