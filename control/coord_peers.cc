// The coordinated peer list (see coord_peers.h). Pure functions; control thread and tests.
#include "control/coord_peers.h"

#include "control/config_values.h"

#include <algorithm>

namespace meshfwd::control {

namespace {

bool overlap(const ip_prefix& a, const ip_prefix& b) {
    if (a.address().family() != b.address().family()) {
        return false;
    }
    return a.contains(b.address()) || b.contains(a.address());
}

} // namespace

result<void> apply_event(coord_peer_set& set, const coord::event_message& m) {
    if (m.type == "snapshot") {
        set.peers.clear();
        for (const auto& p : m.peers) {
            set.peers[p.public_key] = p;
        }
        set.version = m.version;
        return {};
    }
    if (m.type != "event") {
        return make_error("event stream: unknown message type '" + m.type + "'");
    }
    if (m.version <= set.version) {
        return {};  // already part of what we have
    }
    if (m.kind == "left") {
        set.peers.erase(m.public_key);
    } else if (m.kind == "joined" || m.kind == "changed" || m.kind == "online" || m.kind == "offline") {
        if (!m.peer) {
            return make_error("event stream: '" + m.kind + "' event for " + m.public_key + " without the peer");
        }
        set.peers[m.public_key] = *m.peer;
    } else {
        return make_error("event stream: unknown event kind '" + m.kind + "'");
    }
    set.version = m.version;
    return {};
}

coord_peer_configs to_peer_configs(const coord_peer_set& set, const crypto::public_key& self) {
    coord_peer_configs out;
    for (const auto& [key_text, view] : set.peers) {
        const auto key = crypto::key_from_base64(view.public_key);
        if (!key) {
            out.skipped.push_back("peer '" + view.public_key + "': not a public key");
            continue;
        }
        if (*key == self) {
            continue;  // the server shows us to ourselves too
        }
        if (!view.approved) {
            out.skipped.push_back("peer " + view.public_key + ": pending approval");
            continue;
        }
        if (!view.online) {
            // Dropped from the data plane until it heartbeats again.
            out.skipped.push_back("peer " + view.public_key + ": offline");
            continue;
        }
        peer_config pc;
        pc.public_key = *key;
        pc.coordinated = true;
        if (check_identifier(view.hostname, 64).ok()) {
            pc.name = view.hostname;
        }
        bool bad = false;
        for (const auto& text : view.allowed_ips) {
            auto prefix = ip_prefix::parse(text);
            if (!prefix) {
                out.skipped.push_back("peer " + view.public_key + ": allowed IP '" + text + "': " + prefix.error_message());
                bad = true;
                break;
            }
            pc.allowed_ips.push_back(prefix->masked());
        }
        if (bad) {
            continue;
        }
        std::vector<std::string> candidates = view.endpoints;
        if (candidates.empty() && !view.endpoint.empty()) {
            candidates.push_back(view.endpoint);
        }
        for (const auto& text : candidates) {
            if (auto ep = endpoint::parse(text); ep && ep->port() != 0) {
                pc.endpoint_address = *ep;
                break;
            }
        }
        out.peers.push_back(std::move(pc));
    }
    return out;
}

std::vector<peer_config> merge_peers(const std::vector<peer_config>& static_peers,
                                     const std::vector<peer_config>& coordinated, std::vector<std::string>& notes) {
    std::vector<peer_config> out;
    out.reserve(static_peers.size() + coordinated.size());
    for (const auto& p : static_peers) {
        peer_config copy;
        copy.public_key = p.public_key;
        copy.name = p.name;
        copy.endpoint_address = p.endpoint_address;
        copy.allowed_ips = p.allowed_ips;
        copy.persistent_keepalive = p.persistent_keepalive;
        copy.preshared_key_file = p.preshared_key_file;
        if (p.preshared_key) {
            copy.preshared_key = p.preshared_key->clone();
        }
        copy.meshfwd = p.meshfwd;
        out.push_back(std::move(copy));
    }
    const size_t n_static = out.size();
    for (const auto& c : coordinated) {
        const auto clash = std::find_if(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n_static),
                                        [&](const peer_config& s) { return s.public_key == c.public_key; });
        if (clash != out.begin() + static_cast<std::ptrdiff_t>(n_static)) {
            notes.push_back("peer " + crypto::key_to_base64(c.public_key) +
                            ": in peers: and at meshcoord; the static entry is used");
            continue;
        }
        peer_config copy;
        copy.public_key = c.public_key;
        copy.name = c.name;
        copy.endpoint_address = c.endpoint_address;
        copy.persistent_keepalive = c.persistent_keepalive;
        copy.meshfwd = c.meshfwd;
        copy.coordinated = true;
        for (const auto& prefix : c.allowed_ips) {
            const auto owner = std::find_if(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n_static),
                                            [&](const peer_config& s) {
                                                return std::any_of(s.allowed_ips.begin(), s.allowed_ips.end(),
                                                                   [&](const ip_prefix& q) { return overlap(q, prefix); });
                                            });
            if (owner != out.begin() + static_cast<std::ptrdiff_t>(n_static)) {
                notes.push_back("peer " + crypto::key_to_base64(c.public_key) + ": allowed IP " + prefix.to_string() +
                                " overlaps static peer " + crypto::key_to_base64(owner->public_key) + "'s; left out");
                continue;
            }
            copy.allowed_ips.push_back(prefix);
        }
        out.push_back(std::move(copy));
    }
    return out;
}

} // namespace meshfwd::control
