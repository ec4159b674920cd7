// The node's answers to WireGuard's cross-platform UAPI (uapi_server.h): get=1 from the control
// thread's state, set=1 applied through the same paths as a SIGHUP reload (add_peer, remove_peer,
// set_endpoint, one publish_snapshot at the end), so a peer the request does not change keeps its
// session. Control thread.
//
// Where this differs from the kernel on purpose: `replace_peers` (what `wg setconf` sends) keeps
// the peers it lists, with their sessions and learned endpoints, and removes the others, instead of
// removing all and adding them back; a listed peer's other settings are reset to what the request
// says (no preshared key, no keepalive, only the listed allowed IPs unless given), as the kernel's
// fresh peer would have them.
#include "control/node_state.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

namespace meshfwd::control {

std::string node::state::uapi_answer(uapi::request& req) {
    if (std::holds_alternative<uapi::get_request>(req)) {
        return uapi_get();
    }
    auto& set = std::get<uapi::set_request>(req);
    const auto [code, message] = uapi_set(set);
    if (code != 0) {
        spdlog::warn("UAPI set refused (errno {}): {}", code, message);
    }
    return uapi::format_errno(code);
}

std::string node::state::uapi_get() {
    uapi::device_view d;
    if (identity.has_identity()) {
        crypto::public_key k{};
        std::copy_n(identity.static_private.data(), 32, k.begin());
        d.private_key = k;
        sodium_memzero(k.data(), k.size());
    }
    d.listen_port = cfg.node.listen_port;
    d.fwmark = fwmark;
    d.peers.reserve(peers.size());
    for (const auto& [key, ps] : peers) {
        uapi::peer_view& v = d.peers.emplace_back();
        v.public_key = key;
        if (ps->cfg.preshared_key) {
            std::copy_n(ps->cfg.preshared_key->data(), 32, v.preshared_key.begin());
        }
        if (ps->endpoint_owner) {
            v.endpoint_address = ps->endpoint_owner->address.to_endpoint();
        }
        v.last_handshake_sec = ps->latest_handshake_unix;
        v.last_handshake_nsec = ps->latest_handshake_unix_nsec;
        for (unsigned b = 0; b < ps->rt->counter_block_count; ++b) {
            v.rx_bytes += ps->rt->counters[b].rx_bytes.get();
            v.tx_bytes += ps->rt->counters[b].tx_bytes.get();
        }
        v.persistent_keepalive = ps->cfg.persistent_keepalive ? static_cast<uint16_t>(ps->cfg.persistent_keepalive->count()) : 0;
        v.allowed_ips = ps->cfg.allowed_ips;
    }
    std::string text = uapi::format_get(d);
    for (auto& p : d.peers) {
        sodium_memzero(p.preshared_key.data(), p.preshared_key.size());
    }
    if (d.private_key) {
        sodium_memzero(d.private_key->data(), d.private_key->size());
    }
    return text;
}

std::pair<int, std::string> node::state::uapi_set(uapi::set_request& req) {
    const mono_time now = mono_clock::now();

    // 1. What needs the workers stopped: a new port (the only change that can fail, so first) and
    // a new private key (the workers' mac1 check reads the cookie checker's keys).
    const bool key_changes = req.private_key && !(req.private_key->is_zero() && !identity.has_identity()) &&
                             !(identity.has_identity() && [&] {
                                 crypto::static_identity probe;
                                 return probe.set_private_key(*req.private_key) && probe.static_public == identity.static_public;
                             }());
    const bool port_changes = req.listen_port && (*req.listen_port != cfg.node.listen_port || *req.listen_port == 0);
    if (port_changes) {
        if (auto r = restart_workers(*req.listen_port); !r) {
            const bool in_use = r.error_message().find("held by another") != std::string::npos ||
                                r.error_message().find("in use") != std::string::npos;
            return {in_use ? EADDRINUSE : EIO, "listen_port " + std::to_string(*req.listen_port) + ": " + r.error_message()};
        }
    }
    if (key_changes) {
        stop_workers();
        if (req.private_key->is_zero()) {
            identity.static_private.wipe();
            identity.static_public = {};
        } else {
            (void)identity.set_private_key(*req.private_key);
        }
        cookies->set_identity(identity);
        cfg.node.public_key = identity.static_public;
        // As the kernel: a peer with our own new public key is removed, every other peer's
        // handshake state is recomputed and its sessions end (they were keyed to the old key).
        for (auto it = peers.begin(); it != peers.end();) {
            peer_state& ps = *it->second;
            if (identity.has_identity() && it->first == identity.static_public) {
                remove_peer(ps);
                it = peers.erase(it);
                continue;
            }
            (void)ps.noise.init(identity, it->first, ps.cfg.preshared_key ? &*ps.cfg.preshared_key : nullptr);
            ps.hs->clear();
            ps.rt->current.store(nullptr, std::memory_order_release);
            retire(ps.current);
            retire(ps.previous);
            retire(ps.next);
            if (ps.pending_index) {
                sessions.erase(*ps.pending_index);
                pending.erase(*ps.pending_index);
                ps.pending_index.reset();
            }
            ps.handshaking = false;
            ++it;
        }
        spdlog::info("UAPI: private key {}", identity.has_identity() ? "set; sessions restart" : "removed");
        if (auto r = start_workers(); !r) {
            return {EIO, "restarting the workers: " + r.error_message()};
        }
    }
    if (req.fwmark && *req.fwmark != fwmark) {
        fwmark = *req.fwmark;
        for (auto* list : {&listen_sockets, &lane_sockets}) {
            for (const auto& s : *list) {
                apply_fwmark(s.fd);
            }
        }
    }

    // 2. Peers, in request order, against the live state. Allowed IPs have one owner each (as in
    // the kernel's trie): a prefix given to one peer leaves the peer that had it.
    bool peers_changed = false;
    std::map<ip_prefix, crypto::public_key> owner;
    std::set<crypto::public_key> touched;  // peers whose allowed_ips list must be refiltered
    const bool any_ips = std::any_of(req.peers.begin(), req.peers.end(), [](const uapi::peer_change& c) {
        return !c.allowed_ips.empty() || c.replace_allowed_ips;
    }) || req.replace_peers;
    if (any_ips) {
        for (const auto& [key, ps] : peers) {
            for (const auto& p : ps->cfg.allowed_ips) {
                owner[p] = key;
            }
        }
    }
    const auto drop_owned = [&](const crypto::public_key& key, const std::vector<ip_prefix>& list) {
        for (const auto& p : list) {
            auto it = owner.find(p);
            if (it != owner.end() && it->second == key) {
                owner.erase(it);
            }
        }
    };
    if (req.replace_peers) {
        std::set<crypto::public_key> listed;
        for (const auto& c : req.peers) {
            listed.insert(c.public_key);
        }
        for (auto it = peers.begin(); it != peers.end();) {
            if (listed.contains(it->first)) {
                ++it;
                continue;
            }
            drop_owned(it->first, it->second->cfg.allowed_ips);
            remove_peer(*it->second);
            it = peers.erase(it);
            peers_changed = true;
        }
    }
    unsigned added = 0, removed = 0, changed = 0;
    std::set<crypto::public_key> reset_once;  // replace_peers resets a listed peer at its first mention
    for (auto& c : req.peers) {
        if (identity.has_identity() && c.public_key == identity.static_public) {
            continue;  // our own key: ignored, as the kernel does
        }
        auto it = peers.find(c.public_key);
        if (c.remove) {
            if (it != peers.end()) {
                drop_owned(it->first, it->second->cfg.allowed_ips);
                remove_peer(*it->second);
                peers.erase(it);
                peers_changed = true;
                ++removed;
            }
            continue;
        }
        if (it == peers.end()) {
            if (c.update_only) {
                continue;
            }
            control::peer_config pc;
            pc.public_key = c.public_key;
            if (c.preshared_key && !c.preshared_key->is_zero()) {
                pc.preshared_key = c.preshared_key->clone();
            }
            if (c.persistent_keepalive && *c.persistent_keepalive != 0) {
                pc.persistent_keepalive = std::chrono::seconds(*c.persistent_keepalive);
            }
            pc.endpoint_address = c.endpoint_address;
            if (auto r = add_peer(pc); !r) {
                publish_snapshot();
                return {EINVAL, r.error_message()};
            }
            it = peers.find(c.public_key);
            reset_once.insert(c.public_key);
            peers_changed = true;
            ++added;
        } else {
            ++changed;
        }
        peer_state& ps = *it->second;
        const bool reset = req.replace_peers && reset_once.insert(c.public_key).second;
        if (reset || c.preshared_key) {
            const bool want = c.preshared_key && !c.preshared_key->is_zero();
            const bool same = want == ps.cfg.preshared_key.has_value() && (!want || *c.preshared_key == *ps.cfg.preshared_key);
            if (!same) {
                // Takes effect at the next handshake; the running session is kept, as wg does.
                ps.cfg.preshared_key.reset();
                if (want) {
                    ps.cfg.preshared_key = c.preshared_key->clone();
                }
                (void)ps.noise.init(identity, ps.cfg.public_key, want ? &*ps.cfg.preshared_key : nullptr);
            }
        }
        if (reset || c.persistent_keepalive) {
            const uint16_t s = c.persistent_keepalive.value_or(0);
            ps.cfg.persistent_keepalive = s ? std::optional(std::chrono::seconds(s)) : std::nullopt;
        }
        if (c.endpoint_address) {
            const endpoint current = ps.endpoint_owner ? ps.endpoint_owner->address.to_endpoint() : endpoint{};
            if (!ps.endpoint_owner || !(current == *c.endpoint_address)) {
                set_endpoint(ps, dataplane::socket_address::from(*c.endpoint_address, dual_stack));
            }
            ps.cfg.endpoint_address = c.endpoint_address;
        }
        if (reset || c.replace_allowed_ips) {
            drop_owned(ps.cfg.public_key, ps.cfg.allowed_ips);
            if (!ps.cfg.allowed_ips.empty()) {
                peers_changed = true;
            }
            ps.cfg.allowed_ips.clear();
        }
        for (const auto& p : c.allowed_ips) {
            auto [slot, inserted] = owner.try_emplace(p, ps.cfg.public_key);
            if (!inserted) {
                if (slot->second == ps.cfg.public_key) {
                    continue;  // already ours
                }
                touched.insert(slot->second);
                slot->second = ps.cfg.public_key;
            }
            ps.cfg.allowed_ips.push_back(p);
            peers_changed = true;
        }
        if (ps.cfg.persistent_keepalive && ps.endpoint_owner && (c.persistent_keepalive || reset)) {
            send_keepalive(ps, now);  // as the kernel: a keepalive (or the handshake it needs) at once
        }
    }
    // Peers that lost prefixes to others keep only what they still own.
    for (const auto& key : touched) {
        auto it = peers.find(key);
        if (it == peers.end()) {
            continue;
        }
        auto& list = it->second->cfg.allowed_ips;
        std::erase_if(list, [&](const ip_prefix& p) {
            auto o = owner.find(p);
            return o == owner.end() || !(o->second == key);
        });
    }
    if (peers_changed) {
        publish_snapshot();
        sync_device_routes();
    }
    if (added + removed + changed > 0 || port_changes || key_changes) {
        spdlog::info("UAPI set: {} peer(s) added, {} removed, {} updated; {} peer(s) now, port {}", added, removed,
                     changed, peers.size(), cfg.node.listen_port);
    }
    return {0, {}};
}

}  // namespace meshfwd::control
