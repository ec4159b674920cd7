// meshcoord on the node's side: the cache file at start, the session's updates applied (the
// assigned addresses on the device; the peer list through apply_peers, the same path as a
// SIGHUP reload, so unchanged peers keep their sessions), the cache kept current, and the
// `coordination` object of the status JSON. Control thread.
#include "control/node_state.h"

#include "control/coord_cache.h"
#include "dataplane/netlink.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace meshfwd::control {

namespace {

// The IPv6 the node derives from its key lives in the network's ULA /48. The device gets the
// whole /48 as its on-link prefix, as the IPv4 address gets the network's CIDR length: every
// node's key-derived address is then routed to the device without a route per peer, and the
// allowed-IPs trie picks the peer.
constexpr unsigned ula_prefix_length = 48;
// The cache is rewritten at most this often (every event stream message would fsync otherwise).
constexpr auto cache_save_interval = 1s;

std::vector<ip_prefix> registration_addresses(const coord::register_response& reg) {
    std::vector<ip_prefix> out;
    auto cidr = ip_prefix::parse(reg.network_cidr);
    auto v4 = ip_address::parse(reg.assigned_ip);
    if (cidr && v4 && v4->is_v4() && cidr->address().is_v4()) {
        if (auto p = ip_prefix::make(*v4, cidr->length())) {
            out.push_back(*p);
        }
    }
    if (auto v6 = ip_address::parse(reg.ipv6); v6 && v6->is_v6()) {
        if (auto p = ip_prefix::make(*v6, ula_prefix_length)) {
            out.push_back(*p);
        }
    }
    return out;
}

}  // namespace

void node::state::coord_load_cache() {
    const auto& d = cfg.mesh.discovery;
    if (!d.enabled()) {
        return;
    }
    auto loaded = load_coord_cache(d.cache_file);
    if (!loaded) {
        spdlog::warn("meshcoord cache: {}; starting without it", loaded.error_message());
        return;
    }
    if (!loaded->has_value()) {
        spdlog::info("meshcoord cache {}: none yet (first start)", d.cache_file.string());
        return;
    }
    coord_cache& c = **loaded;
    if (c.network_id != cfg.mesh.network_id || c.public_key != crypto::key_to_base64(cfg.node.public_key)) {
        spdlog::warn("meshcoord cache {}: written for network '{}' and another key or network; not used",
                     d.cache_file.string(), c.network_id);
        return;
    }
    coord_registration = std::move(c.registration);
    coord_peers = std::move(c.peers);
    coord_server = c.server;
    coord_from_cache = true;
    spdlog::info("meshcoord cache {}: {}, {} peer(s) at version {}", d.cache_file.string(),
                 coord_registration ? "address " + coord_registration->assigned_ip : std::string("not registered"),
                 coord_peers.peers.size(), coord_peers.version);
}

result<void> node::state::coord_start() {
    const auto& d = cfg.mesh.discovery;
    if (!d.enabled()) {
        return {};
    }
    coord_settings s;
    s.servers = d.servers;
    s.network_id = cfg.mesh.network_id;
    s.node_public = cfg.node.public_key;
    s.node_secret = cfg.node.private_key.clone();
    s.server_public = *d.server_public_key;
    s.invite = d.invite;
    s.token = d.token;
    s.hostname = cfg.node.name;
    s.publish_endpoints = d.publish_endpoints;
    s.listen_port = cfg.node.listen_port;
    s.device_name = tun->name();
    s.heartbeat_interval = d.heartbeat_interval;
    s.since_version = coord_peers.version;
    s.registered_before = coord_registration.has_value();
    auto client = coord_client::start(std::move(s), wake_fd);
    if (!client) {
        return make_error(client.error_message());
    }
    coord = std::move(*client);
    if (coord_server.empty()) {
        coord_server = d.servers.front().url();
    }
    return {};
}

void node::state::coord_poll() {
    if (!coord) {
        return;
    }
    const auto updates = coord->take();
    bool peers_changed = false;
    for (const auto& u : updates) {
        if (u.state_changed) {
            if (!u.error.empty() && (u.error != coord_error || u.server != coord_server)) {
                spdlog::warn("meshcoord {}: {}", u.server, u.error);
            } else if (u.connected && !coord_connected) {
                spdlog::info("meshcoord {}: following the event stream", u.server);
            }
            coord_server = u.server;
            coord_connected = u.connected;
            coord_error = u.error;
        }
        if (u.registration) {
            coord_apply_registration(*u.registration);
            coord_registration = *u.registration;
            coord_from_cache = false;
            coord_dirty = true;
        }
        if (u.event) {
            const int64_t before = coord_peers.version;
            if (auto r = apply_event(coord_peers, *u.event); !r) {
                spdlog::warn("meshcoord {}: {}", coord_server, r.error_message());
                continue;
            }
            if (u.event->type == "snapshot" || coord_peers.version != before) {
                peers_changed = true;
                coord_from_cache = false;
                coord_dirty = true;
            }
        }
    }
    if (peers_changed) {
        apply_peers(desired_peers(cfg.peers), "meshcoord");
    }
    const mono_time now = mono_clock::now();
    if (coord_dirty && now - coord_saved >= cache_save_interval) {
        coord_save_cache();
        coord_saved = now;
        coord_dirty = false;
    }
}

void node::state::coord_apply_registration(const coord::register_response& reg) {
    if (!reg.approved) {
        spdlog::info("meshcoord: registered as {}, pending an administrator's approval", reg.peer_id);
    }
    const auto want = registration_addresses(reg);
    std::vector<ip_prefix> now = coord_addresses;
    for (const auto& old : coord_addresses) {
        if (std::find(want.begin(), want.end(), old) == want.end()) {
            // The same key always gets the same address; a change means the network was rebuilt.
            spdlog::warn("meshcoord: assigned addresses changed; {} stays on {} until meshfwd restarts", old.to_string(),
                         tun->name());
        }
    }
    bool added = false;
    for (const auto& a : want) {
        const bool have = std::find(now.begin(), now.end(), a) != now.end() ||
                          std::find(cfg.node.addresses.begin(), cfg.node.addresses.end(), a) != cfg.node.addresses.end();
        if (have) {
            continue;
        }
        if (auto r = tun->add_address(a); !r) {
            spdlog::error("meshcoord: address {} on {}: {}", a.to_string(), tun->name(), r.error_message());
            continue;
        }
        spdlog::info("meshcoord: address {} on {}", a.to_string(), tun->name());
        now.push_back(a);
        added = true;
    }
    coord_addresses = std::move(now);
    if (added && !workers.empty()) {
        sync_device_routes();  // some routes may now be on-link
    }
    if (reg.mtu) {
        coord_apply_mtu(*reg.mtu);
    }
}

// The network's MTU from the node's JWT (network_config.mtu) sets the device's link MTU; the
// next watch_device() tick sees the change and resizes the workers, as for `ip link set mtu`.
// It wins over mesh.device.mtu (the admin's token describes the network's path); a value the
// device cannot take (below 1280, which IPv6 needs, or above what WireGuard can carry) is
// refused with an error and the configured MTU stays.
void node::state::coord_apply_mtu(uint32_t mtu) {
    // The wire protocol's own bounds (parse_register_response checks them too; a cache file
    // edited by hand goes through that parser as well).
    if (mtu < coord::min_mtu || mtu > coord::max_mtu) {
        spdlog::error("meshcoord: the token's MTU {} is outside {}..{}; {} keeps MTU {}", mtu, coord::min_mtu, coord::max_mtu,
                      tun->name(), cfg.mesh.device.mtu);
        return;
    }
    if (mtu == device_mtu_seen) {
        return;
    }
    if (auto r = dataplane::netlink::set_link_mtu(tun->ifindex(), mtu); !r) {
        spdlog::error("meshcoord: MTU {} on {}: {}", mtu, tun->name(), r.error_message());
        return;
    }
    spdlog::info("meshcoord: MTU {} on {} (from the node's token)", mtu, tun->name());
}

std::vector<control::peer_config> node::state::desired_peers(const std::vector<control::peer_config>& static_peers) {
    std::vector<control::peer_config> coordinated;
    if (cfg.mesh.discovery.enabled()) {
        auto conv = to_peer_configs(coord_peers, cfg.node.public_key);
        for (const auto& s : conv.skipped) {
            spdlog::debug("meshcoord: {}", s);
        }
        coordinated = std::move(conv.peers);
    }
    std::vector<std::string> notes;
    auto all = merge_peers(static_peers, coordinated, notes);
    for (const auto& n : notes) {
        spdlog::debug("meshcoord: {}", n);
    }
    return all;
}

void node::state::coord_save_cache() {
    coord_cache c;
    c.network_id = cfg.mesh.network_id;
    c.public_key = crypto::key_to_base64(cfg.node.public_key);
    c.server = coord_server;
    c.registration = coord_registration;
    c.peers = coord_peers;
    if (auto r = save_coord_cache(cfg.mesh.discovery.cache_file, c); !r) {
        spdlog::warn("meshcoord cache: {}", r.error_message());
    }
}

nlohmann::json node::state::coord_json() {
    using json = nlohmann::json;
    const auto& d = cfg.mesh.discovery;
    if (!d.enabled()) {
        return nullptr;
    }
    json servers = json::array();
    for (const auto& s : d.servers) {
        servers.push_back(s.url());
    }
    json addresses = json::array();
    for (const auto& a : coord_addresses) {
        addresses.push_back(a.to_string());
    }
    size_t online = 0;
    for (const auto& [key, view] : coord_peers.peers) {
        online += view.online && view.public_key != crypto::key_to_base64(cfg.node.public_key) ? 1 : 0;
    }
    const auto* reg = coord_registration ? &*coord_registration : nullptr;
    return {{"network_id", cfg.mesh.network_id},
            {"servers", servers},
            {"server", coord_server},
            {"connected", coord_connected},
            {"registered", reg != nullptr && reg->approved},
            {"peer_id", reg != nullptr ? json(reg->peer_id) : json(nullptr)},
            {"addresses", addresses},
            {"version", coord_peers.version},
            {"peers", coord_peers.peers.size()},
            {"peers_online", online},
            {"from_cache", coord_from_cache},
            {"last_error", coord_error.empty() ? json(nullptr) : json(coord_error)},
            {"cache_file", d.cache_file.string()}};
}

}  // namespace meshfwd::control
