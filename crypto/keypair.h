// A WireGuard session: the two transport keys a completed handshake derives, plus the state the
// data plane needs to use them (send counter, replay window, age).
//
// Threads: the control thread creates it (handshake::begin_session), publishes it (RCU), and
// retires it. After publication the keys, indexes, birth and role are immutable and any worker
// may read them; the send counter (reserve) and the replay window (replay.check_and_set) are
// lock-free and shared by all workers.
//
// Key order (whitepaper 5.4.5): (T1, T2) = KDF2(C, empty). The initiator sends with T1 and
// receives with T2; the responder the other way round.
//
// Timers, as the kernel applies them (timers.c / send.c keep_key_fresh):
//   - needs_rekey_on_send: the send counter passed REKEY_AFTER_MESSAGES, or we are the initiator
//     and the keypair is REKEY_AFTER_TIME old;
//   - needs_rekey_on_receive: we are the initiator and the keypair is
//     REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT old (so a fresh one exists before expiry);
//   - expired: REJECT_AFTER_TIME old; then neither send nor accept with it.
// Age comparisons follow the kernel's wg_birthdate_has_expired: expired iff now >= birth + age.
#pragma once

#include "crypto/messages.h"
#include "crypto/replay.h"
#include "crypto/secret.h"

#include <atomic>
#include <cstdint>

namespace meshfwd::crypto {

// A run of counters for one burst: [first, first + count). count 0 = keypair exhausted.
struct counter_range {
    uint64_t first = 0;
    uint64_t count = 0;
};

class keypair {
public:
    keypair() noexcept = default;
    keypair(const keypair&) = delete;
    keypair& operator=(const keypair&) = delete;

    secret32 send_key;
    secret32 recv_key;
    uint32_t local_index = 0;   // the index peers put in messages sent to us
    uint32_t remote_index = 0;  // the index we put in messages we send
    mono_time birth{};
    bool is_initiator = false;

    std::atomic<uint64_t> send_counter{0};  // next counter to send
    replay_window replay;

    // Reserves up to n (<= limits::max_counter_reservation) consecutive send counters. Fewer
    // (possibly 0) when the keypair reaches REJECT_AFTER_MESSAGES; the counter never wraps.
    [[nodiscard]] counter_range reserve(uint64_t n = 1) noexcept;

    [[nodiscard]] bool needs_rekey_on_send(mono_time now) const noexcept;
    [[nodiscard]] bool needs_rekey_on_receive(mono_time now) const noexcept;
    [[nodiscard]] bool expired(mono_time now) const noexcept;

    // Wipes the keys (the control thread calls this when it retires the keypair, after the
    // RCU grace period, or the destructor does it).
    void wipe() noexcept;
};

}  // namespace meshfwd::crypto
