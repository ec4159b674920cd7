// Single-message WireGuard transport (type 4): encapsulate and decapsulate one packet with a
// keypair. Any worker thread, concurrently on the same keypair (see keypair.h).
//
//   encapsulate: counter = reserve(1) (or the caller's, from a burst reservation)
//                out = header{4, remote_index, counter} || AEAD(send_key, counter, pad16(plain), "")
//   decapsulate: header check → AEAD open with recv_key (authenticate first) → replay window
//                → plaintext incl. padding (the IP layer trims by the IP header's length).
//
// Padding follows the kernel (send.c calculate_skb_padding): zeros up to a multiple of 16, but
// never past the MTU when one is given; a keepalive (empty payload) stays empty. The data plane's
// batched path (dataplane/) produces the same bytes; this one serves handshake confirmation,
// keepalives, tests and fuzzing.
#pragma once

#include "lib/reasons.h"

#include "crypto/keypair.h"
#include "crypto/messages.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace meshfwd::crypto {

#define MESHFWD_TRANSPORT_REASONS(X)                                                   \
    X(ok, "ok")                                                                        \
    X(truncated, "shorter than header + tag (32 bytes)")                              \
    X(oversized, "payload larger than limits::max_transport_payload")                 \
    X(wrong_type, "type word is not 4")                                                \
    X(wrong_index, "receiver index is not this keypair's local index")                \
    X(buffer_too_small, "output buffer cannot hold the result")                       \
    X(expired, "keypair older than REJECT_AFTER_TIME")                                 \
    X(counter_exhausted, "send counter reached REJECT_AFTER_MESSAGES")                \
    X(counter_limit, "received counter >= REJECT_AFTER_MESSAGES")                     \
    X(auth_failed, "AEAD tag did not verify")                                          \
    X(replay_too_old, "counter below the replay window")                               \
    X(replay_duplicate, "counter already received")

MESHFWD_DEFINE_REASONS(transport_reason, MESHFWD_TRANSPORT_REASONS)

struct transport_result {
    transport_reason reason = transport_reason::ok;
    std::size_t size = 0;     // bytes written to `out` when ok
    uint64_t counter = 0;     // the message's counter (when parsed/assigned)
};

// Bytes encapsulate() writes for a payload of `plain_len` (mtu 0 = no cap).
[[nodiscard]] std::size_t transport_message_size(std::size_t plain_len, std::size_t mtu = 0) noexcept;

// Encrypts one payload into `out` (>= transport_message_size(plaintext.size(), mtu)). The
// plaintext may already sit at out.data() + 16 (in place); otherwise it must not overlap out.
// Refuses with `expired` when kp.expired(now), `counter_exhausted` past the counter limit.
[[nodiscard]] transport_result encapsulate(keypair& kp, std::span<const uint8_t> plaintext,
                                           std::span<uint8_t> out, mono_time now,
                                           std::size_t mtu = 0) noexcept;
// The same with a counter the caller reserved (kp.reserve(n)); no expiry check.
[[nodiscard]] transport_result encapsulate_with_counter(const keypair& kp, uint64_t counter,
                                                        std::span<const uint8_t> plaintext,
                                                        std::span<uint8_t> out,
                                                        std::size_t mtu = 0) noexcept;

// Authenticates and decrypts one transport message into `out` (>= message.size() - 32 bytes; may
// equal message.data() + 16 for in-place), then runs the replay window. On ok, size is the
// padded plaintext length (0 for a keepalive). Refuses with `expired` when kp.expired(now).
[[nodiscard]] transport_result decapsulate(keypair& kp, std::span<const uint8_t> message,
                                           std::span<uint8_t> out, mono_time now) noexcept;

}  // namespace meshfwd::crypto
