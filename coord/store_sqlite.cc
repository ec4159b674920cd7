// The SQLite store: meshcoord's default backend, one file, one writer at a time.
//
// Durability: WAL with synchronous=FULL, so a commit returns only after the WAL is fsynced: an
// acknowledged registration survives SIGKILL and power loss (NORMAL would survive SIGKILL but may
// lose the last commits on power loss). The cost is one fsync per write transaction, which is why
// heartbeats arrive in batches (record_heartbeats): one fsync covers the whole batch.
// Writes take the write lock up front (BEGIN IMMEDIATE) so two store objects on one file never
// deadlock upgrading a read lock; busy_timeout plus a bounded retry absorb contention.
//
// Threads: one thread at a time per store object (the connection is opened with
// SQLITE_OPEN_NOMUTEX); the change listener is called inline, after the commit, on that thread.
#include <sqlite3.h>

#include <map>
#include <unordered_map>

#include "coord/store_internal.h"

namespace meshfwd::coord::detail {
namespace {

struct sqlite_failure {
    int code;
    std::string message;
};

const char* const schema_sql = R"sql(
CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    cidr TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    invite_public_key BLOB NOT NULL,
    invite_secret_key BLOB NOT NULL,
    options_json TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    pruned_version INTEGER NOT NULL DEFAULT 0,
    peer_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE peers (
    network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    public_key BLOB NOT NULL CHECK (length(public_key) = 32),
    peer_id TEXT NOT NULL UNIQUE,
    ipv4 INTEGER NOT NULL,
    hostname TEXT NOT NULL,
    os TEXT NOT NULL,
    endpoints TEXT NOT NULL,
    exit_node INTEGER NOT NULL,
    approved INTEGER NOT NULL,
    online INTEGER NOT NULL,
    last_heartbeat_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    policy_json TEXT NOT NULL,
    version INTEGER NOT NULL,
    request_counter INTEGER NOT NULL,
    PRIMARY KEY (network_id, public_key),
    UNIQUE (network_id, ipv4)
);
CREATE INDEX peers_online ON peers(last_heartbeat_ms) WHERE online = 1;
CREATE TABLE events (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    public_key BLOB NOT NULL,
    kind TEXT NOT NULL,
    UNIQUE (network_id, public_key)
);
CREATE INDEX events_network ON events(network_id, version);
CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    expires_ms INTEGER NOT NULL,
    used_ms INTEGER
);
CREATE TABLE identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    x25519_secret BLOB NOT NULL,
    x25519_public BLOB NOT NULL
);
)sql";

const char* const peer_columns =
    "network_id, public_key, peer_id, ipv4, hostname, os, endpoints, exit_node, approved, online, "
    "last_heartbeat_ms, created_ms, policy_json, version";
const char* const peer_columns_p =
    "p.network_id, p.public_key, p.peer_id, p.ipv4, p.hostname, p.os, p.endpoints, p.exit_node, p.approved, "
    "p.online, p.last_heartbeat_ms, p.created_ms, p.policy_json, p.version";

// A cached prepared statement in use: bind, step, read; reset when it goes out of scope.
class query {
public:
    query(sqlite3* db, sqlite3_stmt* stmt) : _db(db), _s(stmt) {}
    query(const query&) = delete;
    query& operator=(const query&) = delete;
    ~query() {
        sqlite3_reset(_s);
        sqlite3_clear_bindings(_s);
    }

    query& bind(int64_t v) { return check(sqlite3_bind_int64(_s, ++_n, v)); }
    query& bind(const std::string& v) {
        return check(sqlite3_bind_text(_s, ++_n, v.data(), int(v.size()), SQLITE_TRANSIENT));
    }
    query& bind(const char* v) { return bind(std::string{v}); }
    query& bind_blob(const void* p, std::size_t n) {
        return check(sqlite3_bind_blob(_s, ++_n, n ? p : "", int(n), SQLITE_TRANSIENT));
    }
    query& bind(const node_key& k) { return bind_blob(k.data(), k.size()); }
    query& bind_null() { return check(sqlite3_bind_null(_s, ++_n)); }

    // True while there is a row to read.
    bool step() {
        int rc = sqlite3_step(_s);
        if (rc == SQLITE_ROW) {
            return true;
        }
        if (rc == SQLITE_DONE) {
            return false;
        }
        throw sqlite_failure{rc, sqlite3_errmsg(_db)};
    }
    void run() { step(); }

    int64_t i64(int col) const { return sqlite3_column_int64(_s, col); }
    bool is_null(int col) const { return sqlite3_column_type(_s, col) == SQLITE_NULL; }
    std::string text(int col) const {
        auto* p = reinterpret_cast<const char*>(sqlite3_column_text(_s, col));
        return p ? std::string(p, std::size_t(sqlite3_column_bytes(_s, col))) : std::string{};
    }
    std::vector<uint8_t> blob(int col) const {
        auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(_s, col));
        return p ? std::vector<uint8_t>(p, p + sqlite3_column_bytes(_s, col)) : std::vector<uint8_t>{};
    }
    node_key key(int col) const {
        node_key k{};
        auto b = blob(col);
        if (b.size() == k.size()) {
            std::copy(b.begin(), b.end(), k.begin());
        }
        return k;
    }

private:
    query& check(int rc) {
        if (rc != SQLITE_OK) {
            throw sqlite_failure{rc, sqlite3_errmsg(_db)};
        }
        return *this;
    }

    sqlite3* _db;
    sqlite3_stmt* _s;
    int _n = 0;
};

peer_record read_peer(const query& q, int c = 0) {
    peer_record p;
    p.network_id = q.text(c + 0);
    p.public_key = q.key(c + 1);
    p.peer_id = q.text(c + 2);
    p.ipv4 = uint32_t(q.i64(c + 3));
    p.hostname = q.text(c + 4);
    p.os = q.text(c + 5);
    p.endpoints = decode_endpoints(q.text(c + 6));
    p.exit_node = q.i64(c + 7) != 0;
    p.approved = q.i64(c + 8) != 0;
    p.online = q.i64(c + 9) != 0;
    p.last_heartbeat_ms = q.i64(c + 10);
    p.created_ms = q.i64(c + 11);
    p.policy_json = q.text(c + 12);
    p.version = q.i64(c + 13);
    return p;
}

result<void> to_void(result<bool> r) {
    if (!r) {
        return make_error(r.error_message());
    }
    return {};
}

network_record read_network(const query& q) {
    network_record n;
    n.id = q.text(0);
    n.name = q.text(1);
    n.cidr = q.text(2);
    n.created_ms = q.i64(3);
    n.invite_public_key = q.blob(4);
    n.invite_secret_key = q.blob(5);
    n.options_json = q.text(6);
    return n;
}

class sqlite_store final : public store {
public:
    explicit sqlite_store(sqlite3* db, std::string path) : _db(db), _path(std::move(path)) {}
    ~sqlite_store() override {
        for (auto& [sql, stmt] : _stmts) {
            sqlite3_finalize(stmt);
        }
        sqlite3_close_v2(_db);
    }

    result<void> init();

    result<void> create_network(const network_record& n) override {
        return to_void(write<bool>([&]() -> result<bool> {
            {
                auto q = prepare("SELECT 1 FROM networks WHERE id = ?");
                if (q.bind(n.id).step()) {
                    return make_error("network '" + n.id + "' already exists");
                }
            }
            prepare("INSERT INTO networks (id, name, cidr, created_ms, invite_public_key, invite_secret_key, "
                    "options_json) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(n.id).bind(n.name).bind(n.cidr).bind(n.created_ms)
                .bind_blob(n.invite_public_key.data(), n.invite_public_key.size())
                .bind_blob(n.invite_secret_key.data(), n.invite_secret_key.size())
                .bind(n.options_json).run();
            return true;
        }));
    }

    result<std::vector<network_record>> list_networks() override {
        return read<std::vector<network_record>>([&]() -> result<std::vector<network_record>> {
            std::vector<network_record> out;
            auto q = prepare("SELECT id, name, cidr, created_ms, invite_public_key, invite_secret_key, "
                             "options_json FROM networks ORDER BY id");
            while (q.step()) {
                out.push_back(read_network(q));
            }
            return out;
        });
    }

    result<std::optional<network_record>> get_network(const std::string& id) override {
        return read<std::optional<network_record>>([&]() -> result<std::optional<network_record>> {
            auto q = prepare("SELECT id, name, cidr, created_ms, invite_public_key, invite_secret_key, "
                             "options_json FROM networks WHERE id = ?");
            if (q.bind(id).step()) {
                return std::optional{read_network(q)};
            }
            return std::optional<network_record>{};
        });
    }

    result<bool> delete_network(const std::string& id) override {
        return write<bool>([&]() -> result<bool> {
            prepare("DELETE FROM networks WHERE id = ?").bind(id).run();
            return sqlite3_changes(_db) > 0;
        });
    }

    result<register_outcome> register_peer(const registration& r, int64_t now_ms) override;

    result<std::optional<peer_record>> get_peer(const std::string& network_id, const node_key& key) override {
        return read<std::optional<peer_record>>([&] { return find_peer(network_id, key); });
    }

    result<std::optional<peer_record>> get_peer_by_id(const std::string& peer_id) override {
        return read<std::optional<peer_record>>([&]() -> result<std::optional<peer_record>> {
            auto q = prepare(std::string{"SELECT "} + peer_columns + " FROM peers WHERE peer_id = ?");
            if (q.bind(peer_id).step()) {
                return std::optional{read_peer(q)};
            }
            return std::optional<peer_record>{};
        });
    }

    result<std::vector<peer_record>> list_peers(const std::string& network_id) override {
        return read<std::vector<peer_record>>([&]() -> result<std::vector<peer_record>> {
            std::vector<peer_record> out;
            auto q = prepare(std::string{"SELECT "} + peer_columns + " FROM peers WHERE network_id = ? ORDER BY ipv4");
            q.bind(network_id);
            while (q.step()) {
                out.push_back(read_peer(q));
            }
            return out;
        });
    }

    result<bool> remove_peer(const std::string& network_id, const node_key& key) override {
        return write<bool>([&]() -> result<bool> {
            prepare("DELETE FROM peers WHERE network_id = ? AND public_key = ?").bind(network_id).bind(key).run();
            if (sqlite3_changes(_db) == 0) {
                return false;
            }
            prepare("UPDATE networks SET peer_count = peer_count - 1 WHERE id = ?").bind(network_id).run();
            append_event(network_id, key, event_kind::left);
            return true;
        });
    }

    result<bool> approve_peer(const std::string& network_id, const node_key& key) override {
        return write<bool>([&]() -> result<bool> {
            auto peer = find_peer(network_id, key);
            if (!peer) {
                return false;
            }
            if (!peer->approved) {
                prepare("UPDATE peers SET approved = 1 WHERE network_id = ? AND public_key = ?")
                    .bind(network_id).bind(key).run();
                append_event(network_id, key, event_kind::joined);
            }
            return true;
        });
    }

    result<bool> update_peer(const registration& c) override {
        return write<bool>([&]() -> result<bool> {
            auto peer = find_peer(c.network_id, c.public_key);
            if (!peer) {
                return false;
            }
            if (peer->endpoints == c.endpoints && peer->hostname == c.hostname && peer->os == c.os &&
                peer->exit_node == c.exit_node) {
                return true; // nothing to publish
            }
            prepare("UPDATE peers SET endpoints = ?, hostname = ?, os = ?, exit_node = ? "
                    "WHERE network_id = ? AND public_key = ?")
                .bind(encode_endpoints(c.endpoints)).bind(c.hostname).bind(c.os).bind(int64_t{c.exit_node})
                .bind(c.network_id).bind(c.public_key).run();
            append_event(c.network_id, c.public_key, event_kind::changed);
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
        return write<bool>([&]() -> result<bool> {
            prepare("UPDATE peers SET request_counter = ? WHERE network_id = ? AND public_key = ? "
                    "AND request_counter < ?")
                .bind(int64_t(counter)).bind(network_id).bind(key).bind(int64_t(counter)).run();
            return sqlite3_changes(_db) > 0;
        });
    }

    result<void> record_invite(const std::string& invite_id, const std::string& network_id,
                               int64_t expires_ms) override {
        auto r = write<bool>([&]() -> result<bool> {
            {
                auto q = prepare("SELECT 1 FROM invites WHERE id = ?");
                if (q.bind(invite_id).step()) {
                    return make_error("invite '" + invite_id + "' is already recorded");
                }
            }
            {
                auto q = prepare("SELECT 1 FROM networks WHERE id = ?");
                if (!q.bind(network_id).step()) {
                    return make_error("invite for unknown network '" + network_id + "'");
                }
            }
            prepare("INSERT INTO invites (id, network_id, expires_ms) VALUES (?, ?, ?)")
                .bind(invite_id).bind(network_id).bind(expires_ms).run();
            return true;
        });
        return to_void(std::move(r));
    }

    result<invite_status> consume_invite(const std::string& invite_id, int64_t now_ms) override {
        return write<invite_status>([&]() -> result<invite_status> {
            prepare("UPDATE invites SET used_ms = ? WHERE id = ? AND used_ms IS NULL").bind(now_ms).bind(invite_id).run();
            if (sqlite3_changes(_db) > 0) {
                return invite_status::consumed;
            }
            auto q = prepare("SELECT 1 FROM invites WHERE id = ?");
            return q.bind(invite_id).step() ? invite_status::already_used : invite_status::unknown;
        });
    }

    result<int64_t> current_version(const std::string& network_id) override {
        return read<int64_t>([&]() -> result<int64_t> {
            auto q = prepare("SELECT version FROM networks WHERE id = ?");
            if (!q.bind(network_id).step()) {
                return make_error("no network '" + network_id + "'");
            }
            return q.i64(0);
        });
    }

    result<event_batch> events_since(const std::string& network_id, int64_t since, std::size_t limit) override;

    result<void> prune_events(int64_t keep_after_version) override {
        auto r = write<bool>([&]() -> result<bool> {
            prepare("UPDATE networks SET pruned_version = max(pruned_version, (SELECT max(version) FROM events "
                    "WHERE events.network_id = networks.id AND events.version <= ?)) WHERE EXISTS (SELECT 1 "
                    "FROM events WHERE events.network_id = networks.id AND events.version <= ?)")
                .bind(keep_after_version).bind(keep_after_version).run();
            prepare("DELETE FROM events WHERE version <= ?").bind(keep_after_version).run();
            return true;
        });
        return to_void(std::move(r));
    }

    result<server_identity> load_or_store_identity(const server_identity& fresh) override {
        return write<server_identity>([&]() -> result<server_identity> {
            prepare("INSERT OR IGNORE INTO identity (id, x25519_secret, x25519_public) VALUES (1, ?, ?)")
                .bind_blob(fresh.x25519_secret.data(), fresh.x25519_secret.size())
                .bind_blob(fresh.x25519_public.data(), fresh.x25519_public.size()).run();
            auto q = prepare("SELECT x25519_secret, x25519_public FROM identity WHERE id = 1");
            q.step();
            return server_identity{q.blob(0), q.blob(1)};
        });
    }

    void set_change_listener(std::function<void(const std::string&, int64_t)> listener) override {
        _listener = std::move(listener);
    }
    bool hears_other_connections() const noexcept override { return false; }

private:
    query prepare(const std::string& sql) {
        auto it = _stmts.find(sql);
        if (it == _stmts.end()) {
            sqlite3_stmt* stmt = nullptr;
            int rc = sqlite3_prepare_v3(_db, sql.c_str(), int(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
            if (rc != SQLITE_OK) {
                throw sqlite_failure{rc, sqlite3_errmsg(_db)};
            }
            it = _stmts.emplace(sql, stmt).first;
        }
        return query{_db, it->second};
    }

    void exec(const char* sql) {
        char* msg = nullptr;
        int rc = sqlite3_exec(_db, sql, nullptr, nullptr, &msg);
        if (rc != SQLITE_OK) {
            std::string text = msg ? msg : sqlite3_errstr(rc);
            sqlite3_free(msg);
            throw sqlite_failure{rc, text};
        }
    }

    std::string where(const sqlite_failure& f) const {
        return "SQLite '" + _path + "': " + f.message;
    }

    // Runs body in one write transaction (BEGIN IMMEDIATE ... COMMIT), retrying when the
    // database stays busy past busy_timeout; an error result from body rolls back.
    template <typename T, typename F>
    result<T> write(F&& body) {
        for (int attempt = 1;; ++attempt) {
            _touched.clear();
            try {
                exec("BEGIN IMMEDIATE");
            } catch (const sqlite_failure& f) {
                if ((f.code == SQLITE_BUSY || f.code == SQLITE_LOCKED) && attempt < max_attempts) {
                    continue;
                }
                return fail<T>(where(f));
            }
            try {
                result<T> r = body();
                if (!r) {
                    exec("ROLLBACK");
                    return fail<T>(r.error_message());
                }
                exec("COMMIT");
                notify();
                return r;
            } catch (const sqlite_failure& f) {
                if (!sqlite3_get_autocommit(_db)) {
                    sqlite3_exec(_db, "ROLLBACK", nullptr, nullptr, nullptr);
                }
                if ((f.code == SQLITE_BUSY || f.code == SQLITE_LOCKED) && attempt < max_attempts) {
                    continue;
                }
                return fail<T>(where(f));
            }
        }
    }

    // One read transaction, so multi-statement reads see one snapshot.
    template <typename T, typename F>
    result<T> read(F&& body) {
        try {
            exec("BEGIN");
            result<T> r = body();
            exec("COMMIT");
            return r;
        } catch (const sqlite_failure& f) {
            if (!sqlite3_get_autocommit(_db)) {
                sqlite3_exec(_db, "ROLLBACK", nullptr, nullptr, nullptr);
            }
            return fail<T>(where(f));
        }
    }

    template <typename T>
    static result<T> fail(std::string message) {
        return make_error(std::move(message));
    }

    std::optional<peer_record> find_peer(const std::string& network_id, const node_key& key) {
        auto q = prepare(std::string{"SELECT "} + peer_columns + " FROM peers WHERE network_id = ? AND public_key = ?");
        if (q.bind(network_id).bind(key).step()) {
            return read_peer(q);
        }
        return std::nullopt;
    }

    // Replaces the key's event (one per key: the latest supersedes) with a new version, and
    // stamps it on the network and the peer row. Inside a write transaction.
    int64_t append_event(const std::string& network_id, const node_key& key, event_kind kind) {
        prepare("INSERT OR REPLACE INTO events (network_id, public_key, kind) VALUES (?, ?, ?)")
            .bind(network_id).bind(key).bind(event_kind_name(kind)).run();
        int64_t version = sqlite3_last_insert_rowid(_db);
        prepare("UPDATE networks SET version = ? WHERE id = ?").bind(version).bind(network_id).run();
        prepare("UPDATE peers SET version = ? WHERE network_id = ? AND public_key = ?")
            .bind(version).bind(network_id).bind(key).run();
        _touched[network_id] = version;
        return version;
    }

    void notify() {
        if (!_listener) {
            _touched.clear();
            return;
        }
        auto touched = std::move(_touched);
        _touched.clear();
        for (const auto& [network, version] : touched) {
            _listener(network, version);
        }
    }

    std::optional<uint32_t> allocate(const std::string& network_id, const host_range& range, int64_t count);

    sqlite3* _db;
    std::string _path;
    std::unordered_map<std::string, sqlite3_stmt*> _stmts;
    std::map<std::string, int64_t> _touched; // network -> last version written, this transaction
    std::function<void(const std::string&, int64_t)> _listener;
};

result<void> sqlite_store::init() {
    try {
        sqlite3_busy_timeout(_db, 15000);
        exec("PRAGMA foreign_keys = ON");
        {
            auto q = prepare("PRAGMA journal_mode = WAL");
            if (!q.step() || q.text(0) != "wal") {
                return make_error("SQLite '" + _path + "': cannot switch to WAL mode");
            }
        }
        exec("PRAGMA synchronous = FULL");
        exec("BEGIN IMMEDIATE");
        int64_t version = 0;
        {
            auto q = prepare("PRAGMA user_version");
            q.step();
            version = q.i64(0);
        }
        if (version > schema_version) {
            exec("ROLLBACK");
            return make_error("SQLite '" + _path + "': schema version " + std::to_string(version) +
                              " is newer than this meshcoord's (" + std::to_string(schema_version) +
                              "); use a newer meshcoord");
        }
        if (version == 0) {
            auto q = prepare("SELECT count(*) FROM sqlite_master");
            q.step();
            if (q.i64(0) != 0) {
                exec("ROLLBACK");
                return make_error("SQLite '" + _path + "' holds tables but no meshcoord schema version: "
                                  "not a meshcoord database");
            }
            exec(schema_sql);
            exec(("PRAGMA user_version = " + std::to_string(schema_version)).c_str());
        }
        exec("COMMIT");
        return {};
    } catch (const sqlite_failure& f) {
        if (!sqlite3_get_autocommit(_db)) {
            sqlite3_exec(_db, "ROLLBACK", nullptr, nullptr, nullptr);
        }
        return make_error(where(f));
    }
}

std::optional<uint32_t> sqlite_store::allocate(const std::string& network_id, const host_range& range,
                                               int64_t count) {
    // Within the range: the network's whole host range, or a token's subnet of it.
    std::optional<uint32_t> lowest, highest;
    {
        auto q = prepare("SELECT ipv4 FROM peers WHERE network_id = ? AND ipv4 BETWEEN ? AND ? ORDER BY ipv4 ASC LIMIT 1");
        if (q.bind(network_id).bind(int64_t{range.first}).bind(int64_t{range.last}).step()) {
            lowest = uint32_t(q.i64(0));
        }
    }
    {
        auto q = prepare("SELECT ipv4 FROM peers WHERE network_id = ? AND ipv4 BETWEEN ? AND ? ORDER BY ipv4 DESC LIMIT 1");
        if (q.bind(network_id).bind(int64_t{range.first}).bind(int64_t{range.last}).step()) {
            highest = uint32_t(q.i64(0));
        }
    }
    auto hint = quick_allocation(range, count, lowest, highest);
    if (hint.full) {
        return std::nullopt;
    }
    if (hint.address) {
        return hint.address;
    }
    // A gap left by a removed peer: the first taken address whose successor is free.
    auto q = prepare("SELECT p.ipv4 + 1 FROM peers p WHERE p.network_id = ? AND p.ipv4 >= ? AND p.ipv4 < ? AND "
                     "NOT EXISTS (SELECT 1 FROM peers q WHERE q.network_id = p.network_id AND q.ipv4 = p.ipv4 + 1) "
                     "ORDER BY p.ipv4 LIMIT 1");
    if (q.bind(network_id).bind(int64_t{range.first}).bind(int64_t{range.last}).step()) {
        return uint32_t(q.i64(0));
    }
    return std::nullopt;
}

result<register_outcome> sqlite_store::register_peer(const registration& r, int64_t now_ms) {
    if (r.request_counter > uint64_t(INT64_MAX)) {
        return make_error("request counter " + std::to_string(r.request_counter) + " is above 2^63-1");
    }
    return write<register_outcome>([&]() -> result<register_outcome> {
        std::string cidr;
        int64_t count = 0;
        {
            auto q = prepare("SELECT cidr, peer_count FROM networks WHERE id = ?");
            if (!q.bind(r.network_id).step()) {
                return register_outcome{register_status::no_network, std::nullopt};
            }
            cidr = q.text(0);
            count = q.i64(1);
        }
        std::string endpoints = encode_endpoints(r.endpoints);
        if (auto existing = find_peer(r.network_id, r.public_key)) {
            bool differs = existing->hostname != r.hostname || existing->os != r.os ||
                           existing->endpoints != r.endpoints || existing->exit_node != r.exit_node ||
                           existing->policy_json != r.policy_json || !existing->online;
            prepare("UPDATE peers SET hostname = ?, os = ?, endpoints = ?, exit_node = ?, policy_json = ?, "
                    "online = 1, last_heartbeat_ms = ? WHERE network_id = ? AND public_key = ?")
                .bind(r.hostname).bind(r.os).bind(endpoints).bind(int64_t{r.exit_node}).bind(r.policy_json)
                .bind(now_ms).bind(r.network_id).bind(r.public_key).run();
            if (differs) {
                append_event(r.network_id, r.public_key, event_kind::changed);
            }
            return register_outcome{register_status::updated, find_peer(r.network_id, r.public_key)};
        }
        auto range = allocation_range(cidr, r.subnet);
        if (!range) {
            return make_error("network '" + r.network_id + "': " + range.error_message());
        }
        if (!r.subnet.empty()) {  // peer_count counts the whole network; this needs the subnet's
            auto q = prepare("SELECT count(*) FROM peers WHERE network_id = ? AND ipv4 BETWEEN ? AND ?");
            q.bind(r.network_id).bind(int64_t{range->first}).bind(int64_t{range->last}).step();
            count = q.i64(0);
        }
        auto address = allocate(r.network_id, *range, count);
        if (!address) {
            return register_outcome{register_status::network_full, std::nullopt};
        }
        std::string peer_id;
        for (unsigned attempt = 0; attempt < 8 && peer_id.empty(); ++attempt) {
            std::string candidate = derive_peer_id(r.network_id, r.public_key, attempt);
            auto q = prepare("SELECT 1 FROM peers WHERE peer_id = ?");
            if (!q.bind(candidate).step()) {
                peer_id = candidate;
            }
        }
        if (peer_id.empty()) {
            return make_error("no free peer id for this key after 8 attempts");
        }
        prepare("INSERT INTO peers (network_id, public_key, peer_id, ipv4, hostname, os, endpoints, exit_node, "
                "approved, online, last_heartbeat_ms, created_ms, policy_json, version, request_counter) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, 0, ?)")
            .bind(r.network_id).bind(r.public_key).bind(peer_id).bind(int64_t{*address}).bind(r.hostname)
            .bind(r.os).bind(endpoints).bind(int64_t{r.exit_node}).bind(int64_t{r.approved}).bind(now_ms)
            .bind(now_ms).bind(r.policy_json).bind(int64_t(r.request_counter)).run();
        prepare("UPDATE networks SET peer_count = peer_count + 1 WHERE id = ?").bind(r.network_id).run();
        append_event(r.network_id, r.public_key, r.approved ? event_kind::joined : event_kind::changed);
        return register_outcome{register_status::created, find_peer(r.network_id, r.public_key)};
    });
}

result<std::vector<heartbeat_status>> sqlite_store::record_heartbeats(std::span<const heartbeat> beats,
                                                                      int64_t now_ms) {
    return write<std::vector<heartbeat_status>>([&]() -> result<std::vector<heartbeat_status>> {
        std::vector<heartbeat_status> out;
        out.reserve(beats.size());
        for (const auto& beat : beats) {
            bool online = false;
            std::string stored;
            {
                auto q = prepare("SELECT online, endpoints FROM peers WHERE network_id = ? AND public_key = ?");
                if (!q.bind(beat.network_id).bind(beat.public_key).step()) {
                    out.push_back(heartbeat_status::unknown_peer);
                    continue;
                }
                online = q.i64(0) != 0;
                stored = q.text(1);
            }
            if (beat.request_counter != 0) {
                // The signed request's counter, checked with the write (replays refused).
                if (beat.request_counter > uint64_t(INT64_MAX)) {
                    out.push_back(heartbeat_status::replayed);
                    continue;
                }
                prepare("UPDATE peers SET request_counter = ? WHERE network_id = ? AND public_key = ? "
                        "AND request_counter < ?")
                    .bind(int64_t(beat.request_counter)).bind(beat.network_id).bind(beat.public_key)
                    .bind(int64_t(beat.request_counter)).run();
                if (sqlite3_changes(_db) == 0) {
                    out.push_back(heartbeat_status::replayed);
                    continue;
                }
            }
            std::string endpoints = beat.endpoints ? encode_endpoints(*beat.endpoints) : stored;
            bool changed = endpoints != stored;
            prepare("UPDATE peers SET last_heartbeat_ms = ?, online = 1, endpoints = ? "
                    "WHERE network_id = ? AND public_key = ?")
                .bind(now_ms).bind(endpoints).bind(beat.network_id).bind(beat.public_key).run();
            if (!online) {
                append_event(beat.network_id, beat.public_key, event_kind::online);
            }
            if (changed) {
                append_event(beat.network_id, beat.public_key, event_kind::changed);
            }
            out.push_back(online ? heartbeat_status::ok : heartbeat_status::came_online);
        }
        return out;
    });
}

result<std::vector<peer_record>> sqlite_store::mark_offline(int64_t cutoff_ms) {
    return write<std::vector<peer_record>>([&]() -> result<std::vector<peer_record>> {
        std::vector<std::pair<std::string, node_key>> stale;
        {
            auto q = prepare("SELECT network_id, public_key FROM peers WHERE online = 1 AND last_heartbeat_ms < ?");
            q.bind(cutoff_ms);
            while (q.step()) {
                stale.emplace_back(q.text(0), q.key(1));
            }
        }
        std::vector<peer_record> out;
        for (const auto& [network, key] : stale) {
            prepare("UPDATE peers SET online = 0 WHERE network_id = ? AND public_key = ?").bind(network).bind(key).run();
            append_event(network, key, event_kind::offline);
            if (auto peer = find_peer(network, key)) {
                out.push_back(std::move(*peer));
            }
        }
        return out;
    });
}

result<event_batch> sqlite_store::events_since(const std::string& network_id, int64_t since, std::size_t limit) {
    return read<event_batch>([&]() -> result<event_batch> {
        int64_t current = 0, pruned = 0, count = 0;
        {
            auto q = prepare("SELECT version, pruned_version, peer_count FROM networks WHERE id = ?");
            if (!q.bind(network_id).step()) {
                return make_error("no network '" + network_id + "'");
            }
            current = q.i64(0);
            pruned = q.i64(1);
            count = q.i64(2);
        }
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
        auto q = prepare(std::string{"SELECT e.version, e.kind, e.public_key, "} + peer_columns_p +
                         " FROM events e LEFT JOIN peers p "
                         "ON p.network_id = e.network_id AND p.public_key = e.public_key "
                         "WHERE e.network_id = ? AND e.version > ? ORDER BY e.version LIMIT ?");
        q.bind(network_id).bind(since).bind(int64_t(std::min<std::size_t>(limit, INT64_MAX)));
        while (q.step()) {
            event_record e;
            e.version = q.i64(0);
            e.network_id = network_id;
            e.kind = parse_event_kind(q.text(1)).value_or(event_kind::changed);
            e.public_key = q.key(2);
            if (e.kind != event_kind::left && !q.is_null(3)) {
                e.peer = read_peer(q, 3);
            }
            batch.events.push_back(std::move(e));
        }
        if (batch.events.size() == limit) {
            batch.version = batch.events.back().version; // more remain: the caller asks again
        }
        return batch;
    });
}

} // namespace

result<std::unique_ptr<store>> open_sqlite_store(const std::string& path) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
        std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        sqlite3_close_v2(db);
        return make_error("cannot open SQLite database '" + path + "': " + message);
    }
    auto s = std::make_unique<sqlite_store>(db, path);
    if (auto r = s->init(); !r) {
        return make_error(r.error_message());
    }
    return std::unique_ptr<store>(std::move(s));
}

} // namespace meshfwd::coord::detail
