// meshcoord's storage: one interface, two backends (SQLite, the default; PostgreSQL for several
// replicas on one database). Everything that must survive a crash lives here: networks, peers and
// their addresses, invites, per-node request counters, the server identity, and the versioned
// event log that nodes follow.
//
// Threads: a store object is used by one thread at a time (meshcoord's server thread). The change
// listener is called from the store's own listener thread (PostgreSQL NOTIFY) or inline from the
// writing call (SQLite); it must only post work elsewhere.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lib/result.h"

namespace meshfwd::coord {

using node_key = std::array<uint8_t, 32>; // a node's WireGuard static public key

struct network_record {
    std::string id;            // [a-z0-9-]{1,63}, chosen by the admin or generated
    std::string name;
    std::string cidr;          // IPv4 prefix in canonical text, e.g. "10.100.0.0/16"
    int64_t created_ms = 0;
    std::vector<uint8_t> invite_public_key; // Ed25519, 32 bytes
    std::vector<uint8_t> invite_secret_key; // Ed25519 (libsodium form), 64 bytes
    std::string options_json;  // network options (heartbeat, auto_approve, JWT keys...), opaque here
};

struct peer_record {
    std::string network_id;
    node_key public_key{};
    std::string peer_id;       // "peer-" + 12 hex digits, stable per (network, key)
    uint32_t ipv4 = 0;         // host order, inside the network's CIDR, unique per network
    std::string hostname;
    std::string os;
    std::vector<std::string> endpoints; // "ip:port" / "[ip6]:port" candidates, as published
    bool exit_node = false;
    bool approved = true;      // false: pending an admin's approval; invisible to other nodes
    bool online = false;
    int64_t last_heartbeat_ms = 0;
    int64_t created_ms = 0;
    std::string policy_json;   // the node's whitelist/limits from its JWT; opaque here
    int64_t version = 0;       // the event version of this row's last change
};

enum class event_kind : uint8_t { joined, left, changed, online, offline };

struct event_record {
    int64_t version = 0;       // strictly increasing over the whole database
    std::string network_id;
    event_kind kind = event_kind::changed;
    node_key public_key{};
    std::optional<peer_record> peer; // the peer's current row; absent for `left`
};

struct event_batch {
    // True when `since` is older than the oldest retained event of the network: the caller must
    // send a full snapshot (list_peers + current_version) instead of deltas.
    bool snapshot_needed = false;
    // Only the latest event per key since `since`, in version order: a node that missed several
    // changes of one peer gets one record for it.
    std::vector<event_record> events;
    int64_t version = 0;       // the version the caller is up to date with after applying these
};

struct registration {
    std::string network_id;
    node_key public_key{};
    std::string hostname;
    std::string os;
    std::vector<std::string> endpoints;
    bool exit_node = false;
    bool approved = true;      // for a new peer; an existing peer keeps its approval state
    std::string policy_json;
    uint64_t request_counter = 0; // see advance_request_counter; stored for a new peer
    // A new peer's address comes from this IPv4 prefix inside the network's CIDR (a JWT's
    // network_config.subnet) instead of the whole CIDR; "" = the whole CIDR. An existing peer
    // keeps its address. A subnet outside the CIDR is an error; a full one is network_full.
    std::string subnet;
};

enum class register_status : uint8_t { created, updated, no_network, network_full };
struct register_outcome {
    register_status status = register_status::created;
    std::optional<peer_record> peer; // set for created/updated
};

struct heartbeat {
    std::string network_id;
    node_key public_key{};
    std::optional<std::vector<std::string>> endpoints; // absent: unchanged
    // The signed request's counter: recorded only if greater than the stored one (as
    // advance_request_counter), else the beat is refused as `replayed`. 0: no check (seed 003).
    uint64_t request_counter = 0;
};
enum class heartbeat_status : uint8_t { ok, came_online, unknown_peer, replayed };

enum class invite_status : uint8_t { consumed, already_used, unknown };

struct server_identity {
    std::vector<uint8_t> x25519_secret; // 32 bytes: the key nodes authenticate requests against
    std::vector<uint8_t> x25519_public;
};

class store {
public:
    virtual ~store() = default;

    // Networks. create_network fails with a clear message if the id exists.
    virtual result<void> create_network(const network_record& network) = 0;
    virtual result<std::vector<network_record>> list_networks() = 0;
    virtual result<std::optional<network_record>> get_network(const std::string& id) = 0;
    virtual result<bool> delete_network(const std::string& id) = 0; // false: no such network

    // Registers a new key (allocating the lowest free IPv4 of the CIDR, never the network or
    // broadcast address of prefixes shorter than /31, uniqueness enforced by a database
    // constraint) or updates an existing one (same address back). Appends `joined` (new and
    // approved) or `changed` in the same transaction. Acknowledged means committed durably.
    virtual result<register_outcome> register_peer(const registration& request, int64_t now_ms) = 0;
    virtual result<std::optional<peer_record>> get_peer(const std::string& network_id, const node_key& key) = 0;
    virtual result<std::optional<peer_record>> get_peer_by_id(const std::string& peer_id) = 0;
    virtual result<std::vector<peer_record>> list_peers(const std::string& network_id) = 0;
    virtual result<bool> remove_peer(const std::string& network_id, const node_key& key) = 0; // + `left`
    virtual result<bool> approve_peer(const std::string& network_id, const node_key& key) = 0; // + `joined`
    // Publishes a peer's changed fields (endpoints, hostname, os, exit_node); + `changed`.
    virtual result<bool> update_peer(const registration& changes) = 0;

    // Records many heartbeats in one transaction (the server batches them): last_heartbeat_ms =
    // now_ms, endpoints if given (+ `changed` when they differ), online (+ `online` if it was not).
    virtual result<std::vector<heartbeat_status>> record_heartbeats(std::span<const heartbeat> beats,
                                                                    int64_t now_ms) = 0;
    // Flips every online peer whose last heartbeat is older than cutoff_ms to offline, appending
    // `offline` for each, atomically (with several replicas only one of them gets each flip).
    virtual result<std::vector<peer_record>> mark_offline(int64_t cutoff_ms) = 0;

    // Replay protection for node requests: succeeds (true) only if counter is greater than the
    // last one stored for this key, and stores it; atomic across replicas.
    virtual result<bool> advance_request_counter(const std::string& network_id, const node_key& key,
                                                 uint64_t counter) = 0;

    // Invites: recorded when issued, consumed once.
    virtual result<void> record_invite(const std::string& invite_id, const std::string& network_id,
                                       int64_t expires_ms) = 0;
    virtual result<invite_status> consume_invite(const std::string& invite_id, int64_t now_ms) = 0;

    // The event log.
    virtual result<int64_t> current_version(const std::string& network_id) = 0;
    virtual result<event_batch> events_since(const std::string& network_id, int64_t since,
                                             std::size_t limit) = 0;
    // Drops events older than keep_after_version (nodes further behind get a snapshot).
    virtual result<void> prune_events(int64_t keep_after_version) = 0;

    // The server's X25519 identity, shared by every replica of one database: the first replica
    // to start stores its freshly generated identity; every later one gets that one back.
    virtual result<server_identity> load_or_store_identity(const server_identity& fresh) = 0;

    // Called with (network_id, version) after a change commits, whichever replica made it.
    virtual void set_change_listener(std::function<void(const std::string&, int64_t)> listener) = 0;
    // True when one store's listener hears the changes made through every other store object on
    // the database (PostgreSQL NOTIFY); false when each store reports only its own (SQLite), so
    // a second store in one process (meshcoord's heartbeat writer) needs a listener of its own.
    virtual bool hears_other_connections() const noexcept = 0;
};

// "sqlite:PATH" or "postgresql://..." / "postgres://..." (libpq connection URI). Errors name the
// problem (unknown scheme, cannot open, schema newer than this binary).
result<std::unique_ptr<store>> open_store(const std::string& url);

} // namespace meshfwd::coord
