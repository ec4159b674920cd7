// JWT-carried node configuration (seed 001), verified with libjwt: HS256 (shared secret) or
// RS256 (the operator's public key), as the network's options allow. A token admits a node and
// shapes what it learns: peer_whitelist.allowed_peers (public keys; empty = all), max_peers,
// auto_approve. Pure functions: any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/protocol.h"
#include "lib/result.h"

namespace meshfwd::coord {

inline constexpr std::size_t max_token = 16 * 1024;

struct node_config {
    std::string connection_type;             // "p2p-mesh" | "server-server" | "client-server"
    std::vector<std::string> allowed_ips;    // wireguard_config.allowed_ips
    std::string mesh_routing;                // mesh_config.routing
    bool auto_discovery = true;
    std::vector<std::string> allowed_peers;  // base64 keys; empty: every peer
    bool auto_approve = true;
    uint32_t max_peers = 0;                  // 0: unlimited
    std::string subnet;                      // network_config.subnet
    std::vector<std::string> dns;
    std::optional<uint32_t> mtu;
    std::string network_id;                  // claim "network": must match, when present
    std::string subject;                     // claim "sub": the node's key, when present
    int64_t expires_unix = 0;                // claim "exp" (required)
};

// Errors say which: "bad signature", "expired", "algorithm X not allowed", "malformed claim Y".
result<node_config> verify_node_token(std::string_view token, const jwt_settings& keys,
                                      int64_t now_unix);
// The policy kept with the peer record (store: peer_record::policy_json) and read back.
std::string policy_json(const node_config& config);
struct peer_policy {
    std::vector<node_key> allowed_peers; // empty: all
    uint32_t max_peers = 0;
};
peer_policy parse_policy(std::string_view policy_json); // "" or malformed: no restriction

// Checks that a network's RS256 key is a PEM public RSA key of at least 2048 bits (create-network
// validation, so a bad key is refused when configured rather than when the first node joins).
result<void> check_rs256_public_key(std::string_view pem);

} // namespace meshfwd::coord
