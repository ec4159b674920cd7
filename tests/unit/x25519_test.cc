// Unit tests for crypto/x25519: RFC 7748 vectors, every Wycheproof X25519 case, and wg's base64
// key form. Test thread only.
#include "crypto/x25519.h"

#include "tests/unit/test_data.h"

#include <gtest/gtest.h>

#include <string>

namespace meshfwd::crypto {
namespace {

using test::from_hex_array;
using test::to_hex;

class x25519_test : public ::testing::Test {
protected:
    static void SetUpTestSuite() { ASSERT_TRUE(crypto_init()); }
};

secret32 scalar_from_hex(std::string_view hex) {
    const auto bytes = from_hex_array<32>(hex);
    return secret32(std::span<const uint8_t, 32>(bytes));
}

TEST_F(x25519_test, rfc7748_section_5_2_vectors) {
    const nlohmann::json doc = test::load_json("rfc7748_x25519.json");
    ASSERT_FALSE(doc.is_null());
    ASSERT_EQ(doc.at("x25519").size(), 2u);
    for (const auto& tc : doc.at("x25519")) {
        const secret32 scalar = scalar_from_hex(tc.at("scalar").get<std::string>());
        const public_key u = from_hex_array<32>(tc.at("u").get<std::string>());
        secret32 out;
        ASSERT_TRUE(x25519(out, scalar, u));
        EXPECT_EQ(to_hex(out.span()), tc.at("out").get<std::string>());
    }
}

TEST_F(x25519_test, rfc7748_section_5_2_iterated) {
    const nlohmann::json doc = test::load_json("rfc7748_x25519.json");
    ASSERT_FALSE(doc.is_null());
    const auto& it = doc.at("iterated");
    secret32 k = scalar_from_hex(it.at("start").get<std::string>());
    public_key u = from_hex_array<32>(it.at("start").get<std::string>());
    for (int i = 1; i <= 1000; ++i) {
        secret32 next;
        ASSERT_TRUE(x25519(next, k, u));
        std::copy(k.data(), k.data() + 32, u.begin());
        k = std::move(next);
        if (i == 1) {
            EXPECT_EQ(to_hex(k.span()), it.at("after_1").get<std::string>());
        }
    }
    EXPECT_EQ(to_hex(k.span()), it.at("after_1000").get<std::string>());
}

TEST_F(x25519_test, rfc7748_section_6_1_diffie_hellman) {
    const nlohmann::json doc = test::load_json("rfc7748_x25519.json");
    ASSERT_FALSE(doc.is_null());
    const auto& dh = doc.at("diffie_hellman");
    const secret32 alice = scalar_from_hex(dh.at("alice_private").get<std::string>());
    const secret32 bob = scalar_from_hex(dh.at("bob_private").get<std::string>());
    const public_key alice_pub = derive_public_key(alice);
    const public_key bob_pub = derive_public_key(bob);
    EXPECT_EQ(to_hex(alice_pub), dh.at("alice_public").get<std::string>());
    EXPECT_EQ(to_hex(bob_pub), dh.at("bob_public").get<std::string>());
    secret32 s1;
    secret32 s2;
    ASSERT_TRUE(x25519(s1, alice, bob_pub));
    ASSERT_TRUE(x25519(s2, bob, alice_pub));
    EXPECT_TRUE(s1 == s2);
    EXPECT_EQ(to_hex(s1.span()), dh.at("shared").get<std::string>());
}

// Wycheproof's "result" is "valid" or "acceptable" for every X25519 case (RFC 7748 defines an output
// for any input). Our x25519() adds WireGuard's rule: it returns false exactly when the shared secret
// is all zeros (the "ZeroSharedSecret" cases, low-order public keys); otherwise the output must match.
TEST_F(x25519_test, wycheproof_all_cases) {
    const nlohmann::json doc = test::load_json("wycheproof_x25519_test.json");
    ASSERT_FALSE(doc.is_null());
    std::size_t total = 0;
    std::size_t zero_cases = 0;
    for (const auto& group : doc.at("testGroups")) {
        ASSERT_EQ(group.at("curve").get<std::string>(), "curve25519");
        for (const auto& tc : group.at("tests")) {
            ++total;
            const int id = tc.at("tcId").get<int>();
            const std::string result = tc.at("result").get<std::string>();
            ASSERT_TRUE(result == "valid" || result == "acceptable") << "tcId " << id << ": " << result;
            const secret32 scalar = scalar_from_hex(tc.at("private").get<std::string>());
            const public_key point = from_hex_array<32>(tc.at("public").get<std::string>());
            const std::string shared = tc.at("shared").get<std::string>();
            const bool expect_zero = shared == std::string(64, '0');
            bool flagged_zero = false;
            for (const auto& flag : tc.at("flags")) {
                flagged_zero = flagged_zero || flag.get<std::string>() == "ZeroSharedSecret";
            }
            EXPECT_EQ(expect_zero, flagged_zero) << "tcId " << id;
            secret32 out;
            const bool ok = x25519(out, scalar, point);
            if (expect_zero) {
                ++zero_cases;
                EXPECT_FALSE(ok) << "tcId " << id << " (" << tc.at("comment").get<std::string>() << ")";
            } else {
                EXPECT_TRUE(ok) << "tcId " << id;
                EXPECT_EQ(to_hex(out.span()), shared) << "tcId " << id << " (" << tc.at("comment").get<std::string>()
                                                      << ")";
            }
        }
    }
    EXPECT_EQ(total, doc.at("numberOfTests").get<std::size_t>());
    EXPECT_EQ(total, 518u);
    EXPECT_EQ(zero_cases, 31u);
}

TEST_F(x25519_test, generated_keys_are_clamped_and_agree) {
    for (int i = 0; i < 16; ++i) {
        const secret32 a = generate_private_key();
        const secret32 b = generate_private_key();
        EXPECT_EQ(a.data()[0] & 7, 0);
        EXPECT_EQ(a.data()[31] & 0x80, 0);
        EXPECT_EQ(a.data()[31] & 0x40, 0x40);
        secret32 s1;
        secret32 s2;
        ASSERT_TRUE(x25519(s1, a, derive_public_key(b)));
        ASSERT_TRUE(x25519(s2, b, derive_public_key(a)));
        EXPECT_TRUE(s1 == s2);
        EXPECT_FALSE(s1.is_zero());
    }
}

TEST_F(x25519_test, clamp_matches_rfc7748_decode_scalar) {
    secret32 key;
    for (std::size_t i = 0; i < 32; ++i) {
        key.data()[i] = 0xff;
    }
    clamp_private_key(key);
    EXPECT_EQ(key.data()[0], 0xf8);
    EXPECT_EQ(key.data()[31], 0x7f);
    for (std::size_t i = 0; i < 32; ++i) {
        key.data()[i] = 0;
    }
    clamp_private_key(key);
    EXPECT_EQ(key.data()[31], 0x40);
}

TEST_F(x25519_test, base64_round_trip) {
    for (int i = 0; i < 64; ++i) {
        std::array<uint8_t, 32> key{};
        randombytes_buf(key.data(), key.size());
        const std::string text = key_to_base64(key);
        ASSERT_EQ(text.size(), 44u);
        EXPECT_EQ(text.back(), '=');
        const auto back = key_from_base64(text);
        ASSERT_TRUE(back.has_value());
        EXPECT_EQ(*back, key);
        // Surrounding whitespace (as in a key file with a newline) is accepted.
        EXPECT_EQ(key_from_base64("  " + text + "\n"), key);
        EXPECT_EQ(key_from_base64("\t" + text + "\r\n"), key);
    }
}

TEST_F(x25519_test, base64_known_keys) {
    // All-zero and all-0xff keys have fixed encodings.
    std::array<uint8_t, 32> zero{};
    EXPECT_EQ(key_to_base64(zero), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    std::array<uint8_t, 32> ones{};
    ones.fill(0xff);
    EXPECT_EQ(key_to_base64(ones), "//////////////////////////////////////////8=");
    EXPECT_EQ(key_from_base64("//////////////////////////////////////////8="), ones);
    // RFC 7748 section 6.1 Alice's public key, as `wg pubkey` would print it.
    const auto alice_pub = from_hex_array<32>("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    const std::string text = key_to_base64(alice_pub);
    EXPECT_EQ(text, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
    EXPECT_EQ(key_from_base64(text), alice_pub);
}

TEST_F(x25519_test, base64_rejects_bad_input) {
    std::array<uint8_t, 32> key{};
    randombytes_buf(key.data(), key.size());
    const std::string good = key_to_base64(key);
    ASSERT_TRUE(key_from_base64(good).has_value());

    // Wrong lengths: 43 and 45 characters.
    EXPECT_FALSE(key_from_base64(good.substr(0, 43)).has_value());
    EXPECT_FALSE(key_from_base64(good + "=").has_value());
    EXPECT_FALSE(key_from_base64(good + "A").has_value());
    EXPECT_FALSE(key_from_base64("A" + good).has_value());
    EXPECT_FALSE(key_from_base64("").has_value());
    EXPECT_FALSE(key_from_base64("   ").has_value());

    // Every byte outside standard base64 (URL-safe alphabet, punctuation, inner whitespace, NUL and
    // bytes >= 0x80, which libsodium 1.0.18's decoder alone would accept), at the first and a middle place.
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int value = 0; value < 256; ++value) {
        const char bad = static_cast<char>(value);
        if (alphabet.find(bad) != std::string::npos) {
            continue;
        }
        for (const std::size_t pos : {std::size_t{0}, std::size_t{10}, std::size_t{42}}) {
            std::string text = good;
            text[pos] = bad;
            EXPECT_FALSE(key_from_base64(text).has_value()) << "byte " << value << " at " << pos;
        }
    }
    // Padding in the middle.
    {
        std::string text = good;
        text[20] = '=';
        EXPECT_FALSE(key_from_base64(text).has_value());
    }

    // Valid base64 of 31 and 33 bytes: both are 44 characters long.
    std::array<uint8_t, 33> raw{};
    randombytes_buf(raw.data(), raw.size());
    char buf[64];
    sodium_bin2base64(buf, sizeof buf, raw.data(), 31, sodium_base64_VARIANT_ORIGINAL);
    ASSERT_EQ(std::string(buf).size(), 44u);
    EXPECT_FALSE(key_from_base64(buf).has_value()) << buf;
    sodium_bin2base64(buf, sizeof buf, raw.data(), 33, sodium_base64_VARIANT_ORIGINAL);
    ASSERT_EQ(std::string(buf).size(), 44u);
    EXPECT_FALSE(key_from_base64(buf).has_value()) << buf;

    // Non-canonical: the last character carries 2 unused bits that must be zero (wg rejects these too).
    EXPECT_FALSE(key_from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=").has_value());
    EXPECT_FALSE(key_from_base64("//////////////////////////////////////////9=").has_value());
}

} // namespace
} // namespace meshfwd::crypto
