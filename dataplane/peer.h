// The runtime state of one peer and its sessions that workers read on the packet path.
//
// Threads: the control thread creates, changes and retires these objects; workers only read
// them through an RCU snapshot (snapshot.h) or the receiver-index table, plus the few fields
// marked "any worker" below. Retired objects are freed by the control thread after an RCU
// grace period, so a worker may use a pointer it loaded until its next quiescent state.
#pragma once
#include "crypto/keypair.h"
#include "crypto/x25519.h"
#include "dataplane/counters.h"
#include "dataplane/local_address.h"
#include "dataplane/socket_address.h"
#include "lib/ip_address.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>

namespace meshfwd::dataplane {

struct peer_runtime;

// Most lanes (UDP ports per node) a peer may announce; one per worker.
inline constexpr std::size_t max_lanes = 64;

// Where a peer is reachable: immutable once published; the control thread replaces it (roaming,
// lane announcements) and frees the old one after a grace period.
struct peer_endpoint {
    socket_address address;                 // the peer's main endpoint
    local_address local;                    // our address it last reached us on: we send from it
    std::array<uint16_t, max_lanes> lanes{}; // its lane ports (meshfwd peers), host order
    uint32_t lane_count = 0;
    // True when a datagram from `source` is from this peer's known endpoint (its main port or one
    // of its lanes), so no roaming is needed.
    [[nodiscard]] bool matches(const socket_address& source) const noexcept;
};

// One WireGuard session (a keypair) and the peer it belongs to. Registered in the receiver-index
// table under keypair.local_index while it may receive.
struct session {
    crypto::keypair keypair;
    peer_runtime* peer = nullptr;
    // Set by the control thread while this is the peer's unconfirmed responder keypair ("next");
    // a worker that receives on it asks the control thread once (confirm_requested) to promote it.
    std::atomic<bool> awaiting_confirmation{false};
    std::atomic<bool> confirm_requested{false};
};

struct peer_runtime {
    peer_runtime(uint32_t slot_, const crypto::public_key& key_, bool meshfwd_, unsigned counter_blocks)
        : slot(slot_), public_key(key_), meshfwd(meshfwd_),
          counters(std::make_unique<peer_worker_counters[]>(counter_blocks)), counter_block_count(counter_blocks) {}

    const uint32_t slot;                 // index in snapshot::peers
    const crypto::public_key public_key;
    std::atomic<bool> meshfwd;           // may receive mesh frames (lanes); control thread writes
    std::atomic<session*> current{nullptr};             // sends with this; control thread writes
    std::atomic<const peer_endpoint*> endpoint{nullptr}; // control thread writes
    // Any worker: sets it when the current keypair needs a new handshake (age or counter);
    // the control thread clears it when it starts one.
    std::atomic<bool> rekey_wanted{false};
    // Any worker, per its block: traffic and times. Block [workers] is the control thread's.
    std::unique_ptr<peer_worker_counters[]> counters;
    const unsigned counter_block_count;
};

}  // namespace meshfwd::dataplane
