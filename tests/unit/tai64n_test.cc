// TAI64N: layout, whitening, ordering.
#include "crypto/tai64n.h"
#include "test_data.h"

#include <gtest/gtest.h>

#include <ctime>

namespace meshfwd::crypto {
namespace {

TEST(Tai64n, Layout) {
    const tai64n t = tai64n::from_unix(0, 0);
    EXPECT_EQ(test::to_hex(t.bytes), "400000000000000a00000000");
    const tai64n u = tai64n::from_unix(0x01020304, 0x0affffff);
    // 0x0affffff & ~(2^24 - 1) = 0x0a000000
    EXPECT_EQ(test::to_hex(u.bytes), "400000000102030e0a000000");
    EXPECT_EQ(u.seconds_label(), 0x400000000102030eULL);
    EXPECT_EQ(u.nanoseconds(), 0x0a000000u);
}

TEST(Tai64n, WhitenedToMultiplesOf2Pow24) {
    EXPECT_EQ(tai64n::from_unix(5, 123456789).nanoseconds(), 117440512u);
    EXPECT_EQ(tai64n::from_unix(5, 16777215).nanoseconds(), 0u);
    EXPECT_EQ(tai64n::from_unix(5, 16777216).nanoseconds(), 16777216u);
    EXPECT_EQ(tai64n::from_unix(5, 999999999).nanoseconds(), 989855744u);
    // Two stamps within the same 16.8 ms bucket are equal, so not "after".
    EXPECT_FALSE(tai64n::from_unix(5, 1).after(tai64n::from_unix(5, 2)));
}

TEST(Tai64n, Ordering) {
    const tai64n a = tai64n::from_unix(100, 0);
    const tai64n b = tai64n::from_unix(100, 1u << 24);
    const tai64n c = tai64n::from_unix(101, 0);
    EXPECT_TRUE(b.after(a));
    EXPECT_TRUE(c.after(b));
    EXPECT_FALSE(a.after(a));
    EXPECT_FALSE(a.after(c));
    EXPECT_TRUE(a.after(tai64n{}));  // zero (never accepted anything) is older than any stamp
    EXPECT_EQ(tai64n::from_bytes(c.bytes), c);
}

TEST(Tai64n, NowIsWallClock) {
    const auto before = static_cast<uint64_t>(std::time(nullptr));
    const tai64n n = tai64n::now();
    const auto after = static_cast<uint64_t>(std::time(nullptr));
    EXPECT_GE(n.seconds_label(), tai64n::base + before);
    EXPECT_LE(n.seconds_label(), tai64n::base + after);
    EXPECT_EQ(n.nanoseconds() & tai64n::whitener_mask, 0u);
    EXPECT_LT(n.nanoseconds(), 1000000000u);
}

}  // namespace
}  // namespace meshfwd::crypto
