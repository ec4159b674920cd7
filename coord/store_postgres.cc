// The PostgreSQL store: several meshcoord replicas on one database.
//
// - Every change appends its event (one sequence, event_version, numbers them all) and sends
//   NOTIFY meshcoord_changes '<version>:<network>' in the same transaction, so the notification
//   exists exactly when the change is committed; each store object runs a listener thread with its
//   own connection (LISTEN) that calls the change listener, for this replica's changes and others'.
// - A transaction that appends events to a network first locks the network's row (SELECT ... FOR
//   UPDATE), and takes its version numbers only then: versions of one network are handed out in
//   commit order, so a reader that sees version v of a network has every earlier one of it too
//   (without this, a slower transaction could commit version 10 after a reader moved past 11).
//   Multi-network writes lock networks in id order, so replicas never deadlock on them; should
//   it happen anyway, the transaction is retried.
// - Address uniqueness is the UNIQUE (network_id, ipv4) constraint; the network lock makes a
//   conflict rare, and a unique violation, serialization failure or deadlock is retried a bounded
//   number of times (detail::max_attempts), never papered over with a lock in the process.
// - mark_offline and advance_request_counter are single conditional UPDATEs: with several
//   replicas, exactly one of them flips each peer or accepts each counter.
//
// Threads: one thread at a time per store object; the change listener runs on this object's
// listener thread (started by set_change_listener).
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "coord/store_internal.h"
#include "coord/store_postgres_listener.h"

namespace meshfwd::coord::detail {
namespace {

constexpr int64_t schema_lock_key = 0x6d657368636f6f72; // "meshcoor": serialises schema creation

const char* const schema_sql = R"sql(
CREATE TABLE schema_version (version integer NOT NULL);
CREATE SEQUENCE event_version;
CREATE TABLE networks (
    id text PRIMARY KEY,
    name text NOT NULL,
    cidr text NOT NULL,
    created_ms bigint NOT NULL,
    invite_public_key bytea NOT NULL,
    invite_secret_key bytea NOT NULL,
    options_json text NOT NULL,
    version bigint NOT NULL DEFAULT 0,
    pruned_version bigint NOT NULL DEFAULT 0,
    peer_count bigint NOT NULL DEFAULT 0
);
CREATE TABLE peers (
    network_id text NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    public_key bytea NOT NULL CHECK (length(public_key) = 32),
    peer_id text NOT NULL UNIQUE,
    ipv4 bigint NOT NULL,
    hostname text NOT NULL,
    os text NOT NULL,
    endpoints text NOT NULL,
    exit_node boolean NOT NULL,
    approved boolean NOT NULL,
    online boolean NOT NULL,
    last_heartbeat_ms bigint NOT NULL,
    created_ms bigint NOT NULL,
    policy_json text NOT NULL,
    version bigint NOT NULL,
    request_counter bigint NOT NULL,
    PRIMARY KEY (network_id, public_key),
    UNIQUE (network_id, ipv4)
);
CREATE INDEX peers_online ON peers (last_heartbeat_ms) WHERE online;
CREATE TABLE events (
    version bigint PRIMARY KEY,
    network_id text NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    public_key bytea NOT NULL,
    kind text NOT NULL,
    UNIQUE (network_id, public_key)
);
CREATE INDEX events_network ON events (network_id, version);
CREATE TABLE invites (
    id text PRIMARY KEY,
    network_id text NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    expires_ms bigint NOT NULL,
    used_ms bigint
);
CREATE TABLE identity (
    id integer PRIMARY KEY CHECK (id = 1),
    x25519_secret bytea NOT NULL,
    x25519_public bytea NOT NULL
);
)sql";

#define PEER_COLUMNS                                                                                     \
    "network_id, public_key, peer_id, ipv4, hostname, os, endpoints, exit_node, approved, online, "      \
    "last_heartbeat_ms, created_ms, policy_json, version"
#define PEER_COLUMNS_P                                                                                   \
    "p.network_id, p.public_key, p.peer_id, p.ipv4, p.hostname, p.os, p.endpoints, p.exit_node, "        \
    "p.approved, p.online, p.last_heartbeat_ms, p.created_ms, p.policy_json, p.version"
#define NETWORK_COLUMNS "id, name, cidr, created_ms, invite_public_key, invite_secret_key, options_json"

// Every statement, prepared once per connection.
const std::pair<const char*, const char*> statements[] = {
    {"network_exists", "SELECT 1 FROM networks WHERE id = $1"},
    {"network_insert", "INSERT INTO networks (" NETWORK_COLUMNS ") VALUES ($1, $2, $3, $4, $5, $6, $7)"},
    {"network_list", "SELECT " NETWORK_COLUMNS " FROM networks ORDER BY id"},
    {"network_get", "SELECT " NETWORK_COLUMNS " FROM networks WHERE id = $1"},
    {"network_delete", "DELETE FROM networks WHERE id = $1"},
    {"network_lock", "SELECT cidr, peer_count FROM networks WHERE id = $1 FOR UPDATE"},
    {"network_count", "UPDATE networks SET peer_count = peer_count + $2 WHERE id = $1"},
    {"network_state", "SELECT version, pruned_version, peer_count FROM networks WHERE id = $1"},
    {"network_versions", "SELECT id, version FROM networks"},
    {"peer_get", "SELECT " PEER_COLUMNS " FROM peers WHERE network_id = $1 AND public_key = $2"},
    {"peer_by_id", "SELECT " PEER_COLUMNS " FROM peers WHERE peer_id = $1"},
    {"peer_id_taken", "SELECT 1 FROM peers WHERE peer_id = $1"},
    {"peer_list", "SELECT " PEER_COLUMNS " FROM peers WHERE network_id = $1 ORDER BY ipv4"},
    {"peer_delete", "DELETE FROM peers WHERE network_id = $1 AND public_key = $2"},
    {"peer_approve", "UPDATE peers SET approved = true WHERE network_id = $1 AND public_key = $2 AND NOT approved"},
    {"peer_update", "UPDATE peers SET endpoints = $3, hostname = $4, os = $5, exit_node = $6 "
                    "WHERE network_id = $1 AND public_key = $2"},
    {"peer_reregister", "UPDATE peers SET hostname = $3, os = $4, endpoints = $5, exit_node = $6, policy_json = $7, "
                        "online = true, last_heartbeat_ms = $8 WHERE network_id = $1 AND public_key = $2"},
    {"peer_insert", "INSERT INTO peers (network_id, public_key, peer_id, ipv4, hostname, os, endpoints, exit_node, "
                    "approved, online, last_heartbeat_ms, created_ms, policy_json, version, request_counter) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, true, $10, $10, $11, 0, $12)"},
    // One round trip per beat: the FROM subquery locks the row and reads its old state.
    {"peer_heartbeat", "UPDATE peers p SET last_heartbeat_ms = $3, online = true, "
                       "endpoints = CASE WHEN $5 THEN $4 ELSE p.endpoints END "
                       "FROM (SELECT online, endpoints FROM peers WHERE network_id = $1 AND public_key = $2 "
                       "FOR UPDATE) old WHERE p.network_id = $1 AND p.public_key = $2 "
                       "RETURNING old.online, old.endpoints <> p.endpoints"},
    {"peer_lowest", "SELECT ipv4 FROM peers WHERE network_id = $1 AND ipv4 BETWEEN $2 AND $3 ORDER BY ipv4 ASC LIMIT 1"},
    {"peer_highest", "SELECT ipv4 FROM peers WHERE network_id = $1 AND ipv4 BETWEEN $2 AND $3 ORDER BY ipv4 DESC LIMIT 1"},
    {"peer_count_in", "SELECT count(*) FROM peers WHERE network_id = $1 AND ipv4 BETWEEN $2 AND $3"},
    {"peer_gap", "SELECT p.ipv4 + 1 FROM peers p WHERE p.network_id = $1 AND p.ipv4 >= $2 AND p.ipv4 < $3 AND NOT EXISTS "
                 "(SELECT 1 FROM peers q WHERE q.network_id = p.network_id AND q.ipv4 = p.ipv4 + 1) "
                 "ORDER BY p.ipv4 LIMIT 1"},
    {"stale_networks", "SELECT DISTINCT network_id FROM peers WHERE online AND last_heartbeat_ms < $1 "
                       "ORDER BY network_id"},
    {"mark_offline", "UPDATE peers SET online = false WHERE online AND last_heartbeat_ms < $1 "
                     "RETURNING network_id, public_key"},
    {"counter_advance", "UPDATE peers SET request_counter = $3 WHERE network_id = $1 AND public_key = $2 "
                        "AND request_counter < $3"},
    {"invite_exists", "SELECT 1 FROM invites WHERE id = $1"},
    {"invite_insert", "INSERT INTO invites (id, network_id, expires_ms) VALUES ($1, $2, $3)"},
    {"invite_consume", "UPDATE invites SET used_ms = $2 WHERE id = $1 AND used_ms IS NULL"},
    // The network's row is locked by the caller, so nextval here orders versions per network
    // by commit; one round trip stamps the event, the network and the peer.
    {"event_append", "WITH v AS (SELECT nextval('event_version') AS version), "
                     "e AS (INSERT INTO events (version, network_id, public_key, kind) SELECT version, $1, $2, $3 "
                     "FROM v ON CONFLICT (network_id, public_key) DO UPDATE SET version = EXCLUDED.version, "
                     "kind = EXCLUDED.kind), "
                     "n AS (UPDATE networks SET version = (SELECT version FROM v) WHERE id = $1), "
                     "p AS (UPDATE peers SET version = (SELECT version FROM v) WHERE network_id = $1 AND public_key = $2) "
                     "SELECT version FROM v"},
    {"events_since", "SELECT e.version, e.kind, e.public_key, " PEER_COLUMNS_P " FROM events e LEFT JOIN peers p "
                     "ON p.network_id = e.network_id AND p.public_key = e.public_key "
                     "WHERE e.network_id = $1 AND e.version > $2 AND e.version <= $3 ORDER BY e.version LIMIT $4"},
    {"events_prune_mark", "UPDATE networks n SET pruned_version = GREATEST(n.pruned_version, d.top) FROM "
                          "(SELECT network_id, max(version) AS top FROM events WHERE version <= $1 GROUP BY network_id) d "
                          "WHERE n.id = d.network_id"},
    {"events_prune", "DELETE FROM events WHERE version <= $1"},
    {"identity_insert", "INSERT INTO identity (id, x25519_secret, x25519_public) VALUES (1, $1, $2) "
                        "ON CONFLICT (id) DO NOTHING"},
    {"identity_get", "SELECT x25519_secret, x25519_public FROM identity WHERE id = 1"},
    {"notify", "SELECT pg_notify($1, $2)"},
};

pqxx::binarystring bytes(const node_key& k) { return pqxx::binarystring(k.data(), k.size()); }
pqxx::binarystring bytes(const std::vector<uint8_t>& v) { return pqxx::binarystring(v.data(), v.size()); }

std::vector<uint8_t> read_bytes(const pqxx::field& f) {
    pqxx::binarystring b(f);
    return std::vector<uint8_t>(b.data(), b.data() + b.size());
}

node_key read_key(const pqxx::field& f) {
    node_key k{};
    pqxx::binarystring b(f);
    if (b.size() == k.size()) {
        std::copy(b.data(), b.data() + b.size(), k.begin());
    }
    return k;
}

peer_record read_peer(const pqxx::row& row, int c = 0) {
    peer_record p;
    p.network_id = row[c + 0].c_str();
    p.public_key = read_key(row[c + 1]);
    p.peer_id = row[c + 2].c_str();
    p.ipv4 = uint32_t(row[c + 3].as<int64_t>());
    p.hostname = row[c + 4].c_str();
    p.os = row[c + 5].c_str();
    p.endpoints = decode_endpoints(row[c + 6].c_str());
    p.exit_node = row[c + 7].as<bool>();
    p.approved = row[c + 8].as<bool>();
    p.online = row[c + 9].as<bool>();
    p.last_heartbeat_ms = row[c + 10].as<int64_t>();
    p.created_ms = row[c + 11].as<int64_t>();
    p.policy_json = row[c + 12].c_str();
    p.version = row[c + 13].as<int64_t>();
    return p;
}

network_record read_network(const pqxx::row& row) {
    network_record n;
    n.id = row[0].c_str();
    n.name = row[1].c_str();
    n.cidr = row[2].c_str();
    n.created_ms = row[3].as<int64_t>();
    n.invite_public_key = read_bytes(row[4]);
    n.invite_secret_key = read_bytes(row[5]);
    n.options_json = row[6].c_str();
    return n;
}

std::unique_ptr<pqxx::connection> connect(const std::string& url) {
    auto c = std::make_unique<pqxx::connection>(url);
    for (const auto& [name, sql] : statements) {
        c->prepare(name, sql);
    }
    return c;
}

class postgres_store final : public store {
public:
    postgres_store(std::string url, std::unique_ptr<pqxx::connection> conn)
        : _url(std::move(url)), _conn(std::move(conn)) {}
    ~postgres_store() override { _listener.reset(); }

    result<void> init();

    result<void> create_network(const network_record& n) override {
        return to_void(write<bool>([&](pqxx::work& tx) -> result<bool> {
            if (!tx.exec_prepared("network_exists", n.id).empty()) {
                return make_error("network '" + n.id + "' already exists");
            }
            tx.exec_prepared("network_insert", n.id, n.name, n.cidr, n.created_ms, bytes(n.invite_public_key),
                             bytes(n.invite_secret_key), n.options_json);
            return true;
        }));
    }

    result<std::vector<network_record>> list_networks() override {
        return read<std::vector<network_record>>([&](pqxx::transaction_base& tx) -> result<std::vector<network_record>> {
            std::vector<network_record> out;
            for (const auto& row : tx.exec_prepared("network_list")) {
                out.push_back(read_network(row));
            }
            return out;
        });
    }

    result<std::optional<network_record>> get_network(const std::string& id) override {
        return read<std::optional<network_record>>([&](pqxx::transaction_base& tx) -> result<std::optional<network_record>> {
            auto rows = tx.exec_prepared("network_get", id);
            if (rows.empty()) {
                return std::optional<network_record>{};
            }
            return std::optional{read_network(rows[0])};
        });
    }

    result<bool> delete_network(const std::string& id) override {
        return write<bool>([&](pqxx::work& tx) -> result<bool> {
            return tx.exec_prepared("network_delete", id).affected_rows() > 0;
        });
    }

    result<register_outcome> register_peer(const registration& r, int64_t now_ms) override;

    result<std::optional<peer_record>> get_peer(const std::string& network_id, const node_key& key) override {
        return read<std::optional<peer_record>>([&](pqxx::transaction_base& tx) -> result<std::optional<peer_record>> {
            return find_peer(tx, network_id, key);
        });
    }

    result<std::optional<peer_record>> get_peer_by_id(const std::string& peer_id) override {
        return read<std::optional<peer_record>>([&](pqxx::transaction_base& tx) -> result<std::optional<peer_record>> {
            auto rows = tx.exec_prepared("peer_by_id", peer_id);
            if (rows.empty()) {
                return std::optional<peer_record>{};
            }
            return std::optional{read_peer(rows[0])};
        });
    }

    result<std::vector<peer_record>> list_peers(const std::string& network_id) override {
        return read<std::vector<peer_record>>([&](pqxx::transaction_base& tx) -> result<std::vector<peer_record>> {
            std::vector<peer_record> out;
            for (const auto& row : tx.exec_prepared("peer_list", network_id)) {
                out.push_back(read_peer(row));
            }
            return out;
        });
    }

    result<bool> remove_peer(const std::string& network_id, const node_key& key) override {
        return write<bool>([&](pqxx::work& tx) -> result<bool> {
            if (!lock_network(tx, network_id)) {
                return false;
            }
            if (tx.exec_prepared("peer_delete", network_id, bytes(key)).affected_rows() == 0) {
                return false;
            }
            tx.exec_prepared("network_count", network_id, int64_t{-1});
            append_event(tx, network_id, key, event_kind::left);
            return true;
        });
    }

    result<bool> approve_peer(const std::string& network_id, const node_key& key) override {
        return write<bool>([&](pqxx::work& tx) -> result<bool> {
            if (!lock_network(tx, network_id)) {
                return false;
            }
            if (tx.exec_prepared("peer_approve", network_id, bytes(key)).affected_rows() > 0) {
                append_event(tx, network_id, key, event_kind::joined);
                return true;
            }
            return find_peer(tx, network_id, key).has_value();
        });
    }

    result<bool> update_peer(const registration& c) override {
        return write<bool>([&](pqxx::work& tx) -> result<bool> {
            if (!lock_network(tx, c.network_id)) {
                return false;
            }
            auto peer = find_peer(tx, c.network_id, c.public_key);
            if (!peer) {
                return false;
            }
            if (peer->endpoints == c.endpoints && peer->hostname == c.hostname && peer->os == c.os &&
                peer->exit_node == c.exit_node) {
                return true;
            }
            tx.exec_prepared("peer_update", c.network_id, bytes(c.public_key), encode_endpoints(c.endpoints),
                             c.hostname, c.os, c.exit_node);
            append_event(tx, c.network_id, c.public_key, event_kind::changed);
            return true;
        });
    }

    result<std::vector<heartbeat_status>> record_heartbeats(std::span<const heartbeat> beats, int64_t now_ms) override;
    result<std::vector<peer_record>> mark_offline(int64_t cutoff_ms) override;

    result<bool> advance_request_counter(const std::string& network_id, const node_key& key,
                                         uint64_t counter) override {
        if (counter > uint64_t(INT64_MAX)) {
            return make_error("request counter " + std::to_string(counter) + " is above 2^63-1");
        }
        return write<bool>([&](pqxx::work& tx) -> result<bool> {
            return tx.exec_prepared("counter_advance", network_id, bytes(key), int64_t(counter)).affected_rows() > 0;
        });
    }

    result<void> record_invite(const std::string& invite_id, const std::string& network_id,
                               int64_t expires_ms) override {
        return to_void(write<bool>([&](pqxx::work& tx) -> result<bool> {
            if (!tx.exec_prepared("invite_exists", invite_id).empty()) {
                return make_error("invite '" + invite_id + "' is already recorded");
            }
            if (tx.exec_prepared("network_exists", network_id).empty()) {
                return make_error("invite for unknown network '" + network_id + "'");
            }
            tx.exec_prepared("invite_insert", invite_id, network_id, expires_ms);
            return true;
        }));
    }

    result<invite_status> consume_invite(const std::string& invite_id, int64_t now_ms) override {
        return write<invite_status>([&](pqxx::work& tx) -> result<invite_status> {
            if (tx.exec_prepared("invite_consume", invite_id, now_ms).affected_rows() > 0) {
                return invite_status::consumed;
            }
            return tx.exec_prepared("invite_exists", invite_id).empty() ? invite_status::unknown
                                                                         : invite_status::already_used;
        });
    }

    result<int64_t> current_version(const std::string& network_id) override {
        return read<int64_t>([&](pqxx::transaction_base& tx) -> result<int64_t> {
            auto rows = tx.exec_prepared("network_state", network_id);
            if (rows.empty()) {
                return make_error("no network '" + network_id + "'");
            }
            return rows[0][0].as<int64_t>();
        });
    }

    result<event_batch> events_since(const std::string& network_id, int64_t since, std::size_t limit) override;

    result<void> prune_events(int64_t keep_after_version) override {
        return to_void(write<bool>([&](pqxx::work& tx) -> result<bool> {
            tx.exec_prepared("events_prune_mark", keep_after_version);
            tx.exec_prepared("events_prune", keep_after_version);
            return true;
        }));
    }

    result<server_identity> load_or_store_identity(const server_identity& fresh) override {
        return write<server_identity>([&](pqxx::work& tx) -> result<server_identity> {
            tx.exec_prepared("identity_insert", bytes(fresh.x25519_secret), bytes(fresh.x25519_public));
            auto rows = tx.exec_prepared("identity_get");
            if (rows.empty()) {
                return make_error("PostgreSQL: the server identity vanished after it was stored");
            }
            return server_identity{read_bytes(rows[0][0]), read_bytes(rows[0][1])};
        });
    }

    void set_change_listener(listener_fn listener) override {
        _listener.reset();
        if (listener) {
            _listener = std::make_unique<change_listener_thread>(_url, std::move(listener));
            // When the database is reachable this returns in milliseconds; otherwise the thread
            // keeps retrying and catches up once it connects.
            (void)_listener->wait_listening(std::chrono::seconds(5));
        }
    }
    bool hears_other_connections() const noexcept override { return true; }

private:
    static result<void> to_void(result<bool> r) {
        if (!r) {
            return make_error(r.error_message());
        }
        return {};
    }

    // Runs a read of one statement without an explicit transaction (autocommit: the statement is
    // its own snapshot), which saves the BEGIN and COMMIT round trips of write(): meshcoord's
    // thread waits for each one (a registration's get_network and get_peer cost 3 each before).
    // Retries a lost connection like write().
    // The open connection, reconnecting first when the last one was lost.
    pqxx::connection& connection() {
        if (!_conn || !_conn->is_open()) {
            _conn = connect(_url);
        }
        return *_conn;
    }

    template <typename T, typename F>
    result<T> read(F&& body) {
        std::string last;
        for (int attempt = 1; attempt <= max_attempts; ++attempt) {
            try {
                pqxx::nontransaction tx(connection());
                return body(tx);
            } catch (const pqxx::broken_connection& e) {
                last = e.what();
                _conn.reset();
            } catch (const std::exception& e) {
                return make_error(std::string{"PostgreSQL: "} + e.what());
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200 * attempt));
        }
        return make_error("PostgreSQL: gave up after " + std::to_string(max_attempts) + " attempts: " + last);
    }

    // Runs body in one transaction and commits it with its NOTIFYs; retries serialization
    // failures, deadlocks, unique violations and a connection lost before the commit.
    template <typename T, typename F>
    result<T> write(F&& body) {
        std::string last;
        for (int attempt = 1; attempt <= max_attempts; ++attempt) {
            _touched.clear();
            _locked.clear();
            try {
                pqxx::work tx(connection());
                result<T> r = body(tx);
                if (!r) {
                    tx.abort();
                    return r;
                }
                for (const auto& [network, version] : _touched) {
                    tx.exec_prepared("notify", notify_channel, std::to_string(version) + ":" + network);
                }
                tx.commit();
                return r;
            } catch (const pqxx::transaction_rollback& e) { // serialization failure, deadlock
                last = e.what();
            } catch (const pqxx::unique_violation& e) {
                last = e.what();
            } catch (const pqxx::in_doubt_error& e) {
                return make_error(std::string{"PostgreSQL: commit outcome unknown (connection lost): "} + e.what());
            } catch (const pqxx::broken_connection& e) {
                last = e.what();
                _conn.reset();
            } catch (const std::exception& e) {
                return make_error(std::string{"PostgreSQL: "} + e.what());
            }
            // Back off a little, growing, so contending replicas spread out.
            std::this_thread::sleep_for(std::chrono::microseconds(200 * attempt));
        }
        return make_error("PostgreSQL: gave up after " + std::to_string(max_attempts) + " attempts: " + last);
    }

    // Locks the network's row for this transaction (see the file comment); false if none.
    bool lock_network(pqxx::work& tx, const std::string& network_id, std::string* cidr = nullptr,
                      int64_t* count = nullptr) {
        auto rows = tx.exec_prepared("network_lock", network_id);
        if (rows.empty()) {
            return false;
        }
        _locked.insert(network_id);
        if (cidr) {
            *cidr = rows[0][0].c_str();
        }
        if (count) {
            *count = rows[0][1].as<int64_t>();
        }
        return true;
    }

    std::optional<peer_record> find_peer(pqxx::transaction_base& tx, const std::string& network_id, const node_key& key) {
        auto rows = tx.exec_prepared("peer_get", network_id, bytes(key));
        if (rows.empty()) {
            return std::nullopt;
        }
        return read_peer(rows[0]);
    }

    int64_t append_event(pqxx::work& tx, const std::string& network_id, const node_key& key, event_kind kind) {
        if (!_locked.contains(network_id)) {
            lock_network(tx, network_id);
        }
        auto version = tx.exec_prepared1("event_append", network_id, bytes(key), event_kind_name(kind))[0].as<int64_t>();
        _touched[network_id] = version;
        return version;
    }

    std::optional<uint32_t> allocate(pqxx::work& tx, const std::string& network_id, const host_range& range,
                                     int64_t count) {
        std::optional<uint32_t> lowest, highest;
        // Within the range: the network's whole host range, or a token's subnet of it.
        const auto first = int64_t{range.first};
        const auto last = int64_t{range.last};
        if (auto rows = tx.exec_prepared("peer_lowest", network_id, first, last); !rows.empty()) {
            lowest = uint32_t(rows[0][0].as<int64_t>());
        }
        if (auto rows = tx.exec_prepared("peer_highest", network_id, first, last); !rows.empty()) {
            highest = uint32_t(rows[0][0].as<int64_t>());
        }
        auto hint = quick_allocation(range, count, lowest, highest);
        if (hint.full) {
            return std::nullopt;
        }
        if (hint.address) {
            return hint.address;
        }
        if (auto rows = tx.exec_prepared("peer_gap", network_id, first, last); !rows.empty()) {
            return uint32_t(rows[0][0].as<int64_t>());
        }
        return std::nullopt;
    }

    std::string _url;
    std::unique_ptr<pqxx::connection> _conn;
    std::unique_ptr<change_listener_thread> _listener;
    std::map<std::string, int64_t> _touched; // network -> last version, this transaction
    std::set<std::string> _locked;           // networks locked by this transaction
};

result<void> postgres_store::init() {
    try {
        pqxx::work tx(*_conn);
        tx.exec_params("SELECT pg_advisory_xact_lock($1)", schema_lock_key);
        bool exists = !tx.exec("SELECT to_regclass('schema_version')")[0][0].is_null();
        if (exists) {
            auto rows = tx.exec("SELECT max(version) FROM schema_version");
            int version = rows[0][0].is_null() ? 0 : rows[0][0].as<int>();
            if (version > schema_version) {
                return make_error("PostgreSQL: schema version " + std::to_string(version) +
                                  " is newer than this meshcoord's (" + std::to_string(schema_version) +
                                  "); use a newer meshcoord");
            }
        } else {
            tx.exec(schema_sql);
            tx.exec_params("INSERT INTO schema_version (version) VALUES ($1)", schema_version);
        }
        tx.commit();
        return {};
    } catch (const std::exception& e) {
        return make_error(std::string{"PostgreSQL: cannot set up the schema: "} + e.what());
    }
}

result<register_outcome> postgres_store::register_peer(const registration& r, int64_t now_ms) {
    if (r.request_counter > uint64_t(INT64_MAX)) {
        return make_error("request counter " + std::to_string(r.request_counter) + " is above 2^63-1");
    }
    return write<register_outcome>([&](pqxx::work& tx) -> result<register_outcome> {
        std::string cidr;
        int64_t count = 0;
        if (!lock_network(tx, r.network_id, &cidr, &count)) {
            return register_outcome{register_status::no_network, std::nullopt};
        }
        std::string endpoints = encode_endpoints(r.endpoints);
        if (auto existing = find_peer(tx, r.network_id, r.public_key)) {
            bool differs = existing->hostname != r.hostname || existing->os != r.os ||
                           existing->endpoints != r.endpoints || existing->exit_node != r.exit_node ||
                           existing->policy_json != r.policy_json || !existing->online;
            tx.exec_prepared("peer_reregister", r.network_id, bytes(r.public_key), r.hostname, r.os, endpoints,
                             r.exit_node, r.policy_json, now_ms);
            if (differs) {
                append_event(tx, r.network_id, r.public_key, event_kind::changed);
            }
            return register_outcome{register_status::updated, find_peer(tx, r.network_id, r.public_key)};
        }
        auto range = allocation_range(cidr, r.subnet);
        if (!range) {
            return make_error("network '" + r.network_id + "': " + range.error_message());
        }
        if (!r.subnet.empty()) {  // peer_count counts the whole network; this needs the subnet's
            count = tx.exec_prepared("peer_count_in", r.network_id, int64_t{range->first}, int64_t{range->last})[0][0]
                        .as<int64_t>();
        }
        auto address = allocate(tx, r.network_id, *range, count);
        if (!address) {
            return register_outcome{register_status::network_full, std::nullopt};
        }
        std::string peer_id;
        for (unsigned attempt = 0; attempt < 8 && peer_id.empty(); ++attempt) {
            std::string candidate = derive_peer_id(r.network_id, r.public_key, attempt);
            if (tx.exec_prepared("peer_id_taken", candidate).empty()) {
                peer_id = candidate;
            }
        }
        if (peer_id.empty()) {
            return make_error("no free peer id for this key after 8 attempts");
        }
        tx.exec_prepared("peer_insert", r.network_id, bytes(r.public_key), peer_id, int64_t{*address}, r.hostname,
                         r.os, endpoints, r.exit_node, r.approved, now_ms, r.policy_json,
                         int64_t(r.request_counter));
        tx.exec_prepared("network_count", r.network_id, int64_t{1});
        append_event(tx, r.network_id, r.public_key, r.approved ? event_kind::joined : event_kind::changed);
        return register_outcome{register_status::created, find_peer(tx, r.network_id, r.public_key)};
    });
}

result<std::vector<heartbeat_status>> postgres_store::record_heartbeats(std::span<const heartbeat> beats,
                                                                        int64_t now_ms) {
    return write<std::vector<heartbeat_status>>([&](pqxx::work& tx) -> result<std::vector<heartbeat_status>> {
        // Lock the batch's networks in id order up front: events may follow, and a fixed order
        // keeps two replicas' batches from deadlocking.
        std::set<std::string> networks;
        for (const auto& beat : beats) {
            networks.insert(beat.network_id);
        }
        for (const auto& network : networks) {
            lock_network(tx, network);
        }
        std::vector<heartbeat_status> out;
        out.reserve(beats.size());
        for (const auto& beat : beats) {
            if (!_locked.contains(beat.network_id)) {
                out.push_back(heartbeat_status::unknown_peer);
                continue;
            }
            if (beat.request_counter != 0) {
                // The signed request's counter, checked with the write (replays refused on every replica).
                if (beat.request_counter > uint64_t(INT64_MAX)) {
                    out.push_back(heartbeat_status::replayed);
                    continue;
                }
                auto advanced = tx.exec_params("UPDATE peers SET request_counter = $3 WHERE network_id = $1 "
                                               "AND public_key = $2 AND request_counter < $3 RETURNING 1",
                                               beat.network_id, bytes(beat.public_key), int64_t(beat.request_counter));
                if (advanced.empty()) {
                    auto known = tx.exec_params("SELECT 1 FROM peers WHERE network_id = $1 AND public_key = $2",
                                                beat.network_id, bytes(beat.public_key));
                    out.push_back(known.empty() ? heartbeat_status::unknown_peer : heartbeat_status::replayed);
                    continue;
                }
            }
            auto rows = tx.exec_prepared("peer_heartbeat", beat.network_id, bytes(beat.public_key), now_ms,
                                         beat.endpoints ? encode_endpoints(*beat.endpoints) : std::string{},
                                         beat.endpoints.has_value());
            if (rows.empty()) {
                out.push_back(heartbeat_status::unknown_peer);
                continue;
            }
            bool online = rows[0][0].as<bool>();
            if (!online) {
                append_event(tx, beat.network_id, beat.public_key, event_kind::online);
            }
            if (rows[0][1].as<bool>()) {
                append_event(tx, beat.network_id, beat.public_key, event_kind::changed);
            }
            out.push_back(online ? heartbeat_status::ok : heartbeat_status::came_online);
        }
        return out;
    });
}

result<std::vector<peer_record>> postgres_store::mark_offline(int64_t cutoff_ms) {
    return write<std::vector<peer_record>>([&](pqxx::work& tx) -> result<std::vector<peer_record>> {
        for (const auto& row : tx.exec_prepared("stale_networks", cutoff_ms)) {
            lock_network(tx, row[0].c_str());
        }
        // One conditional UPDATE: a replica running the same sweep concurrently waits for these
        // rows, re-checks `online` and skips them, so each flip (and its event) happens once.
        std::vector<std::pair<std::string, node_key>> flipped;
        for (const auto& row : tx.exec_prepared("mark_offline", cutoff_ms)) {
            flipped.emplace_back(row[0].c_str(), read_key(row[1]));
        }
        std::sort(flipped.begin(), flipped.end());
        std::vector<peer_record> out;
        for (const auto& [network, key] : flipped) {
            append_event(tx, network, key, event_kind::offline);
            if (auto peer = find_peer(tx, network, key)) {
                out.push_back(std::move(*peer));
            }
        }
        return out;
    });
}

result<event_batch> postgres_store::events_since(const std::string& network_id, int64_t since, std::size_t limit) {
    return write<event_batch>([&](pqxx::work& tx) -> result<event_batch> {
        // The network's version first: every event up to it is committed (see the file comment),
        // and later ones are left for the next call.
        auto state = tx.exec_prepared("network_state", network_id);
        if (state.empty()) {
            return make_error("no network '" + network_id + "'");
        }
        int64_t current = state[0][0].as<int64_t>();
        int64_t pruned = state[0][1].as<int64_t>();
        int64_t count = state[0][2].as<int64_t>();
        event_batch batch;
        batch.version = current;
        if (since < pruned || (since == 0 && count > 0) || since > current) {
            batch.snapshot_needed = true;
            return batch;
        }
        if (limit == 0) {
            batch.version = since;
            return batch;
        }
        int64_t capped = int64_t(std::min<std::size_t>(limit, INT64_MAX));
        for (const auto& row : tx.exec_prepared("events_since", network_id, since, current, capped)) {
            event_record e;
            e.version = row[0].as<int64_t>();
            e.network_id = network_id;
            e.kind = parse_event_kind(row[1].c_str()).value_or(event_kind::changed);
            e.public_key = read_key(row[2]);
            if (e.kind != event_kind::left && !row[3].is_null()) {
                e.peer = read_peer(row, 3);
            }
            batch.events.push_back(std::move(e));
        }
        if (batch.events.size() == limit) {
            batch.version = batch.events.back().version;
        }
        return batch;
    });
}

} // namespace

result<std::unique_ptr<store>> open_postgres_store(const std::string& url) {
    std::unique_ptr<pqxx::connection> conn;
    try {
        conn = connect(url);
    } catch (const std::exception& e) {
        std::string what = e.what();
        while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) {
            what.pop_back();
        }
        return make_error("cannot connect to PostgreSQL: " + what);
    }
    auto s = std::make_unique<postgres_store>(url, std::move(conn));
    if (auto r = s->init(); !r) {
        return make_error(r.error_message());
    }
    return std::unique_ptr<store>(std::move(s));
}

} // namespace meshfwd::coord::detail
