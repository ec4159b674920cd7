// open_store and the helpers both backends share (store_internal.h). Any thread.
#include <sodium.h>

#include <nlohmann/json.hpp>

#include "coord/store_internal.h"
#include "lib/ip_address.h"

namespace meshfwd::coord {

result<std::unique_ptr<store>> open_store(const std::string& url) {
    if (url.starts_with("sqlite:")) {
        std::string path = url.substr(7);
        if (path.empty()) {
            return make_error("--db sqlite: needs a file path (sqlite:/var/lib/meshcoord/coord.db)");
        }
        return detail::open_sqlite_store(path);
    }
    if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
        return detail::open_postgres_store(url);
    }
    auto colon = url.find(':');
    std::string scheme = colon == std::string::npos ? std::string{} : url.substr(0, colon);
    return make_error("database URL '" + url + "': " +
                      (scheme.empty() ? std::string{"no scheme"} : "unknown scheme '" + scheme + "'") +
                      " (expected sqlite:PATH, postgresql://... or postgres://...)");
}

namespace detail {

result<host_range> ipv4_host_range(const std::string& cidr) {
    auto prefix = ip_prefix::parse(cidr);
    if (!prefix) {
        return make_error("network CIDR '" + cidr + "': " + prefix.error_message());
    }
    if (!prefix->address().is_v4()) {
        return make_error("network CIDR '" + cidr + "' is not IPv4");
    }
    unsigned length = prefix->length();
    uint32_t base = prefix->masked().address().v4_host_order();
    uint32_t span_minus_one = length == 0 ? 0xffffffffu : (uint32_t{1} << (32 - length)) - 1;
    host_range range{base, base + span_minus_one};
    if (length < 31) { // skip the network and broadcast addresses
        range.first += 1;
        range.last -= 1;
    }
    return range;
}

result<host_range> allocation_range(const std::string& network_cidr, const std::string& subnet) {
    auto network = ipv4_host_range(network_cidr);
    if (!network || subnet.empty()) {
        return network;
    }
    auto outer = ip_prefix::parse(network_cidr);
    auto inner = ip_prefix::parse(subnet);
    if (!inner || !inner->address().is_v4()) {
        return make_error("subnet '" + subnet + "' is not an IPv4 prefix");
    }
    if (inner->length() < outer->length() || !outer->contains(inner->address())) {
        return make_error("subnet " + inner->masked().to_string() + " is not inside the network's CIDR " + network_cidr);
    }
    auto range = ipv4_host_range(inner->masked().to_string());
    if (!range) {
        return range;
    }
    // Never the network's own network or broadcast address (a subnet at either end of the CIDR).
    range->first = std::max(range->first, network->first);
    range->last = std::min(range->last, network->last);
    if (range->first > range->last) {
        return make_error("subnet " + inner->masked().to_string() + " has no address a node may use in " + network_cidr);
    }
    return range;
}

std::string derive_peer_id(const std::string& network_id, const node_key& key, unsigned attempt) {
    crypto_generichash_state state;
    uint8_t out[16];
    crypto_generichash_init(&state, nullptr, 0, sizeof out);
    crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(network_id.data()), network_id.size());
    const uint8_t zero = 0; // separates the id from the key: ids never contain a NUL
    crypto_generichash_update(&state, &zero, 1);
    crypto_generichash_update(&state, key.data(), key.size());
    uint8_t attempt_bytes[4] = {uint8_t(attempt), uint8_t(attempt >> 8), uint8_t(attempt >> 16),
                                uint8_t(attempt >> 24)};
    crypto_generichash_update(&state, attempt_bytes, sizeof attempt_bytes);
    crypto_generichash_final(&state, out, sizeof out);
    static constexpr char hex[] = "0123456789abcdef";
    std::string id = "peer-";
    for (int i = 0; i < 6; ++i) {
        id += hex[out[i] >> 4];
        id += hex[out[i] & 15];
    }
    return id;
}

std::string encode_endpoints(const std::vector<std::string>& endpoints) {
    return nlohmann::json(endpoints).dump();
}

std::vector<std::string> decode_endpoints(const std::string& text) {
    // Written by encode_endpoints only; a damaged value reads as no endpoints rather than throwing
    // into the server thread.
    auto parsed = nlohmann::json::parse(text, nullptr, false);
    std::vector<std::string> out;
    if (!parsed.is_array()) {
        return out;
    }
    for (const auto& item : parsed) {
        if (item.is_string()) {
            out.push_back(item.get<std::string>());
        }
    }
    return out;
}

const char* event_kind_name(event_kind kind) noexcept {
    switch (kind) {
    case event_kind::joined: return "joined";
    case event_kind::left: return "left";
    case event_kind::changed: return "changed";
    case event_kind::online: return "online";
    case event_kind::offline: return "offline";
    }
    return "changed";
}

std::optional<event_kind> parse_event_kind(const std::string& name) noexcept {
    for (auto kind : {event_kind::joined, event_kind::left, event_kind::changed, event_kind::online,
                      event_kind::offline}) {
        if (name == event_kind_name(kind)) {
            return kind;
        }
    }
    return std::nullopt;
}

allocation_hint quick_allocation(const host_range& range, int64_t count, std::optional<uint32_t> lowest,
                                 std::optional<uint32_t> highest) noexcept {
    if (count <= 0 || !lowest || !highest) {
        return {range.first, false};
    }
    if (uint64_t(count) >= range.size()) {
        return {std::nullopt, true};
    }
    if (*lowest > range.first) {
        return {range.first, false};
    }
    // Dense from range.first: the taken addresses are exactly first..highest.
    if (uint64_t{*highest} - range.first + 1 == uint64_t(count)) {
        if (*highest < range.last) {
            return {*highest + 1, false};
        }
        return {std::nullopt, true};
    }
    return {std::nullopt, false};
}

} // namespace detail
} // namespace meshfwd::coord
