// The WireGuard per-peer timer rules. Threads: any (pure).
#include "control/peer_timers.h"

#include <algorithm>

namespace meshfwd::control {

namespace spec = crypto::spec;

namespace {

constexpr int64_t ns(std::chrono::nanoseconds d) noexcept { return d.count(); }

} // namespace

peer_timer_actions due_timers(const peer_timer_state& peer) noexcept {
    peer_timer_actions due;
    const crypto::mono_time now = peer.now;
    const int64_t now_ns = ns(now.time_since_epoch());

    if (peer.handshaking && now >= peer.retransmit_at) {
        (peer.retries > max_handshake_retries ? due.give_up_handshake : due.retransmit_initiation) = true;
    }
    due.initiate_rekey = peer.rekey_wanted && !peer.handshaking;

    const bool have_session = peer.current_birth && now < *peer.current_birth + spec::reject_after_time;
    // Passive keepalive: the kernel answers data with a keepalive when it has sent nothing since.
    due.passive_keepalive = have_session && peer.last_rx_data_ns > peer.last_tx_ns &&
                            now_ns - peer.last_rx_data_ns >= ns(spec::keepalive_timeout);
    // Data sent and nothing heard back: the other side may have lost its keys; once per silence.
    due.new_handshake = !peer.handshaking && peer.last_tx_data_ns > peer.last_rx_ns &&
                        peer.last_tx_data_ns != peer.new_handshake_trigger_ns &&
                        now_ns - peer.last_tx_data_ns >= ns(spec::keepalive_timeout + spec::rekey_timeout);
    // Persistent keepalive: any authenticated packet either way resets it. Not while a first
    // handshake is still on its way (the keepalive would only be staged behind it).
    if (peer.persistent_keepalive && peer.has_endpoint && !(peer.handshaking && !peer.current_birth)) {
        const int64_t last_any = std::max(peer.last_rx_ns, peer.last_tx_ns);
        due.persistent_keepalive = now_ns - last_any >= ns(*peer.persistent_keepalive);
    }

    due.retire_previous = peer.previous_birth && now >= *peer.previous_birth + spec::reject_after_time;
    due.retire_next = peer.next_birth && now >= *peer.next_birth + spec::reject_after_time;
    due.zero_current = peer.current_birth && now >= *peer.current_birth + 3 * spec::reject_after_time;
    return due;
}

} // namespace meshfwd::control
