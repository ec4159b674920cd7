// SIGHUP: reloads mesh.yaml into the running node, peer by peer, or refuses it; apply_peers, the
// peer-by-peer part, is also how meshcoord's peer list reaches the data plane. Control thread.
#include "control/node_state.h"

#include "control/config_yaml.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace meshfwd::control {

namespace {

std::string prefixes_to_string(const std::vector<ip_prefix>& v) {
    std::string s;
    for (const auto& p : v) {
        s += (s.empty() ? "" : ", ") + p.to_string();
    }
    return s;
}

bool same_prefixes(std::vector<ip_prefix> a, std::vector<ip_prefix> b) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    return a == b;
}

}  // namespace

void node::state::reload() {
    spdlog::info("SIGHUP: reloading {}", cfg.source.string());
    auto fresh = load_config(cfg.source, load_options{});
    if (!fresh) {
        spdlog::error("reload refused, still running the previous configuration: {}", fresh.error_message());
        return;
    }
    config& n = *fresh;
    for (const auto& w : n.warnings) {
        spdlog::warn("reload: {}", w);
    }
    const auto warn_restart = [](const char* what) {
        spdlog::warn("reload: {} changed; restart meshfwd to apply it (kept the running value)", what);
    };
    if (!(n.node.public_key == cfg.node.public_key)) warn_restart("node.private_key_file (the node's key)");
    if (n.node.listen_port != cfg.node.listen_port) warn_restart("node.listen_port");
    if (!same_prefixes(n.node.addresses, cfg.node.addresses)) warn_restart("node.address");
    if (n.mesh.device.name != cfg.mesh.device.name || n.mesh.device.mtu != cfg.mesh.device.mtu) warn_restart("mesh.device");
    if (!(n.api.listen == cfg.api.listen)) warn_restart("api.listen");
    const auto urls = [](const discovery_config& d) {
        std::vector<std::string> v;
        for (const auto& s : d.servers) v.push_back(s.url());
        return v;
    };
    if (urls(n.mesh.discovery) != urls(cfg.mesh.discovery) || n.mesh.network_id != cfg.mesh.network_id ||
        n.mesh.discovery.server_public_key != cfg.mesh.discovery.server_public_key ||
        n.mesh.discovery.cache_file != cfg.mesh.discovery.cache_file ||
        n.mesh.discovery.publish_endpoints != cfg.mesh.discovery.publish_endpoints ||
        n.mesh.discovery.heartbeat_interval != cfg.mesh.discovery.heartbeat_interval) {
        warn_restart("mesh.discovery or mesh.network_id (the meshcoord client)");
    }

    // The static peers are the file's; meshcoord's stay as they are and join them.
    const auto desired = desired_peers(n.peers);
    cfg.peers = std::move(n.peers);
    apply_peers(desired, "reload");
}

void node::state::apply_peers(const std::vector<control::peer_config>& desired, const char* why) {
    unsigned added = 0, removed = 0, changed = 0;
    const mono_time now = mono_clock::now();
    // Removed peers.
    for (auto it = peers.begin(); it != peers.end();) {
        const bool keep = std::any_of(desired.begin(), desired.end(),
                                      [&](const control::peer_config& p) { return p.public_key == it->first; });
        if (keep) {
            ++it;
            continue;
        }
        spdlog::info("{}: peer {} removed", why, crypto::key_to_base64(it->first));
        remove_peer(*it->second);
        it = peers.erase(it);
        ++removed;
    }
    // Added and changed peers.
    for (const auto& p : desired) {
        auto it = peers.find(p.public_key);
        if (it == peers.end()) {
            if (auto r = add_peer(p); !r) {
                spdlog::error("{}: {}", why, r.error_message());
                continue;
            }
            spdlog::info("{}: peer {} added ({})", why, crypto::key_to_base64(p.public_key),
                         prefixes_to_string(p.allowed_ips));
            ++added;
            continue;
        }
        peer_state& ps = *it->second;
        bool diff = false;
        if (p.name != ps.cfg.name) {
            ps.cfg.name = p.name;
            diff = true;
        }
        if (!same_prefixes(ps.cfg.allowed_ips, p.allowed_ips)) {
            ps.cfg.allowed_ips = p.allowed_ips;
            diff = true;
        }
        if (p.endpoint_address != ps.cfg.endpoint_address) {
            ps.cfg.endpoint_address = p.endpoint_address;
            if (p.endpoint_address) {
                set_endpoint(ps, dataplane::socket_address::from(*p.endpoint_address, dual_stack));
            }
            diff = true;
        }
        if (p.persistent_keepalive != ps.cfg.persistent_keepalive) {
            ps.cfg.persistent_keepalive = p.persistent_keepalive;
            diff = true;
        }
        if (p.meshfwd != ps.cfg.meshfwd) {
            ps.cfg.meshfwd = p.meshfwd;
            ps.rt->meshfwd.store(p.meshfwd);
            if (!p.meshfwd) {
                forget_lanes(ps);  // a plain peer gets no lanes, nor mesh frames
            }
            diff = true;
        }
        if (p.coordinated != ps.cfg.coordinated) {
            ps.cfg.coordinated = p.coordinated;  // moved between mesh.yaml and meshcoord
            diff = true;
        }
        const bool psk_changed = p.preshared_key.has_value() != ps.cfg.preshared_key.has_value() ||
                                 (p.preshared_key && !(*p.preshared_key == *ps.cfg.preshared_key));
        if (psk_changed) {
            // Takes effect at the next handshake; the running session is kept, as wg does.
            ps.cfg.preshared_key.reset();
            if (p.preshared_key) {
                ps.cfg.preshared_key = p.preshared_key->clone();
            }
            if (!ps.noise.init(identity, p.public_key, p.preshared_key ? &*p.preshared_key : nullptr)) {
                spdlog::error("{}: peer {}: low-order key", why, crypto::key_to_base64(p.public_key));
            }
            diff = true;
        }
        if (diff) {
            ++changed;
            spdlog::info("{}: peer {} changed", why, crypto::key_to_base64(p.public_key));
        }
    }

    publish_snapshot();
    sync_device_routes();
    for (auto& [key, ps] : peers) {
        if (ps->cfg.persistent_keepalive && ps->endpoint_owner && !ps->current && !ps->handshaking) {
            send_initiation(*ps, now, false);
        }
    }
    spdlog::info("{} done: {} peer(s) added, {} removed, {} changed; {} peer(s) now", why, added, removed, changed,
                 peers.size());
}

}  // namespace meshfwd::control
