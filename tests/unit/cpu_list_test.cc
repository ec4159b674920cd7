// Tests for lib/cpu_list: parsing, error messages, formatting.
#include "lib/cpu_list.h"

#include <sched.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace meshfwd {
namespace {

using cpus = std::vector<unsigned>;

cpus parse_ok(std::string_view text, unsigned n_cpus = 64) {
    auto r = parse_cpu_list(text, n_cpus);
    EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error_message());
    return r.ok() ? *r : cpus{};
}

std::string parse_err(std::string_view text, unsigned n_cpus = 64) {
    auto r = parse_cpu_list(text, n_cpus);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error_message();
}

TEST(cpu_list, single_and_ranges) {
    EXPECT_EQ(parse_ok("3"), (cpus{3}));
    EXPECT_EQ(parse_ok("2-5"), (cpus{2, 3, 4, 5}));
    EXPECT_EQ(parse_ok("0,2,4-7"), (cpus{0, 2, 4, 5, 6, 7}));
    EXPECT_EQ(parse_ok("5-5"), (cpus{5}));
    EXPECT_EQ(parse_ok("0"), (cpus{0}));
}

TEST(cpu_list, blanks_sorted_deduplicated) {
    EXPECT_EQ(parse_ok("0 , 2, 4 -6 "), (cpus{0, 2, 4, 5, 6}));
    EXPECT_EQ(parse_ok("7,1,3-4,1,4"), (cpus{1, 3, 4, 7}));
    EXPECT_EQ(parse_ok("\t1,0"), (cpus{0, 1}));
}

TEST(cpu_list, reversed_range) {
    EXPECT_EQ(parse_err("5-2"), "range 5-2 is reversed");
}

TEST(cpu_list, not_a_number) {
    EXPECT_EQ(parse_err("a"), "'a' is not a CPU number");
    EXPECT_EQ(parse_err("1-x"), "'x' is not a CPU number");
    EXPECT_EQ(parse_err("+1"), "'+1' is not a CPU number");
    EXPECT_EQ(parse_err("1-2-3"), "'2-3' is not a CPU number");
    EXPECT_EQ(parse_err("1.5"), "'1.5' is not a CPU number");
}

TEST(cpu_list, empty_and_commas) {
    EXPECT_EQ(parse_err(""), "CPU list is empty");
    EXPECT_EQ(parse_err("   "), "CPU list is empty");
    EXPECT_EQ(parse_err("0,"), "CPU list '0,' ends with a comma");
    EXPECT_EQ(parse_err("0,,1"), "CPU list '0,,1' has an empty entry");
    EXPECT_EQ(parse_err(",1"), "CPU list ',1' has an empty entry");
    EXPECT_EQ(parse_err("-3"), "range '-3' is missing a bound");
    EXPECT_EQ(parse_err("3-"), "range '3-' is missing a bound");
}

TEST(cpu_list, cpu_does_not_exist) {
    EXPECT_EQ(parse_err("9", 2), "CPU 9 does not exist (this machine has CPUs 0-1)");
    EXPECT_EQ(parse_err("0-2", 2), "CPU 2 does not exist (this machine has CPUs 0-1)");
    EXPECT_EQ(parse_err("1", 1), "CPU 1 does not exist (this machine has CPU 0)");
    EXPECT_EQ(parse_ok("0-1", 2), (cpus{0, 1}));
}

TEST(cpu_list, absurd_numbers_do_not_overflow) {
    EXPECT_EQ(parse_err("99999999999999999999999999"), "CPU number 99999999999999999999999999 is too large");
    EXPECT_EQ(parse_err("4294967296"), "CPU number 4294967296 is too large");
    // A huge but in-range-for-uint range must fail on its end, without expanding it.
    EXPECT_EQ(parse_err("0-1000000", 64), "CPU 1000000 does not exist (this machine has CPUs 0-63)");
}

TEST(cpu_list, this_machine) {
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
    unsigned first = CPU_SETSIZE;
    for (unsigned i = 0; i < CPU_SETSIZE; ++i) {
        if (CPU_ISSET(i, &set)) {
            first = i;
            break;
        }
    }
    ASSERT_NE(first, unsigned{CPU_SETSIZE});
    auto ok = parse_cpu_list(std::to_string(first));
    ASSERT_TRUE(ok.ok()) << ok.error_message();
    EXPECT_EQ(*ok, (cpus{first}));

    auto bad = parse_cpu_list("100000");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error_message().find("CPU 100000 does not exist (this machine has CPU"), std::string::npos)
        << bad.error_message();
}

TEST(cpu_list, format) {
    EXPECT_EQ(format_cpu_list(cpus{}), "");
    EXPECT_EQ(format_cpu_list(cpus{0, 1, 2, 3, 6}), "0-3,6");
    EXPECT_EQ(format_cpu_list(cpus{6, 3, 1, 2, 0, 3}), "0-3,6");
    EXPECT_EQ(format_cpu_list(cpus{1, 3, 5}), "1,3,5");
    EXPECT_EQ(format_cpu_list(cpus{4, 5}), "4-5");
}

TEST(cpu_list, format_parse_round_trip) {
    for (const char* text : {"0", "0-3,6", "1,3,5-9,11,63"}) {
        const cpus parsed = parse_ok(text);
        EXPECT_EQ(format_cpu_list(parsed), text);
        EXPECT_EQ(parse_ok(format_cpu_list(parsed)), parsed);
    }
}

} // namespace
} // namespace meshfwd
