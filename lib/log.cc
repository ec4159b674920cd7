// spdlog setup and the log rate limiter (see log.h).
#include "lib/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <exception>
#include <memory>
#include <string>
#include <utility>

namespace meshfwd {

namespace {

struct level_name {
    std::string_view name;
    spdlog::level::level_enum level;
};

constexpr std::array<level_name, 7> level_names{{
    {"trace", spdlog::level::trace},
    {"debug", spdlog::level::debug},
    {"info", spdlog::level::info},
    {"warn", spdlog::level::warn},
    {"warning", spdlog::level::warn},
    {"error", spdlog::level::err},
    {"off", spdlog::level::off},
}};

} // namespace

result<void> setup_logging(std::string_view level) {
    const level_name* found = nullptr;
    for (const auto& l : level_names) {
        if (l.name == level) {
            found = &l;
        }
    }
    if (found == nullptr) {
        return make_error("unknown log level '" + std::string(level) +
                          "' (use trace, debug, info, warn, error, off)");
    }
    // spdlog reports failures (sink creation, bad pattern) by throwing; keep them inside.
    try {
        auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
        auto logger = std::make_shared<spdlog::logger>("meshfwd", std::move(sink));
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e [%^%l%$] [%t] %v");
        logger->set_level(found->level);
        // Warnings and errors are rare and matter: do not lose them in the buffer on a crash.
        logger->flush_on(spdlog::level::warn);
        spdlog::set_default_logger(std::move(logger));
    } catch (const std::exception& e) {
        return make_error(std::string("cannot set up logging: ") + e.what());
    }
    return {};
}

bool log_rate_limiter::allow() noexcept {
    return allow_at(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now().time_since_epoch()));
}

bool log_rate_limiter::allow_at(std::chrono::nanoseconds now) noexcept {
    // 32 bits of seconds wrap after 136 years of uptime; a wrap only starts a fresh window.
    if (_per_second == 0) {
        _suppressed.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    const auto second = static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(now).count());
    uint64_t state = _state.load(std::memory_order_relaxed);
    while (true) {
        const auto window = static_cast<uint32_t>(state >> 32);
        const auto count = static_cast<uint32_t>(state);
        uint64_t next = 0;
        if (window != second) {
            next = (uint64_t{second} << 32) | 1u;
        } else if (count < _per_second) {
            next = state + 1;
        } else {
            _suppressed.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        if (_state.compare_exchange_weak(state, next, std::memory_order_relaxed)) {
            return true;
        }
    }
}

} // namespace meshfwd
