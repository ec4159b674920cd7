// meshctl's meshcoord commands: `networks create|list|delete`, `invite`, `approve`, `coord-peers`
// (admin calls, bearer token from --token-file or MESHCOORD_ADMIN_TOKEN) and `join` (writes a
// working mesh.yaml and a key from an invite code; no network needed: the node registers with the
// invite when it starts). Main thread; blocking.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "lib/result.h"

namespace meshfwd::meshctl {

struct coord_options {
    std::string url;         // --coord; else MESHCOORD_URL; else http://127.0.0.1:7080
    std::string token_file;  // --token-file; else MESHCOORD_ADMIN_TOKEN
    std::string ca_file;     // --ca-file: trust this CA for https:// (default: the system's)
    bool json = false;
};

struct network_create_options {
    std::string name;
    std::string id;
    std::string cidr = "10.100.0.0/16";
    bool open = false;            // require_admission: false
    bool manual_approval = false; // auto_approve: false
    uint32_t max_peers = 0;
    std::string jwt_hs256_secret_file;
    std::string jwt_rs256_public_key_file;
};

struct join_options {
    std::string code;
    std::string config_file = "mesh.yaml";
    std::string key_file;         // default: NAME.key beside the config
    std::string name;             // default: the host name
    uint16_t listen_port = 51820;
    std::string device = "mesh0";
    std::string api_listen = "127.0.0.1:7082";
};

void add_coord_options(CLI::App& cmd, coord_options& opts);

int run_networks_create(const coord_options& coord, const network_create_options& opts);
int run_networks_list(const coord_options& coord);
int run_networks_delete(const coord_options& coord, const std::string& id);
int run_invite(const coord_options& coord, const std::string& network, unsigned hours);
int run_approve(const coord_options& coord, const std::string& network, const std::string& peer);
int run_coord_peers(const coord_options& coord, const std::string& network);
int run_join(const join_options& opts);

// The mesh.yaml `join` writes (exposed for tests).
std::string join_config_text(const join_options& opts, const std::string& network_id,
                             const std::vector<std::string>& servers, const std::string& server_public_key,
                             const std::string& key_file);

} // namespace meshfwd::meshctl
