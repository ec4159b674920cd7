// Node request signatures (see request_auth.h). Pure functions: any thread.
#include "coord/request_auth.h"

#include <sodium.h>

#include <array>
#include <algorithm>
#include <charconv>

#include "coord/protocol.h"
#include "crypto/blake2s.h"
#include "crypto/x25519.h"

namespace meshfwd::coord {

namespace {

constexpr std::string_view label = "meshfwd coord request v1";
constexpr std::size_t max_target = 8 * 1024;

std::span<const uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// An HTTP method token as meshcoord uses them: upper-case letters only.
bool valid_method(std::string_view m) {
    if (m.empty() || m.size() > 16) {
        return false;
    }
    for (const char c : m) {
        if (c < 'A' || c > 'Z') {
            return false;
        }
    }
    return true;
}

// An origin-form request target: printable ASCII without spaces, starting with '/'.
bool valid_target(std::string_view t) {
    if (t.empty() || t.front() != '/' || t.size() > max_target) {
        return false;
    }
    for (const char c : t) {
        if (c <= 0x20 || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

std::array<uint8_t, 32> mac_of(const secret32& key, std::string_view canonical) {
    std::array<uint8_t, 32> mac{};
    crypto::blake2s(mac, bytes_of(canonical), key.span());
    return mac;
}

std::string base64(std::span<const uint8_t> bytes) {
    std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), sodium_base64_VARIANT_ORIGINAL);
    out.resize(out.size() - 1); // the terminating NUL
    return out;
}

} // namespace

result<secret32> request_key(const secret32& own_secret, const node_key& other_public) {
    secret32 shared;
    if (!crypto::x25519(shared, own_secret, other_public)) {
        return make_error("the other side's public key is a low-order point (shared secret all zero)");
    }
    // BLAKE2s keyed by the shared secret over a label no WireGuard derivation uses.
    secret32 key;
    crypto::blake2s(key.span(), bytes_of(label), shared.span());
    return key;
}

std::string canonical_request(std::string_view method, std::string_view target, const node_key& node,
                              uint64_t counter, std::string_view body) {
    std::array<uint8_t, crypto_hash_sha256_BYTES> digest{};
    crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(body.data()), body.size());
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, digest.data(), digest.size());
    std::string s;
    s.reserve(label.size() + method.size() + target.size() + 44 + 20 + sizeof hex + 8);
    s.append(label).append("\n");
    s.append(method).append("\n");
    s.append(target).append("\n");
    s.append(key_text(node)).append("\n");
    s.append(std::to_string(counter)).append("\n");
    s.append(hex);
    return s;
}

signed_headers sign_request(const secret32& key, const node_key& node, std::string_view method,
                            std::string_view target, uint64_t counter, std::string_view body) {
    const auto mac = mac_of(key, canonical_request(method, target, node, counter, body));
    return signed_headers{key_text(node), std::to_string(counter), base64(mac)};
}

namespace {

struct signed_fields {
    node_key node{};
    uint64_t counter = 0;
    node_key mac{};
};

// Everything verify checks before the MAC: the headers' forms, the method and the target.
result<signed_fields> parse_signed(std::string_view node_header, std::string_view counter_header,
                                   std::string_view mac_header, std::string_view method, std::string_view target) {
    if (node_header.empty()) {
        return make_error(std::string(header_node) + ": missing");
    }
    const auto node = parse_key(node_header);
    if (!node) {
        return make_error(std::string(header_node) + ": not a 32-byte base64 key");
    }
    if (counter_header.empty()) {
        return make_error(std::string(header_counter) + ": missing");
    }
    // Decimal, no sign, no leading zero, no overflow: one text per counter.
    uint64_t counter = 0;
    const char* end = counter_header.data() + counter_header.size();
    const auto [ptr, ec] = std::from_chars(counter_header.data(), end, counter);
    if (ec != std::errc() || ptr != end || counter_header.front() == '0' || counter_header.front() == '+') {
        return make_error(std::string(header_counter) + ": not a positive decimal 64-bit integer");
    }
    if (mac_header.empty()) {
        return make_error(std::string(header_mac) + ": missing");
    }
    // The MAC has the same text form as a key: 32 bytes, canonical base64.
    const auto mac = parse_key(mac_header);
    if (!mac) {
        return make_error(std::string(header_mac) + ": not a 32-byte base64 MAC");
    }
    if (!valid_method(method)) {
        return make_error("request method: not an upper-case HTTP method");
    }
    if (!valid_target(target)) {
        return make_error("request target: not a printable origin-form path");
    }
    return signed_fields{*node, counter, *mac};
}

bool mac_matches(const secret32& key, const signed_fields& fields, std::string_view method, std::string_view target,
                 std::string_view body) {
    const auto expected = mac_of(key, canonical_request(method, target, fields.node, fields.counter, body));
    return sodium_memcmp(expected.data(), fields.mac.data(), expected.size()) == 0;
}

error mac_mismatch() {
    return make_error(std::string(header_mac) +
                      ": signature does not match (not signed with this node's key, or the method, "
                      "target, counter or body differ from what was signed)");
}

// One random SipHash key per process: node keys are chosen by clients, so the cache's buckets
// must not be predictable.
const std::array<uint8_t, crypto_shorthash_KEYBYTES>& hash_key() {
    static const auto key = [] {
        std::array<uint8_t, crypto_shorthash_KEYBYTES> k{};
        randombytes_buf(k.data(), k.size());
        return k;
    }();
    return key;
}

} // namespace

result<verified_request> verify_request(const secret32& server_secret, std::string_view node_header,
                                        std::string_view counter_header, std::string_view mac_header,
                                        std::string_view method, std::string_view target,
                                        std::string_view body) {
    auto fields = parse_signed(node_header, counter_header, mac_header, method, target);
    if (!fields) {
        return make_error(fields.error_message());
    }
    auto key = request_key(server_secret, fields->node);
    if (!key) {
        return make_error(std::string(header_node) + ": " + key.error_message());
    }
    if (!mac_matches(*key, *fields, method, target, body)) {
        return mac_mismatch();
    }
    return verified_request{fields->node, fields->counter};
}

std::size_t request_key_cache::key_hash::operator()(const node_key& k) const noexcept {
    uint64_t h = 0;
    crypto_shorthash(reinterpret_cast<unsigned char*>(&h), k.data(), k.size(), hash_key().data());
    return static_cast<std::size_t>(h);
}

request_key_cache::request_key_cache(const secret32& server_secret, std::size_t capacity)
    : _server_secret(server_secret.clone()), _half(std::max<std::size_t>(1, capacity / 2)) {}

result<verified_request> request_key_cache::verify(std::string_view node_header, std::string_view counter_header,
                                                   std::string_view mac_header, std::string_view method,
                                                   std::string_view target, std::string_view body) {
    auto fields = parse_signed(node_header, counter_header, mac_header, method, target);
    if (!fields) {
        return make_error(fields.error_message());
    }
    if (auto it = _current.find(fields->node); it != _current.end()) {
        ++_hits;
        if (!mac_matches(it->second, *fields, method, target, body)) {
            return mac_mismatch();
        }
        return verified_request{fields->node, fields->counter};
    }
    if (auto it = _previous.find(fields->node); it != _previous.end()) {
        ++_hits;
        if (!mac_matches(it->second, *fields, method, target, body)) {
            return mac_mismatch();
        }
        auto entry = _previous.extract(it); // in use: into the newer generation
        insert(fields->node, std::move(entry.mapped()));
        return verified_request{fields->node, fields->counter};
    }
    auto key = request_key(_server_secret, fields->node);
    if (!key) {
        return make_error(std::string(header_node) + ": " + key.error_message());
    }
    if (!mac_matches(*key, *fields, method, target, body)) {
        return mac_mismatch();
    }
    insert(fields->node, std::move(*key));
    return verified_request{fields->node, fields->counter};
}

void request_key_cache::insert(const node_key& node, secret32 key) {
    if (_current.size() >= _half) {
        _previous = std::move(_current); // the old generation's keys are wiped as they go
        _current = map{};
    }
    _current.insert_or_assign(node, std::move(key));
}

} // namespace meshfwd::coord
