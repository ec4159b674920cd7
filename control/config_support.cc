// What this version acts on (see config_support.h). Each key of the design that is not built yet
// gets one decision, kept in this file so that the list is easy to audit:
//   refused: mesh.device.type tap, dataplane.port.type dpdk (the node cannot run them),
//            gateway.exit_node and gateway.forwards (an operator relying on them would expose or
//            lose services without knowing);
//   warned, then ignored: mesh.network_id without a discovery server, mesh.stun,
//            mesh.turn, mesh.connection, mesh.routing (NAT traversal and mesh routing: without
//            them the node still talks to its static peers), mesh.device.mac_address with tun,
//            dataplane.port.dpdk.eal_args with uring.
// Loading thread only.
#include "control/config_support.h"

#include <string>

namespace meshfwd::control {
namespace {

constexpr const char* not_implemented = "not implemented in this version: ";

// The key's own position when it was written, else the nearest written parent's, else the file start.
YAML::Mark mark_of(const config_reader& r, std::string path) {
    while (!path.empty()) {
        if (const auto* m = r.key_mark(path)) {
            return *m;
        }
        const auto dot = path.rfind('.');
        path = dot == std::string::npos ? std::string() : path.substr(0, dot);
    }
    return YAML::Mark();
}

} // namespace

void check_supported(const config& cfg, config_reader& r) {
    const auto error = [&](const std::string& path, const std::string& what) {
        r.error_at(mark_of(r, path), path, not_implemented + what);
    };
    const auto warn = [&](const std::string& path, const std::string& what) {
        r.warning_at(mark_of(r, path), path, not_implemented + what + "; ignored");
    };

    // ---- refused --------------------------------------------------------------------------
    if (cfg.mesh.device.type == device_type::tap) {
        error("mesh.device.type", "TAP (layer 2) devices; use tun");
    }
    if (cfg.dataplane.port.type == port_type::dpdk) {
        error("dataplane.port.type", "DPDK ports; use uring");
    }
    if (cfg.gateway.exit_node) {
        error("gateway.exit_node", "exit node (0.0.0.0/0 and ::/0 with masquerade); remove it or set false");
    }
    if (!cfg.gateway.forwards.empty()) {
        error("gateway.forwards", "gateway port forwards; remove them (nothing would listen on their ports)");
    }

    // ---- warned about, then ignored -------------------------------------------------------
    // mesh.enabled needs mesh.discovery.server (the loader checks), which runs the meshcoord
    // client; a network id with no server to ask is all that is left unused.
    if (!cfg.mesh.network_id.empty() && !cfg.mesh.discovery.enabled()) {
        r.warning_at(mark_of(r, "mesh.network_id"), "mesh.network_id",
                     "used with mesh.discovery.server only (there is no meshcoord to join it through); ignored");
    }
    if (!cfg.mesh.stun_servers.empty()) {
        warn("mesh.stun", "STUN (NAT traversal); peers are reached at their configured endpoints");
    }
    if (!cfg.mesh.turn_servers.empty()) {
        warn("mesh.turn", "TURN relays");
    }
    for (const char* section : {"mesh.connection", "mesh.routing"}) {
        if (r.key_mark(section) != nullptr) {
            warn(section, std::string(section) == "mesh.connection" ? "NAT traversal and relays" : "mesh routing");
        }
    }
    if (cfg.mesh.device.mac_address && cfg.mesh.device.type == device_type::tun) {
        r.warning_at(mark_of(r, "mesh.device.mac_address"), "mesh.device.mac_address",
                     "used by tap devices only; ignored with tun");
    }
    if (!cfg.dataplane.port.dpdk.eal_args.empty() && cfg.dataplane.port.type != port_type::dpdk) {
        r.warning_at(mark_of(r, "dataplane.port.dpdk.eal_args"), "dataplane.port.dpdk.eal_args",
                     "used with dataplane.port.type dpdk only; ignored");
    }
}

result<void> check_workers(const config& cfg, size_t n_workers) {
    const auto& range = cfg.dataplane.lane_ports;
    if (range && range->size() < n_workers) {
        return make_error(range->location + ": dataplane.lane_ports: " + std::to_string(range->first) + "-" +
                          std::to_string(range->last) + " holds " + std::to_string(range->size()) + " port" +
                          (range->size() == 1 ? "" : "s") + "; " + std::to_string(n_workers) +
                          " workers need one each (widen the range or give fewer --cores)");
    }
    return {};
}

} // namespace meshfwd::control
