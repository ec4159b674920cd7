// Tests for lib/log: level parsing, the installed logger, and the rate limiter.
#include "lib/log.h"

#include <spdlog/spdlog.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace meshfwd {
namespace {

using namespace std::chrono_literals;

TEST(log, levels) {
    const std::pair<const char*, spdlog::level::level_enum> cases[] = {
        {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug}, {"info", spdlog::level::info},
        {"warn", spdlog::level::warn},   {"warning", spdlog::level::warn}, {"error", spdlog::level::err},
        {"off", spdlog::level::off},
    };
    for (const auto& [name, level] : cases) {
        auto r = setup_logging(name);
        ASSERT_TRUE(r.ok()) << name << ": " << r.error_message();
        EXPECT_EQ(spdlog::default_logger()->level(), level) << name;
        EXPECT_EQ(spdlog::default_logger()->name(), "meshfwd");
    }
}

TEST(log, unknown_level) {
    ASSERT_TRUE(setup_logging("info").ok());
    for (const char* bad : {"verbose", "", "INFO", "info "}) {
        auto r = setup_logging(bad);
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_EQ(r.error_message(),
                  "unknown log level '" + std::string(bad) + "' (use trace, debug, info, warn, error, off)");
    }
    EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::info); // unchanged
}

TEST(log, writes_to_stderr_with_time_and_level) {
    ASSERT_TRUE(setup_logging("info").ok());
    testing::internal::CaptureStderr();
    spdlog::warn("hello {}", 42);
    spdlog::debug("hidden");
    spdlog::default_logger()->flush();
    const std::string out = testing::internal::GetCapturedStderr();
    EXPECT_NE(out.find("[warning] "), std::string::npos) << out;
    EXPECT_NE(out.find("hello 42"), std::string::npos) << out;
    EXPECT_EQ(out.find("hidden"), std::string::npos) << out;
    // Starts with an ISO-8601 date: "YYYY-MM-DDTHH:MM:SS.mmm".
    ASSERT_GE(out.size(), 24u);
    EXPECT_EQ(out[4], '-');
    EXPECT_EQ(out[10], 'T');
    EXPECT_EQ(out[19], '.');
}

TEST(log_rate_limiter, per_second_window) {
    log_rate_limiter limit(3);
    const auto t0 = 1000s;
    EXPECT_TRUE(limit.allow_at(t0));
    EXPECT_TRUE(limit.allow_at(t0 + 100ms));
    EXPECT_TRUE(limit.allow_at(t0 + 200ms));
    EXPECT_FALSE(limit.allow_at(t0 + 300ms));
    EXPECT_FALSE(limit.allow_at(t0 + 999ms));
    EXPECT_EQ(limit.take_suppressed(), 2u);
    EXPECT_EQ(limit.take_suppressed(), 0u);
    // Next second: a fresh allowance.
    EXPECT_TRUE(limit.allow_at(t0 + 1s));
    EXPECT_TRUE(limit.allow_at(t0 + 1s + 1ms));
    EXPECT_TRUE(limit.allow_at(t0 + 1s + 2ms));
    EXPECT_FALSE(limit.allow_at(t0 + 1s + 3ms));
    EXPECT_TRUE(limit.allow_at(t0 + 5s));
    EXPECT_EQ(limit.take_suppressed(), 1u);
}

TEST(log_rate_limiter, zero_allows_nothing) {
    log_rate_limiter limit(0);
    EXPECT_FALSE(limit.allow_at(5s));
    EXPECT_FALSE(limit.allow());
    EXPECT_EQ(limit.take_suppressed(), 2u);
}

TEST(log_rate_limiter, real_clock) {
    log_rate_limiter limit(1000000);
    for (int i = 0; i < 100; ++i) {
        EXPECT_TRUE(limit.allow());
    }
}

// Many threads in the same window: exactly per_second are allowed in total.
TEST(log_rate_limiter, concurrent_exact_count) {
    log_rate_limiter limit(1000);
    std::atomic<int> allowed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 5000; ++i) {
                if (limit.allow_at(42s)) {
                    ++allowed;
                }
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(allowed.load(), 1000);
    EXPECT_EQ(limit.take_suppressed(), 19000u);
}

} // namespace
} // namespace meshfwd
