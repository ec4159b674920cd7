// Session keys, send counter and age checks (see keypair.h). Any thread for reserve() and the
// const checks; wipe() only by the control thread once no worker can reach the keypair.
#include "crypto/keypair.h"

#include <algorithm>

namespace meshfwd::crypto {

counter_range keypair::reserve(uint64_t n) noexcept {
    n = std::min<uint64_t>(n, limits::max_counter_reservation);
    uint64_t first = send_counter.load(std::memory_order_relaxed);
    for (;;) {
        if (first >= spec::reject_after_messages || n == 0) {
            return {first, 0};
        }
        // A CAS (not fetch_add) so the counter stops at the limit and can never wrap to reuse
        // a nonce, however many workers keep asking.
        const uint64_t count = std::min(n, spec::reject_after_messages - first);
        if (send_counter.compare_exchange_weak(first, first + count, std::memory_order_relaxed,
                                               std::memory_order_relaxed)) {
            return {first, count};
        }
    }
}

bool keypair::needs_rekey_on_send(mono_time now) const noexcept {
    return send_counter.load(std::memory_order_relaxed) > spec::rekey_after_messages ||
           (is_initiator && now >= birth + spec::rekey_after_time);
}

bool keypair::needs_rekey_on_receive(mono_time now) const noexcept {
    return is_initiator &&
           now >= birth + (spec::reject_after_time - spec::keepalive_timeout - spec::rekey_timeout);
}

bool keypair::expired(mono_time now) const noexcept { return now >= birth + spec::reject_after_time; }

void keypair::wipe() noexcept {
    send_key.wipe();
    recv_key.wipe();
}

}  // namespace meshfwd::crypto
