// Cookie path: mac1/mac2 layout, the under-load exchange, forged replies, secret rotation.
#include "crypto/blake2s.h"
#include "crypto/cookie.h"
#include "noise_test_util.h"
#include "test_data.h"

#include <gtest/gtest.h>

namespace meshfwd::crypto {
namespace {

using namespace std::chrono_literals;

const std::array<uint8_t, 4> ip4 = {192, 0, 2, 7};

TEST(CookieSource, Encoding) {
    const auto s = cookie_source::from(ip4, 51820);
    EXPECT_EQ(test::to_hex(s.span()), "c0000207ca6c");  // port big-endian (0xca6c)
    std::array<uint8_t, 16> ip6{};
    ip6[0] = 0x20;
    ip6[15] = 1;
    EXPECT_EQ(cookie_source::from(ip6, 1).size, 18u);
    EXPECT_EQ(cookie_source::from(std::span<const uint8_t>(ip6.data(), 5), 1).size, 2u);
}

TEST(Cookie, Mac1ChecksAndTruncation) {
    test::test_pair pair(1, 2);
    message_initiation init;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 9), handshake_reason::ok);
    EXPECT_EQ(pair.b.checker->check_mac1(as_bytes(init)), cookie_reason::bad_mac1);  // no macs yet
    pair.a.maker->add_macs(init, pair.t0);
    EXPECT_EQ(pair.b.checker->check_mac1(as_bytes(init)), cookie_reason::ok);
    // mac1 is for b's key only.
    EXPECT_EQ(pair.a.checker->check_mac1(as_bytes(init)), cookie_reason::bad_mac1);
    for (std::size_t i = 0; i < 132; i += 11) {
        message_initiation bad = init;
        as_writable_bytes(bad)[i] ^= 4;
        EXPECT_EQ(pair.b.checker->check_mac1(as_bytes(bad)), cookie_reason::bad_mac1) << i;
    }
    // mac2 is not covered by mac1.
    message_initiation m2 = init;
    m2.macs.mac2[3] ^= 1;
    EXPECT_EQ(pair.b.checker->check_mac1(as_bytes(m2)), cookie_reason::ok);
    EXPECT_EQ(pair.b.checker->check_mac1(as_bytes(init).first(31)), cookie_reason::truncated);
    EXPECT_EQ(pair.b.checker->check_macs(as_bytes(init).first(0), cookie_source::from(ip4, 1), pair.t0),
              cookie_reason::truncated);
}

TEST(Cookie, UnderLoadExchange) {
    test::test_pair pair(1, 2);
    const auto src = cookie_source::from(ip4, 40000);
    mono_time now = pair.t0 + 1s;

    // 1. First initiation carries no mac2: refused under load, answered with a cookie reply.
    message_initiation init;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 77), handshake_reason::ok);
    pair.a.maker->add_macs(init, now);
    EXPECT_EQ(pair.b.checker->check_macs(as_bytes(init), src, now), cookie_reason::no_cookie);
    message_cookie_reply reply;
    ASSERT_TRUE(pair.b.checker->create_cookie_reply(reply, as_bytes(init), init.sender_index.get(), src, now));
    EXPECT_EQ(reply.type.get(), 3u);
    EXPECT_EQ(reply.receiver_index.get(), 77u);
    message_cookie_reply parsed;
    ASSERT_EQ(parse_cookie_reply(as_bytes(reply), parsed), message_reason::ok);

    // 2. A forged / modified reply is refused and does not use up the mac1.
    for (std::size_t i = 8; i < 64; i += 9) {
        message_cookie_reply bad = reply;
        as_writable_bytes(bad)[i] ^= 0x10;
        EXPECT_EQ(pair.a.maker->consume_cookie_reply(bad, now), cookie_reason::bad_reply) << i;
    }
    // A reply encrypted by someone else (a's own checker, wrong key).
    message_cookie_reply foreign;
    ASSERT_TRUE(pair.a.checker->create_cookie_reply(foreign, as_bytes(init), 77, src, now));
    EXPECT_EQ(pair.a.maker->consume_cookie_reply(foreign, now), cookie_reason::bad_reply);

    // 3. The real one is accepted once.
    EXPECT_FALSE(pair.a.maker->has_fresh_cookie(now));
    EXPECT_EQ(pair.a.maker->consume_cookie_reply(reply, now), cookie_reason::ok);
    EXPECT_TRUE(pair.a.maker->has_fresh_cookie(now));
    EXPECT_EQ(pair.a.maker->consume_cookie_reply(reply, now), cookie_reason::unexpected_reply);

    // 4. The retried initiation carries a valid mac2 and is accepted.
    now += 2s;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 78), handshake_reason::ok);
    pair.a.maker->add_macs(init, now);
    EXPECT_NE(test::to_hex(init.macs.mac2), std::string(32, '0'));
    EXPECT_EQ(pair.b.checker->check_macs(as_bytes(init), src, now), cookie_reason::ok);
    // From another port it is not.
    EXPECT_EQ(pair.b.checker->check_macs(as_bytes(init), cookie_source::from(ip4, 40001), now),
              cookie_reason::no_cookie);
    const auto r = consume_initiation(pair.b.identity, init, pair.lookup_for_b(), now);
    ASSERT_EQ(r.reason, handshake_reason::ok);

    // mac2 = MAC(cookie, msg[0..132]) at offset 132, recomputed from the cookie b would make:
    // verify the layout by corrupting mac2 only.
    message_initiation bad2 = init;
    bad2.macs.mac2[0] ^= 1;
    EXPECT_EQ(pair.b.checker->check_macs(as_bytes(bad2), src, now), cookie_reason::no_cookie);

    // 5. The cookie also serves responses (b's cookie maker is separate; a's is per-peer).
    message_response resp;
    ASSERT_EQ(pair.b.hs->create_response(resp, 5), handshake_reason::ok);
    pair.b.maker->add_macs(resp, now);
    EXPECT_EQ(pair.a.checker->check_mac1(as_bytes(resp)), cookie_reason::ok);
}

TEST(Cookie, ReplyWithoutMac1SentIsUnexpected) {
    test::test_pair pair(1, 2);
    message_cookie_reply reply{};
    reply.type.set(3);
    EXPECT_EQ(pair.a.maker->consume_cookie_reply(reply, pair.t0), cookie_reason::unexpected_reply);
}

TEST(Cookie, CookieAgeAndSecretRotation) {
    test::test_pair pair(1, 2);
    const auto src = cookie_source::from(ip4, 5555);
    const mono_time t0 = pair.t0;  // checker secret born at t0

    message_initiation init;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 1), handshake_reason::ok);
    pair.a.maker->add_macs(init, t0);
    message_cookie_reply reply;
    ASSERT_TRUE(pair.b.checker->create_cookie_reply(reply, as_bytes(init), 1, src, t0 + 10s));
    ASSERT_EQ(pair.a.maker->consume_cookie_reply(reply, t0 + 10s), cookie_reason::ok);

    // Fresh for 120 - 5 = 115 s after receipt.
    EXPECT_TRUE(pair.a.maker->has_fresh_cookie(t0 + 10s + 114s));
    EXPECT_FALSE(pair.a.maker->has_fresh_cookie(t0 + 10s + 115s));

    // Within the secret's life the mac2 verifies.
    pair.a.maker->add_macs(init, t0 + 100s);
    EXPECT_EQ(pair.b.checker->check_macs(as_bytes(init), src, t0 + 100s), cookie_reason::ok);
    EXPECT_EQ(pair.b.checker->check_macs(as_bytes(init), src, t0 + 119s), cookie_reason::ok);
    EXPECT_EQ(pair.b.checker->secret_birth(), t0);
    // At 120 s the secret rotates: the same mac2 no longer verifies.
    EXPECT_EQ(pair.b.checker->check_macs(as_bytes(init), src, t0 + 120s), cookie_reason::no_cookie);
    EXPECT_EQ(pair.b.checker->secret_birth(), t0 + 120s);

    // The maker stops sending mac2 once its cookie is stale.
    pair.a.maker->add_macs(init, t0 + 10s + 116s);
    EXPECT_EQ(test::to_hex(init.macs.mac2), std::string(32, '0'));

    // A new reply after rotation restores the exchange.
    ASSERT_TRUE(pair.b.checker->create_cookie_reply(reply, as_bytes(init), 1, src, t0 + 130s));
    ASSERT_EQ(pair.a.maker->consume_cookie_reply(reply, t0 + 130s), cookie_reason::ok);
    pair.a.maker->add_macs(init, t0 + 131s);
    EXPECT_EQ(pair.b.checker->check_macs(as_bytes(init), src, t0 + 131s), cookie_reason::ok);
}

TEST(Cookie, ReasonNames) {
    EXPECT_EQ(to_string(cookie_reason::bad_reply), "bad_reply");
    EXPECT_EQ(n_cookie_reasons, 6u);
}

}  // namespace
}  // namespace meshfwd::crypto
