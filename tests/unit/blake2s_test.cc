// Unit tests for crypto/blake2s: the 512 BLAKE2s KATs (keyed and unkeyed, one-shot and incremental),
// HMAC-BLAKE2s against an independent implementation, and WireGuard's KDF. Test thread only.
#include "crypto/blake2s.h"

#include "crypto/x25519.h"
#include "tests/unit/test_data.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace meshfwd::crypto {
namespace {

using test::hex_field;
using test::to_hex;

class blake2s_test : public ::testing::Test {
protected:
    static void SetUpTestSuite() { ASSERT_TRUE(crypto_init()); }
};

TEST_F(blake2s_test, kat_one_shot_and_incremental) {
    const nlohmann::json doc = test::load_json("blake2s-kat.json");
    ASSERT_TRUE(doc.is_array());
    std::size_t keyed = 0;
    std::size_t unkeyed = 0;
    for (const auto& tc : doc) {
        ASSERT_EQ(tc.at("hash").get<std::string>(), "blake2s");
        const std::vector<uint8_t> in = hex_field(tc, "in");
        const std::vector<uint8_t> key = hex_field(tc, "key");
        const std::string expected = tc.at("out").get<std::string>();
        ASSERT_EQ(expected.size(), 64u);
        (key.empty() ? unkeyed : keyed) += 1;

        hash32 out{};
        blake2s(out, in, key);
        EXPECT_EQ(to_hex(out), expected) << "len " << in.size() << (key.empty() ? " unkeyed" : " keyed");

        // Incremental: split the input at every position into two updates, and also feed it
        // byte by byte; all must equal the one-shot answer.
        for (std::size_t split = 0; split <= in.size(); ++split) {
            hash32 part{};
            blake2s_hasher hasher(blake2s_hash_size, key);
            hasher.update(std::span<const uint8_t>(in).first(split)).update(std::span<const uint8_t>(in).subspan(split));
            hasher.final(part);
            ASSERT_EQ(to_hex(part), expected) << "len " << in.size() << " split " << split;
        }
        hash32 bytewise{};
        blake2s_hasher hasher(blake2s_hash_size, key);
        for (std::size_t i = 0; i < in.size(); ++i) {
            hasher.update(std::span<const uint8_t>(&in[i], 1));
        }
        hasher.final(bytewise);
        EXPECT_EQ(to_hex(bytewise), expected) << "bytewise len " << in.size();
    }
    EXPECT_EQ(unkeyed, 256u);
    EXPECT_EQ(keyed, 256u);
}

TEST_F(blake2s_test, short_output_is_a_different_hash) {
    // BLAKE2s-128 (WireGuard's MAC size) encodes the output length in the parameter block, so it is
    // not a prefix of BLAKE2s-256; check determinism and that difference.
    const std::vector<uint8_t> in = {'a', 'b', 'c'};
    mac16 a{};
    mac16 b{};
    blake2s(a, in);
    blake2s_hasher(16).update(in).final(b);
    EXPECT_EQ(a, b);
    hash32 full{};
    blake2s(full, in);
    EXPECT_NE(to_hex(a), to_hex(std::span<const uint8_t>(full).first(16)));
}

TEST_F(blake2s_test, hmac_matches_independent_implementation) {
    const nlohmann::json doc = test::load_json("hmac_blake2s.json");
    ASSERT_FALSE(doc.is_null());
    ASSERT_GE(doc.at("tests").size(), 6u);
    for (const auto& tc : doc.at("tests")) {
        const std::vector<uint8_t> key = hex_field(tc, "key");
        const std::vector<uint8_t> in = hex_field(tc, "input");
        hash32 out{};
        hmac_blake2s(out, key, in);
        EXPECT_EQ(to_hex(out), tc.at("hmac").get<std::string>()) << tc.at("comment").get<std::string>();
    }
}

TEST_F(blake2s_test, hmac_long_key_is_hashed_first) {
    std::vector<uint8_t> long_key(100);
    for (std::size_t i = 0; i < long_key.size(); ++i) {
        long_key[i] = static_cast<uint8_t>(i * 7);
    }
    hash32 hashed_key{};
    blake2s(hashed_key, long_key);
    const std::vector<uint8_t> in = {1, 2, 3};
    hash32 a{};
    hash32 b{};
    hmac_blake2s(a, long_key, in);
    hmac_blake2s(b, hashed_key, in);
    EXPECT_EQ(a, b);
}

TEST_F(blake2s_test, kdf_matches_wireguard_vectors) {
    const nlohmann::json doc = test::load_json("wireguard_kdf.json");
    ASSERT_FALSE(doc.is_null());
    ASSERT_EQ(doc.at("tests").size(), 3u);
    for (const auto& tc : doc.at("tests")) {
        const std::vector<uint8_t> key = hex_field(tc, "key");
        const std::vector<uint8_t> input = hex_field(tc, "input");
        const std::string tau[3] = {tc.at("tau1").get<std::string>(), tc.at("tau2").get<std::string>(),
                                    tc.at("tau3").get<std::string>()};
        // KDF1, KDF2 and KDF3 each return a prefix of the same sequence.
        for (std::size_t n = 1; n <= 3; ++n) {
            secret32 outs[3];
            secret32* ptrs[3] = {&outs[0], &outs[1], &outs[2]};
            kdf(std::span<secret32* const>(ptrs, n), key, input);
            for (std::size_t i = 0; i < n; ++i) {
                EXPECT_EQ(to_hex(outs[i].span()), tau[i]) << "KDF" << n << " tau" << (i + 1);
            }
            for (std::size_t i = n; i < 3; ++i) {
                EXPECT_TRUE(outs[i].is_zero()) << "KDF" << n << " wrote past its outputs";
            }
        }
        // The definition, spelled out with hmac_blake2s: tau1 = HMAC(HMAC(key, input), 0x01).
        hash32 prk{};
        hmac_blake2s(prk, key, input);
        const uint8_t one = 1;
        hash32 tau1{};
        hmac_blake2s(tau1, prk, std::span<const uint8_t>(&one, 1));
        EXPECT_EQ(to_hex(tau1), tau[0]);
    }
}

} // namespace
} // namespace meshfwd::crypto
