// meshcoord's settings: meshcoord.yaml (-c), overridden by the command line. Main thread only,
// before the server starts.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "lib/result.h"

namespace meshfwd::coord {

struct server_config {
    std::string listen = "127.0.0.1:7080";
    std::string db;                       // "" : sqlite:meshcoord.db in the working directory
    std::string stun_listen;              // "" : no STUN responder
    std::string tls_cert;
    std::string tls_key;
    std::string admin_token_file;         // else MESHCOORD_ADMIN_TOKEN; never on the command line
    std::vector<std::string> public_urls; // for invites; default: http(s)://LISTEN
    std::string legacy_network;           // seed 003's endpoints serve this network
    std::chrono::seconds offline_after{120};
    std::chrono::seconds sweep_interval{5};
};

// Reads meshcoord.yaml: every key of server_config (offline_after and sweep_interval as
// durations like "2m"); unknown keys and wrong types are errors naming the file, line and key.
result<server_config> load_server_config(const std::string& path);

// The admin token: from the file (first line, trimmed; must not be group/world readable) or
// from MESHCOORD_ADMIN_TOKEN. Empty: the admin API is off. Errors say which source failed.
result<std::string> load_admin_token(const std::string& file);

} // namespace meshfwd::coord
