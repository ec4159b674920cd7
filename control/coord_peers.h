// The coordinated peer list: what meshcoord shows this node (a snapshot, then deltas with a
// version), and its conversion into data-plane peer configs beside the static `peers:`.
// Pure value code: the control thread uses it (node_coord.cc), tests call it directly.
#pragma once

#include "control/config.h"
#include "coord/protocol.h"
#include "lib/result.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace meshfwd::control {

// Every peer the server showed us (online or not), by base64 public key, and the version of the
// last event applied.
struct coord_peer_set {
    int64_t version = 0;
    std::map<std::string, coord::peer_view> peers;
};

// Applies one event stream message: a snapshot replaces the set; an event adds, changes or
// removes one peer. An event older than the set's version is ignored (a replica may resend what
// the snapshot already held); an unknown type or kind is an error naming it.
result<void> apply_event(coord_peer_set& set, const coord::event_message& message);

// The peers to run: approved, online peers other than ourselves, with a valid key, as peer
// configs (endpoint = the first endpoint that is an IP literal with a port, allowed IPs = the
// view's, name = the hostname when it is a valid name). Peers left out are described in
// `skipped`, one line each.
struct coord_peer_configs {
    std::vector<peer_config> peers;
    std::vector<std::string> skipped;
};
coord_peer_configs to_peer_configs(const coord_peer_set& set, const crypto::public_key& self);

// The static peers plus the coordinated ones. A static peer wins on a key clash (the file is the
// operator's word), and a coordinated peer's allowed IPs that overlap a static peer's are left
// out (the static route stays). Each such decision is described in `notes`.
std::vector<peer_config> merge_peers(const std::vector<peer_config>& static_peers,
                                     const std::vector<peer_config>& coordinated, std::vector<std::string>& notes);

} // namespace meshfwd::control
