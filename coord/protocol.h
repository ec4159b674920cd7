// meshcoord's wire formats, shared by the server (coord/) and its clients (meshfwd's control
// thread, meshctl): the JSON bodies of the HTTP API and the WebSocket event messages. Defined
// once here so the two sides can never disagree. Parsers are strict: unknown fields, wrong types,
// out-of-range values and oversized strings or arrays are refused with a message naming the
// field. Value types and pure functions: any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/store.h"
#include "lib/ip_address.h"
#include "lib/result.h"

namespace meshfwd::coord {

// Request bodies larger than this are refused (413) before parsing. Documented in coord/README.md.
inline constexpr std::size_t max_request_body = 64 * 1024;
inline constexpr std::size_t max_endpoints = 16;
inline constexpr std::size_t max_text_field = 255; // hostname, os, name
// Bodies meshcoord sends (a snapshot of a large network): what its clients accept.
inline constexpr std::size_t max_response_body = 64 * 1024 * 1024;
// The MTU range a JWT or a response may carry: IPv6's minimum link MTU up to the largest a
// WireGuard packet over IPv4 allows (crypto::limits::max_mtu).
inline constexpr uint32_t min_mtu = 1280;
inline constexpr uint32_t max_mtu = 65475;

struct jwt_settings {
    std::string hs256_secret;        // empty: HS256 tokens refused
    std::string rs256_public_key_pem; // empty: RS256 tokens refused
};

struct network_options {
    uint32_t heartbeat_interval_s = 30;
    uint32_t offline_after_s = 120;
    bool auto_approve = true;        // default for nodes without a JWT saying otherwise
    uint32_t max_peers = 0;          // 0: unlimited
    bool require_admission = true;   // false: any key may register (seed 003 style, open network)
    jwt_settings jwt;
};

// POST /api/v1/mesh/networks
struct create_network_request {
    std::string id;                  // optional; generated when empty
    std::string name;
    std::string cidr;                // IPv4, /8 ... /30
    network_options options;
};

// What GET /api/v1/mesh/networks[/{id}] returns per network.
struct network_view {
    std::string id;
    std::string name;
    std::string cidr;
    std::string ula_prefix;          // "fdxx:xxxx:xxxx::/48"
    std::string invite_public_key;   // base64 Ed25519
    network_options options;         // jwt secrets never included in a view
    bool jwt_hs256 = false;          // whether the network accepts HS256 / RS256 tokens
    bool jwt_rs256 = false;
    int64_t created_ms = 0;
};

// POST /api/v1/mesh/networks/{id}/peers (and meshfwd's re-registration): the node is the
// request signer (see request_auth.h); the body describes it.
struct register_request {
    std::string public_key;          // base64, must equal the signer's key
    std::string hostname;
    std::string os;
    std::vector<std::string> endpoints;
    bool exit_node = false;
    std::string invite;              // one of invite / token, unless already registered or open
    std::string token;               // JWT
};

struct register_response {
    std::string peer_id;
    std::string assigned_ip;         // IPv4
    std::string ipv6;                // key-derived ULA
    std::string network_cidr;
    std::string ula_prefix;
    std::string server_public_key;   // base64 X25519
    bool approved = true;
    uint32_t heartbeat_interval_s = 30;
    int64_t version = 0;
    std::optional<uint32_t> mtu;     // from the JWT's network_config, when given
};

// A peer as every API returns it (seed 003's fields plus ours).
struct peer_view {
    std::string id;
    std::string public_key;          // base64
    std::string virtual_ip;          // IPv4
    std::string ipv6;
    std::vector<std::string> endpoints;
    std::string endpoint;            // the first endpoint, seed 003's single field
    std::string hostname;
    std::string os;
    std::vector<std::string> allowed_ips; // "10.100.0.2/32", "fd..../128"
    bool exit_node = false;
    bool online = false;
    bool approved = true;
    std::string last_heartbeat;      // RFC 3339 UTC, "" if never
};

// POST /heartbeat (seed 003) and meshfwd's signed heartbeat.
struct heartbeat_request {
    std::string peer_id;
    std::optional<std::vector<std::string>> endpoints;
    std::string endpoint;            // seed 003's single endpoint
};

// WebSocket: the client's first message, then the server's.
struct subscribe_request {
    int64_t since_version = 0;       // 0: send a snapshot
};
struct event_message {
    std::string type;                // "snapshot" | "event"
    int64_t version = 0;
    std::string kind;                // joined | left | changed | online | offline (events only)
    std::string public_key;          // events only
    std::optional<peer_view> peer;   // events other than left
    std::vector<peer_view> peers;    // snapshot only
};

result<create_network_request> parse_create_network(std::string_view body);
result<register_request> parse_register(std::string_view body);
result<heartbeat_request> parse_heartbeat(std::string_view body);
result<subscribe_request> parse_subscribe(std::string_view body);
result<register_response> parse_register_response(std::string_view body);
result<event_message> parse_event_message(std::string_view body);
result<std::vector<peer_view>> parse_peer_list(std::string_view body); // {"peers":[...]}
result<network_view> parse_network_view(std::string_view body);
result<std::vector<network_view>> parse_network_list(std::string_view body); // {"networks":[...]}

std::string to_json(const create_network_request&);
std::string to_json(const register_request&);
std::string to_json(const heartbeat_request&);
std::string to_json(const subscribe_request&);
std::string to_json(const register_response&);
std::string to_json(const event_message&);
std::string to_json(const network_view&);
std::string peer_list_json(const std::vector<peer_view>&);
std::string network_list_json(const std::vector<network_view>&);
// {"error":{"code":"...","message":"..."}}
std::string error_json(std::string_view code, std::string_view message);

// The network options as the store keeps them (network_record::options_json), secrets included.
std::string options_json(const network_options& options);
result<network_options> parse_options_json(std::string_view json);

// Field validators the server also applies to path segments and headers.
bool valid_id(std::string_view id);                      // [a-z0-9-]{1,63}
result<ip_prefix> parse_network_cidr(std::string_view text); // IPv4, /8.../30, canonical
// Exactly 44 characters of canonical standard base64 (wg's form); no whitespace.
std::optional<node_key> parse_key(std::string_view text);
std::string key_text(const node_key& key);
// "2024-01-01T12:00:00Z"; "" for 0.
std::string format_rfc3339(int64_t unix_ms);

// Conversions between the store's records and the views.
peer_view make_peer_view(const peer_record& peer, std::string_view ula_prefix);
const char* event_kind_name(event_kind kind);

} // namespace meshfwd::coord
