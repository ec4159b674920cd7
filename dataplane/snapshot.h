// What workers route by: an immutable snapshot of the peers and the allowed-IPs trie, published
// by the control thread with RCU (lib/rcu.h) whenever peers or their allowed IPs change.
//
// Threads: built and published by the control thread; read by any worker between two quiescent
// states. The peer objects it points to outlive it (the control thread retires them only after
// publishing a snapshot without them and waiting for a grace period).
#pragma once
#include "dataplane/allowed_ips.h"
#include "dataplane/peer.h"

#include <cstdint>
#include <vector>

namespace meshfwd::dataplane {

struct snapshot {
    std::vector<peer_runtime*> peers;  // by slot; nullptr for a free slot
    allowed_ips routes;                // prefix -> slot
    uint64_t generation = 0;
};

}  // namespace meshfwd::dataplane
