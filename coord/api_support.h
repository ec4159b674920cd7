// Small helpers of meshcoord's API handlers: target parsing, clocks, random ids, the stored form
// of network options. Pure functions (the random ones use libsodium's CSPRNG): any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/protocol.h"
#include "coord/store.h"

namespace meshfwd::coord {

std::string_view target_path(std::string_view target);  // before '?'
std::string_view target_query(std::string_view target); // after '?', "" if none
std::vector<std::string_view> split_path(std::string_view path); // "/a/b/" -> {"a","b"}
std::string percent_decode(std::string_view text);       // invalid escapes are kept as written
std::optional<std::string> query_value(std::string_view query, std::string_view name);

int64_t unix_ms();
int64_t unix_us();
std::string rfc3339(int64_t unix_ms); // "2026-12-05T16:13:07Z"

std::string random_network_id(); // "net-" + 8 hex digits
std::string random_invite_id();  // 16 random bytes, base64url without padding (22 chars)

// A key in wg's base64, or base64url with or without padding (as it appears in a URL path).
std::optional<node_key> key_from_base64_or_url(std::string_view text);

} // namespace meshfwd::coord
