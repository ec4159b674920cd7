// handshake_limiter: the kernel's per-source token bucket (20/s, burst 5). Test thread only.
#include "control/handshake_limiter.h"

#include <gtest/gtest.h>

namespace meshfwd::control {
namespace {

using namespace std::chrono_literals;

ip_address addr(const char* text) { return *ip_address::parse(text); }

TEST(handshake_limiter, burst_then_refill_per_source) {
    handshake_limiter limiter;
    const crypto::mono_time t0{std::chrono::seconds(1000)};
    const ip_address a = addr("192.0.2.1");
    for (unsigned i = 0; i < handshake_limiter::burst; ++i) {
        EXPECT_TRUE(limiter.allow(a, t0)) << i;
    }
    EXPECT_FALSE(limiter.allow(a, t0));
    // Another source has its own bucket.
    EXPECT_TRUE(limiter.allow(addr("192.0.2.2"), t0));
    // One packet's worth of time (50 ms) buys exactly one more.
    EXPECT_TRUE(limiter.allow(a, t0 + 50ms));
    EXPECT_FALSE(limiter.allow(a, t0 + 50ms));
}

TEST(handshake_limiter, ipv6_sources_share_their_64) {
    handshake_limiter limiter;
    const crypto::mono_time t0{std::chrono::seconds(1000)};
    for (unsigned i = 0; i < handshake_limiter::burst; ++i) {
        EXPECT_TRUE(limiter.allow(addr("2001:db8::1"), t0));
    }
    EXPECT_FALSE(limiter.allow(addr("2001:db8::ffff"), t0));      // same /64
    EXPECT_TRUE(limiter.allow(addr("2001:db8:0:1::1"), t0));      // another /64
}

TEST(handshake_limiter, idle_sources_are_forgotten) {
    handshake_limiter limiter;
    const crypto::mono_time t0{std::chrono::seconds(1000)};
    EXPECT_TRUE(limiter.allow(addr("192.0.2.1"), t0));
    EXPECT_TRUE(limiter.allow(addr("192.0.2.2"), t0));
    EXPECT_EQ(limiter.tracked(), 2u);
    EXPECT_TRUE(limiter.allow(addr("192.0.2.3"), t0 + 3s));
    EXPECT_EQ(limiter.tracked(), 1u);
}

}  // namespace
}  // namespace meshfwd::control
