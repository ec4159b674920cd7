// `meshctl status` and `meshctl peers`: fetch meshfwd's local API (control/api_server.h has the
// JSON schema) and print it for people, like `wg show`, or as raw JSON with --json. Main thread;
// blocking.
//
// The formatters take parsed JSON from a process we do not trust to be well-formed (another
// version, a different program on the port): every field is type-checked, and a missing field or
// a wrong type gives an error naming it ("peers[1].rx_bytes: not a non-negative integer"),
// never an exception or a crash.
#pragma once

#include "lib/ip_address.h"
#include "lib/result.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace meshfwd::meshctl {

struct api_options {
    std::string api;         // HOST:PORT; empty: -c, else 127.0.0.1:7082
    std::string config_file; // -c mesh.yaml: take api.listen from it
    bool json = false;       // print the raw JSON, pretty
};

void add_api_options(CLI::App& cmd, api_options& opts);

// Exit status: 0 printed; 1 the API was unreachable or answered badly; 2 usage/config error.
int run_status(const api_options& opts);
int run_peers(const api_options& opts);

// The API endpoint from --api or -c (or the default). Errors are usage/config errors (exit 2).
result<endpoint> resolve_api(const api_options& opts);

// GET `path` from the API at `api` and parse the JSON body. Errors are complete messages:
// unreachable ("cannot reach meshfwd's API at ..."), a non-200 answer, or a body that is not JSON.
result<nlohmann::json> fetch_json(const endpoint& api, std::string_view path);

// The human-readable views. `now_unix` is the current time, for "5 seconds ago".
result<std::string> format_status(const nlohmann::json& status);
result<std::string> format_peers(const nlohmann::json& peers, int64_t now_unix);

// Like wg: "512 B", "1.20 KiB", "3.40 MiB", "1.00 GiB", "2.00 TiB".
std::string format_bytes(uint64_t bytes);
// Like wg: "1 minute, 5 seconds"; "1 year, 2 days, 3 hours"; zero parts are left out; 0 -> "0 seconds".
std::string format_duration_words(uint64_t seconds);
// "5 seconds ago", "Now", "never" (handshake_unix 0), or a note when the clock went backwards.
std::string format_handshake_age(int64_t handshake_unix, int64_t now_unix);

} // namespace meshfwd::meshctl
