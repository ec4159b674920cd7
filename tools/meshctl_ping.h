// `meshctl ping`: one WireGuard handshake with any WireGuard peer over UDP, then ICMP echo
// requests through the tunnel, printed like ping(8). Main thread; blocking, single-threaded.
//
// Flow: load keys -> handshake initiation (retransmitted every REKEY_TIMEOUT + jitter until
// --timeout) -> handshake response (or a cookie reply, which we consume and retry with a mac2)
// -> send a transport-data keepalive-free echo request every --interval -> decrypt replies,
// skipping keepalives and counting packets that fail authentication or the replay check.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace meshfwd::meshctl {

struct ping_options {
    std::string private_key_file;
    std::string address;  // our source address inside the tunnel
    std::string peer_key;
    std::string endpoint;
    std::string psk_file;
    std::string target;   // the address to ping inside the tunnel
    unsigned count = 3;
    std::string interval = "1s";
    std::string timeout = "5s";
    uint16_t listen_port = 0;
};

void add_ping_options(CLI::App& cmd, ping_options& opts);

// Returns 0 when at least one reply came, 1 when none did, 2 on a usage or config error.
int run_ping(const ping_options& opts);

} // namespace meshfwd::meshctl
