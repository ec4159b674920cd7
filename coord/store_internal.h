// Pieces shared by the two store backends (store_sqlite.cc, store_postgres.cc): the address
// range of a CIDR, peer ids, the endpoint list's stored form, the event kinds' stored names, and
// the backends' constructors. Pure functions: any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coord/store.h"
#include "lib/result.h"

namespace meshfwd::coord::detail {

// The schema version both backends write; opening a database with a newer one is refused.
inline constexpr int schema_version = 1;

// Heartbeat batches and other multi-row writes retry this often on a serialization failure,
// deadlock, unique violation (PostgreSQL) or a busy database (SQLite) before giving up.
inline constexpr int max_attempts = 16;

// The addresses register_peer may hand out, host order, inclusive: every address of /31 and
// /32, and all but the network and broadcast addresses of shorter prefixes.
struct host_range {
    uint32_t first = 0;
    uint32_t last = 0;
    uint64_t size() const noexcept { return uint64_t{last} - first + 1; }
};
result<host_range> ipv4_host_range(const std::string& cidr);
// Where a new peer's address may come from: the network's host range, or, for a registration
// with a subnet, that subnet's host range (which must lie inside the network's CIDR).
result<host_range> allocation_range(const std::string& network_cidr, const std::string& subnet);

// "peer-" + 12 hex digits of BLAKE2b(network id, 0, key, attempt): stable for one (network, key);
// `attempt` > 0 only when the id is already taken by another key (a 48-bit collision).
std::string derive_peer_id(const std::string& network_id, const node_key& key, unsigned attempt);

// Endpoint lists are stored as a JSON array of strings.
std::string encode_endpoints(const std::vector<std::string>& endpoints);
std::vector<std::string> decode_endpoints(const std::string& text);

const char* event_kind_name(event_kind kind) noexcept;
std::optional<event_kind> parse_event_kind(const std::string& name) noexcept;

// The lowest free address, given the peer count and the lowest/highest taken addresses of the
// network: max+1 when the taken addresses are one dense run from range.first (the common case,
// O(1)); otherwise nullopt, and the backend searches for the first gap.
struct allocation_hint {
    std::optional<uint32_t> address; // the answer when known without a gap search
    bool full = false;
};
allocation_hint quick_allocation(const host_range& range, int64_t count, std::optional<uint32_t> lowest,
                                 std::optional<uint32_t> highest) noexcept;

result<std::unique_ptr<store>> open_sqlite_store(const std::string& path);
result<std::unique_ptr<store>> open_postgres_store(const std::string& url);

} // namespace meshfwd::coord::detail
