// The WireGuard per-peer timers (whitepaper §6; the kernel's timers.c) as one pure function of a
// peer's clock readings, so every rule can be checked with made-up times (tests/unit/peer_timers_test).
// Threads: any (no state). node.cc calls due_timers() on the control thread, once per peer per tick
// (100 ms), and carries out what it returns.
#pragma once

#include "crypto/messages.h"

#include <chrono>
#include <cstdint>
#include <optional>

namespace meshfwd::control {

// The kernel's MAX_TIMER_HANDSHAKES (REKEY_ATTEMPT_TIME / REKEY_TIMEOUT). Like the kernel, we give
// up when a retransmission is due after more than this many: 20 initiations in all, about 100 s.
inline constexpr unsigned max_handshake_retries =
    static_cast<unsigned>(crypto::spec::rekey_attempt_time / crypto::spec::rekey_timeout);

// What the control thread knows of one peer at the start of a tick.
struct peer_timer_state {
    crypto::mono_time now{};
    // The workers' latest timestamps (ns on the monotonic clock, 0 = never): any authenticated
    // packet received or sent, and those carrying data (not keepalives).
    int64_t last_rx_ns = 0;
    int64_t last_rx_data_ns = 0;
    int64_t last_tx_ns = 0;
    int64_t last_tx_data_ns = 0;
    // Our initiation in flight, when its retransmission is due, and how often it was resent.
    bool handshaking = false;
    crypto::mono_time retransmit_at{};
    unsigned retries = 0;
    bool rekey_wanted = false;  // a worker saw the current keypair's age or counter ask for one
    // The birth of each keypair we hold.
    std::optional<crypto::mono_time> current_birth;
    std::optional<crypto::mono_time> previous_birth;
    std::optional<crypto::mono_time> next_birth;
    std::optional<std::chrono::seconds> persistent_keepalive;
    bool has_endpoint = false;
    int64_t new_handshake_trigger_ns = 0;  // last_tx_data_ns that already started a handshake
};

// What is due. Decided from the state at the start of the tick; the caller carries the actions
// out in the order of the fields (an initiation refused because one is already on its way is
// the initiation path's own business).
struct peer_timer_actions {
    bool give_up_handshake = false;     // REKEY_ATTEMPT_TIME passed: drop staged packets, forget it
    bool retransmit_initiation = false; // REKEY_TIMEOUT (+ jitter) passed without a response
    bool initiate_rekey = false;        // a worker asked (REKEY_AFTER_TIME / _MESSAGES)
    bool passive_keepalive = false;     // data came in, nothing went out for KEEPALIVE_TIMEOUT
    bool new_handshake = false;         // data went out, nothing came back for KEEPALIVE + REKEY_TIMEOUT
    bool persistent_keepalive = false;  // nothing either way for the configured interval
    bool retire_previous = false;       // past REJECT_AFTER_TIME
    bool retire_next = false;           // past REJECT_AFTER_TIME, never confirmed
    bool zero_current = false;          // 3 × REJECT_AFTER_TIME without a newer keypair: zero all keys

    [[nodiscard]] bool any() const noexcept {
        return give_up_handshake || retransmit_initiation || initiate_rekey || passive_keepalive || new_handshake ||
               persistent_keepalive || retire_previous || retire_next || zero_current;
    }
};

[[nodiscard]] peer_timer_actions due_timers(const peer_timer_state& peer) noexcept;

} // namespace meshfwd::control
