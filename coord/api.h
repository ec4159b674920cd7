// meshcoord's HTTP API: routing and handlers, independent of the transport (coord/http_server.h
// parses HTTP and calls handle()). Seed 000's /api/v1/mesh/... endpoints with seed 003's
// semantics, seed 003's own /register, /heartbeat and /peers, invites and approval.
//
// Who may call what:
//   admin (Authorization: Bearer <token>): networks create/list/get/delete, invites, approve,
//     list every peer of a network (pending ones too), remove any peer;
//   node (request signed with its WireGuard key, coord/request_auth.h): register itself, heartbeat,
//     list and follow the peers it may see, remove itself;
//   anyone: GET /api/v1/server (the server's public key), GET /healthz, and seed 003's endpoints on
//     the one network an operator opened for them (--legacy-network; seed 003 has no auth).
//
// Threads: the server's io_context thread only (handlers call the store synchronously).
#pragma once

#include <utility> // before Boost 1.74's asio/awaitable.hpp, which uses std::exchange without it
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "coord/event_hub.h"
#include "coord/heartbeat_batcher.h"
#include "coord/request_auth.h"
#include "coord/protocol.h"
#include "coord/store.h"
#include "crypto/secret.h"

namespace meshfwd::coord {

struct api_request {
    std::string method;          // "GET", "POST", "DELETE"
    std::string target;          // path and query, as received
    std::function<std::string_view(std::string_view)> header; // "" when absent
    std::string body;
    std::string remote;          // "ip:port" of the client
};

struct api_response {
    unsigned status = 200;
    std::string body;            // JSON
};

struct api_options {
    std::string admin_token;                // empty: admin API disabled (every admin call 401)
    std::vector<std::string> public_urls;   // put in invites; the replicas' URLs
    std::string legacy_network;             // seed 003's endpoints serve this network ("": off)
    std::chrono::seconds offline_after{120};
    std::chrono::seconds default_invite_lifetime{24 * 3600};
};

// A request authenticated as a node, for the WebSocket upgrade.
struct node_identity {
    std::string network_id;
    node_key key{};
};

class api {
public:
    api(boost::asio::io_context& io, store& db, event_hub& hub, heartbeat_batcher& beats,
        api_options options, const server_identity& identity);

    boost::asio::awaitable<api_response> handle(const api_request& request);

    // For GET .../networks/{id}/events: who is asking (a node, or the admin with node unset).
    // Errors are the response to send instead of upgrading.
    struct events_access {
        std::string network_id;
        std::optional<node_key> node; // unset: the admin, who sees every peer
        std::optional<api_response> refusal;
    };
    events_access authorize_events(const api_request& request);
    bool is_events_path(std::string_view target) const;

    const node_key& server_public_key() const noexcept { return _server_public; }

private:
    api_response admin_refusal(const api_request& request) const; // 401 unless the token matches
    bool is_admin(const api_request& request) const;

    api_response create_network(const api_request& request);
    api_response list_networks();
    api_response get_network(const std::string& id);
    api_response delete_network(const std::string& id);
    api_response create_invite(const std::string& id, std::string_view query);
    api_response list_peers(const std::string& id, const api_request& request);
    api_response remove_peer(const std::string& id, const std::string& peer, const api_request& request);
    api_response approve_peer(const std::string& id, const std::string& peer);
    api_response register_node(const std::string& id, const api_request& request);
    boost::asio::awaitable<api_response> node_heartbeat(const std::string& id, const api_request& request);
    // Seed 003.
    api_response legacy_register(const api_request& request);
    boost::asio::awaitable<api_response> legacy_heartbeat(const api_request& request);
    api_response legacy_peers(std::string_view query);

    // Verifies a node's signature and freshness; on success the node's key, else the refusal.
    struct authenticated {
        node_key key{};
        uint64_t counter = 0;
        std::optional<api_response> refusal;
    };
    authenticated authenticate_node(const api_request& request);

    result<std::optional<network_record>> find_network(const std::string& id);
    network_options options_of(const network_record& network) const;
    std::optional<peer_record> find_peer(const std::string& network_id, const std::string& peer);
    network_view make_network_view(const network_record& network) const;

    boost::asio::io_context& _io;
    store& _db;
    event_hub& _hub;
    heartbeat_batcher& _beats;
    api_options _options;
    node_key _server_public{};
    request_key_cache _request_keys; // holds the server's X25519 secret
    std::unordered_map<std::string, uint64_t> _last_counter; // by network + key: fast replay check
};

// Helpers shared with the transport.
api_response json_error(unsigned status, std::string_view code, std::string_view message);

} // namespace meshfwd::coord
