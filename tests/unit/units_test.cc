// Tests for lib/units: durations and sizes.
#include "lib/units.h"

#include <gtest/gtest.h>

#include <string>

namespace meshfwd {
namespace {

using namespace std::chrono_literals;

std::chrono::nanoseconds dur_ok(std::string_view text) {
    auto r = parse_duration(text);
    EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error_message());
    return r.ok() ? *r : std::chrono::nanoseconds(-1);
}

std::string dur_err(std::string_view text) {
    auto r = parse_duration(text);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error_message();
}

uint64_t size_ok(std::string_view text) {
    auto r = parse_size(text);
    EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error_message());
    return r.ok() ? *r : ~uint64_t{0};
}

std::string size_err(std::string_view text) {
    auto r = parse_size(text);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error_message();
}

TEST(units, durations) {
    EXPECT_EQ(dur_ok("30s"), 30s);
    EXPECT_EQ(dur_ok("5m"), 5min);
    EXPECT_EQ(dur_ok("1h"), 1h);
    EXPECT_EQ(dur_ok("250ms"), 250ms);
    EXPECT_EQ(dur_ok("1h30m"), 90min);
    EXPECT_EQ(dur_ok("0s"), 0s);
    EXPECT_EQ(dur_ok("10us"), 10us);
    EXPECT_EQ(dur_ok("7ns"), 7ns);
    EXPECT_EQ(dur_ok("1s500ms"), 1500ms);
    EXPECT_EQ(dur_ok(" 25s "), 25s);
    EXPECT_EQ(dur_ok("2562047h"), 2562047h); // near the int64 nanosecond limit
}

TEST(units, duration_errors) {
    EXPECT_EQ(dur_err("30"), "duration '30' needs a unit: ms, s, m, h");
    EXPECT_EQ(dur_err("1h30"), "duration '1h30' needs a unit after 30: ms, s, m, h");
    EXPECT_EQ(dur_err("-5s"), "duration '-5s' must not be negative");
    EXPECT_EQ(dur_err(""), "duration is empty");
    EXPECT_EQ(dur_err("abc"), "duration 'abc' is not valid: expected a number followed by a unit (ms, s, m, h)");
    EXPECT_EQ(dur_err("5 s"), "duration '5 s' needs a unit after 5: ms, s, m, h");
    EXPECT_EQ(dur_err("5d"), "duration '5d' has an unknown unit 'd' (use ns, us, ms, s, m, h)");
    EXPECT_EQ(dur_err("1.5s"), "duration '1.5s' has a fraction; write it in a smaller unit (1500ms, not 1.5s)");
    EXPECT_EQ(dur_err("2562048h"), "duration '2562048h' is too large");
    EXPECT_EQ(dur_err("99999999999999999999s"), "duration '99999999999999999999s' is too large");
    EXPECT_EQ(dur_err("9223372036854775807ns1ns"), "duration '9223372036854775807ns1ns' is too large");
}

TEST(units, format_duration) {
    EXPECT_EQ(format_duration(5min), "5m");
    EXPECT_EQ(format_duration(90min), "1h30m");
    EXPECT_EQ(format_duration(250ms), "250ms");
    EXPECT_EQ(format_duration(0s), "0s");
    EXPECT_EQ(format_duration(1500ms), "1s500ms");
    EXPECT_EQ(format_duration(10us), "10us");
    EXPECT_EQ(format_duration(-30s), "-30s");
    EXPECT_EQ(format_duration(std::chrono::nanoseconds::min()), "-2562047h47m16s854ms775us808ns");
}

TEST(units, duration_round_trip) {
    using ns = std::chrono::nanoseconds;
    for (const ns d : {ns(0ns), ns(1ns), ns(999us), ns(61s), ns(25h + 1ms), ns::max()}) {
        EXPECT_EQ(dur_ok(format_duration(d)), d) << format_duration(d);
    }
}

TEST(units, sizes) {
    EXPECT_EQ(size_ok("1500"), 1500u);
    EXPECT_EQ(size_ok("0"), 0u);
    EXPECT_EQ(size_ok("4k"), 4096u);
    EXPECT_EQ(size_ok("4K"), 4096u);
    EXPECT_EQ(size_ok("4KiB"), 4096u);
    EXPECT_EQ(size_ok("4 KiB"), 4096u);
    EXPECT_EQ(size_ok("16M"), 16u << 20);
    EXPECT_EQ(size_ok("16MiB"), 16u << 20);
    EXPECT_EQ(size_ok("1G"), 1u << 30);
    EXPECT_EQ(size_ok("1GiB"), 1u << 30);
    EXPECT_EQ(size_ok("2T"), uint64_t{2} << 40);
    EXPECT_EQ(size_ok("64B"), 64u);
    EXPECT_EQ(size_ok("18446744073709551615"), ~uint64_t{0});
}

TEST(units, size_errors) {
    EXPECT_EQ(size_err(""), "size is empty");
    EXPECT_EQ(size_err("-1"), "size '-1' must not be negative");
    EXPECT_EQ(size_err("abc"), "size 'abc' is not valid: expected a number with an optional suffix K, M, G");
    EXPECT_EQ(size_err("18446744073709551616"), "size '18446744073709551616' is too large");
    EXPECT_EQ(size_err("16777216T"), "size '16777216T' is too large");
    EXPECT_EQ(size_err("4KB"), "size '4KB' is ambiguous: write K or KiB (multiples of 1024)");
    EXPECT_EQ(size_err("4mb"), "size '4mb' is ambiguous: write m or MiB (multiples of 1024)");
    EXPECT_EQ(size_err("4X"), "size '4X' has an unknown suffix 'X' (use K/KiB, M/MiB, G/GiB, T/TiB)");
    EXPECT_EQ(size_err("1.5M"), "size '1.5M' has a fraction; write it in a smaller unit (1536K, not 1.5M)");
}

TEST(units, format_size) {
    EXPECT_EQ(format_size(0), "0");
    EXPECT_EQ(format_size(1500), "1500");
    EXPECT_EQ(format_size(4096), "4K");
    EXPECT_EQ(format_size(16u << 20), "16M");
    EXPECT_EQ(format_size(uint64_t{3} << 40), "3T");
    EXPECT_EQ(size_ok(format_size(123456789)), 123456789u);
}

} // namespace
} // namespace meshfwd
