// Logging: spdlog set up once at startup (main thread, before workers start), and a rate
// limiter for slow-path debug logs. The packet path never logs: it counts drops instead.
// After setup, spdlog's default logger may be used from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "lib/result.h"

namespace meshfwd {

/// Installs the default spdlog logger "meshfwd": stderr, pattern
/// "2024-01-31T12:00:00.123 [warn] [tid] message", at the given level: trace, debug, info,
/// warn (or warning), error, off. Errors for any other level; the previous logger stays then.
/// Call before other threads log (spdlog's default-logger swap is not meant to race with use).
result<void> setup_logging(std::string_view level);

/// Allows at most per_second events per wall-second window; the rest are refused and counted.
/// Lock-free: allow() may be called from any number of threads at once. Typical use:
///     static log_rate_limiter limit(10);
///     if (limit.allow()) { spdlog::debug("bad handshake from {}", ep.to_string()); }
class log_rate_limiter {
public:
    explicit log_rate_limiter(unsigned per_second) noexcept : _per_second(per_second) {}

    /// True when the caller may log now (uses std::chrono::steady_clock).
    bool allow() noexcept;
    /// As allow(), at a given steady-clock time since its epoch (for tests).
    bool allow_at(std::chrono::nanoseconds now) noexcept;
    /// How many events were refused since the last call; resets the count. Log it with the
    /// next allowed message ("... (12 similar messages suppressed)").
    uint64_t take_suppressed() noexcept { return _suppressed.exchange(0, std::memory_order_relaxed); }

private:
    const unsigned _per_second;
    // (window second << 32) | events allowed in that window, updated by CAS as one word so the
    // window switch and the count cannot tear.
    std::atomic<uint64_t> _state{0};
    std::atomic<uint64_t> _suppressed{0};
};

} // namespace meshfwd
