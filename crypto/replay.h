// RFC 6479 anti-replay window (8128 counters), shared by concurrent workers without locks.
// Any thread: check_and_set() may run on several workers at once for the same window.
//
// Semantics (the same as the kernel's counter.c and wireguard-go's replay.Filter): a counter is
// accepted iff counter < REJECT_AFTER_MESSAGES, it was not accepted before, and
// counter + 8128 >= the greatest counter accepted so far. The window is checked AFTER the AEAD
// tag has verified (an unauthenticated counter must never move the window); peek() lets a
// caller skip decryption of a packet that would be refused anyway, it never changes state.
//
// Layout: 256 slots of one std::atomic<uint64_t> each = (generation << 32) | bitmap32, where
// counter c lives in block b = c >> 5 (bit c & 31), slot b & 255, generation c >> 13 (low 32
// bits). Plus `_max`, the greatest counter accepted (or being accepted). See replay.cc for the
// proof that this equals the sequential window and for the ordering rules.
#pragma once

#include "lib/reasons.h"

#include "crypto/messages.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace meshfwd::crypto {

#define MESHFWD_REPLAY_REASONS(X)                                          \
    X(ok, "counter accepted")                                             \
    X(too_old, "counter more than 8128 below the highest accepted")      \
    X(duplicate, "counter already accepted")                              \
    X(limit, "counter >= REJECT_AFTER_MESSAGES")

MESHFWD_DEFINE_REASONS(replay_reason, MESHFWD_REPLAY_REASONS)

class replay_window {
public:
    static constexpr uint64_t window_size = spec::replay_window_size;  // 8128
    static constexpr std::size_t n_slots = 256;

    replay_window() noexcept { reset(); }
    replay_window(const replay_window&) = delete;
    replay_window& operator=(const replay_window&) = delete;

    // Accepts or refuses `counter` (after authentication). Lock-free, any number of threads.
    [[nodiscard]] replay_reason check_and_set(uint64_t counter) noexcept;
    // Would check_and_set() refuse `counter` right now? Never changes state; a racing
    // check_and_set() may still refuse a counter that peek() found ok.
    [[nodiscard]] replay_reason peek(uint64_t counter) const noexcept;
    // Not concurrent with the other calls (only before the window is published).
    void reset() noexcept;

    // Greatest counter accepted so far (0 when none).
    [[nodiscard]] uint64_t highest() const noexcept { return _max.load(std::memory_order_acquire); }

private:
    alignas(64) std::atomic<uint64_t> _max;
    alignas(64) std::array<std::atomic<uint64_t>, n_slots> _slots;
};

}  // namespace meshfwd::crypto
