// The node's answers to the local API: `meshctl status` and `meshctl peers` JSON (and so /metrics).
// Control thread.
#include "control/node_state.h"



namespace meshfwd::control {

nlohmann::json node::state::status_json() {
    using nlohmann::json;
    json drops_total = json::object();
    json workers_json = json::array();
    uint64_t rx_p = 0, rx_b = 0, tx_p = 0, tx_b = 0;
    std::vector<uint64_t> totals(dataplane::n_drop_reasons, 0);
    const auto reason_name = [](unsigned r) {
        return std::string(dataplane::to_string(static_cast<dataplane::drop_reason>(r)));
    };
    const auto drops_json = [&](const dataplane::worker_counters& c) {
        json d = json::object();
        for (unsigned r = 0; r < dataplane::n_drop_reasons; ++r) {
            d[reason_name(r)] = c.drops[r].get();
        }
        return d;
    };
    const auto add_drops = [&](const dataplane::worker_counters& c) {
        for (unsigned r = 0; r < dataplane::n_drop_reasons; ++r) {
            totals[r] += c.drops[r].get();
        }
    };
    for (const auto& w : workers) {
        const auto& c = w->counters();
        rx_p += c.rx_packets.get();
        rx_b += c.rx_bytes.get();
        tx_p += c.tx_packets.get();
        tx_b += c.tx_bytes.get();
        workers_json.push_back({{"id", w->settings().id},
                                {"cpu", w->settings().cpu},
                                {"rx_packets", c.rx_packets.get()},
                                {"rx_bytes", c.rx_bytes.get()},
                                {"tx_packets", c.tx_packets.get()},
                                {"tx_bytes", c.tx_bytes.get()},
                                {"handshake_messages", c.handshake_messages.get()},
                                {"stale_source_resends", c.stale_source_resends.get()},
                                {"drops", drops_json(c)}});
        add_drops(c);
    }
    add_drops(control_counters);  // what the control thread dropped (staging overflow, rate limit, sends)
    for (const auto& [key, ps] : peers) {
        const auto& c = ps->rt->counters[control_block()];
        tx_p += c.tx_packets.get();
        tx_b += c.tx_bytes.get();
    }
    for (unsigned r = 0; r < dataplane::n_drop_reasons; ++r) {
        drops_total[reason_name(r)] = totals[r];
    }
    json rejected = json::object();
    for (const auto& [reason, n] : hs_counters.rejected) {
        rejected[reason] = n;
    }
    json handshakes = {{"rejected", rejected}};
#define X(name) handshakes[#name] = hs_counters.name;
    MESHFWD_HANDSHAKE_COUNTERS(X)
#undef X
    json addresses = json::array();
    for (const auto* list : {&cfg.node.addresses, &coord_addresses}) {
        for (const auto& a : *list) {
            addresses.push_back(a.to_string());
        }
    }
    const auto off = tun->offloads();
    const double uptime = std::chrono::duration<double>(mono_clock::now() - started).count();
    return {{"node",
             {{"name", cfg.node.name},
              {"public_key", crypto::key_to_base64(cfg.node.public_key)},
              {"listen_port", cfg.node.listen_port},
              {"lane_ports", lane_ports},
              {"address", cfg.node.address ? cfg.node.address->to_string()
                                              : coord_addresses.empty() ? std::string() : coord_addresses.front().to_string()},
              {"addresses", addresses},
              {"device", tun->name()},
              {"mtu", cfg.mesh.device.mtu},
              {"workers", workers.size()},
              {"cores", options.cores},
              {"crypto", aead_name},
              {"poll", to_string(cfg.dataplane.poll)},
              {"offloads",
               {{"tso", off.tso4 && off.tso6},
                {"uso", off.uso},
                {"udp_gso", !listen_sockets.empty() && listen_sockets[0].gso},
                {"udp_gro", !listen_sockets.empty() && listen_sockets[0].gro}}},
              {"uptime_seconds", uptime},
              {"version", MESHFWD_VERSION}}},
            {"totals", {{"rx_packets", rx_p}, {"rx_bytes", rx_b}, {"tx_packets", tx_p}, {"tx_bytes", tx_b}, {"drops", drops_total}}},
            {"workers", workers_json},
            {"handshakes", handshakes},
            {"peers", peers.size()},
            // null without mesh.discovery.server
            {"coordination", coord_json()}};
}

nlohmann::json node::state::peers_json() {
    using nlohmann::json;
    const mono_time now = mono_clock::now();
    json list = json::array();
    for (const auto& [key, ps] : peers) {
        uint64_t rx_p = 0, rx_b = 0, tx_p = 0, tx_b = 0;
        json per_worker = json::array();
        for (unsigned b = 0; b < ps->rt->counter_block_count; ++b) {
            const auto& c = ps->rt->counters[b];
            rx_p += c.rx_packets.get();
            rx_b += c.rx_bytes.get();
            tx_p += c.tx_packets.get();
            tx_b += c.tx_bytes.get();
            if (b < workers.size()) {
                per_worker.push_back({{"id", b},
                                      {"rx_packets", c.rx_packets.get()},
                                      {"tx_packets", c.tx_packets.get()},
                                      {"rx_bytes", c.rx_bytes.get()},
                                      {"tx_bytes", c.tx_bytes.get()}});
            }
        }
        json allowed = json::array();
        for (const auto& p : ps->cfg.allowed_ips) {
            allowed.push_back(p.to_string());
        }
        // A current keypair past REJECT_AFTER_TIME neither sends nor receives: say so rather
        // than "established" (it stays current until replaced, or zeroed at 3x that age).
        const bool usable = ps->current && !ps->current->keypair.expired(now);
        const char* session_state = usable                          ? "established"
                                    : ps->handshaking || ps->next   ? "handshaking"
                                    : ps->current                   ? "expired"
                                                                    : "none";
        list.push_back({{"public_key", crypto::key_to_base64(key)},
                        {"name", ps->cfg.name.empty() ? json(nullptr) : json(ps->cfg.name)},
                        {"endpoint", ps->endpoint_owner ? json(ps->endpoint_owner->address.to_endpoint().to_string()) : json(nullptr)},
                        {"allowed_ips", allowed},
                        {"latest_handshake_unix", ps->latest_handshake_unix},
                        {"rx_bytes", rx_b},
                        {"tx_bytes", tx_b},
                        {"rx_packets", rx_p},
                        {"tx_packets", tx_p},
                        {"persistent_keepalive_seconds",
                         ps->cfg.persistent_keepalive ? ps->cfg.persistent_keepalive->count() : 0},
                        {"meshfwd", ps->cfg.meshfwd},
                        {"source", ps->cfg.coordinated ? "meshcoord" : "config"},
                        {"lanes", ps->lanes.size()},
                        {"session", session_state},
                        {"handshakes", ps->handshakes},
                        {"staged_packets", ps->staged.size()},
                        {"workers", per_worker}});
    }
    return {{"peers", list}};
}

}  // namespace meshfwd::control
