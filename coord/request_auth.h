// Proof of possession for node requests: a node signs each request to meshcoord with a MAC keyed
// by the X25519 secret it shares with the server (its WireGuard static key x the server's key),
// over the method, the target, a strictly increasing counter and a hash of the body. No second
// identity, no password; meshcoord never sees a private key. Replays are refused because the
// server stores the last counter per node (store::advance_request_counter) and requires the
// counter, a Unix time in microseconds, to be within max_clock_skew of its own clock.
// Pure functions: any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "coord/store.h"
#include "crypto/secret.h"
#include "lib/result.h"

namespace meshfwd::coord {

using crypto::secret32;

inline constexpr std::string_view header_node = "X-Meshfwd-Node";       // base64 public key
inline constexpr std::string_view header_counter = "X-Meshfwd-Counter"; // decimal u64 (Unix us)
inline constexpr std::string_view header_mac = "X-Meshfwd-Auth";        // base64 32-byte MAC
inline constexpr std::chrono::seconds max_clock_skew{300};

struct signed_headers {
    std::string node;
    std::string counter;
    std::string mac;
};

// The key both sides derive: KDF(X25519(own secret, other public)), distinct from any WireGuard
// session key by its label. Errors on an all-zero shared secret (a low-order public key).
result<crypto::secret32> request_key(const crypto::secret32& own_secret, const node_key& other_public);

// The string the MAC covers (documented in coord/README.md), exposed for tests and other clients:
// "meshfwd coord request v1\n" METHOD "\n" TARGET "\n" NODE-BASE64 "\n" COUNTER "\n"
// hex(SHA-256(body)).
std::string canonical_request(std::string_view method, std::string_view target, const node_key& node,
                              uint64_t counter, std::string_view body);

// Client side: the three headers for one request. counter must exceed every earlier one.
signed_headers sign_request(const crypto::secret32& key, const node_key& node, std::string_view method,
                            std::string_view target, uint64_t counter, std::string_view body);

struct verified_request {
    node_key node{};
    uint64_t counter = 0;
};
// Server side: parses the headers and checks the MAC with key = request_key(server secret, node).
// The caller then checks the counter's freshness against its clock and the store.
result<verified_request> verify_request(const crypto::secret32& server_secret, std::string_view node_header,
                                        std::string_view counter_header, std::string_view mac_header,
                                        std::string_view method, std::string_view target,
                                        std::string_view body);

// The server's request keys by node key, so that a node's requests after its first cost no X25519
// (the scalar multiplication was a fifth of a heartbeat's CPU). The key depends only on the
// server's secret, fixed for the cache's life, and the node's public key, so an entry never goes
// stale; it is added only once a request verified with it (a flood of unsigned or forged
// requests cannot fill it), and the cache holds at most `capacity` keys: two generations, the
// older dropped whole when the newer fills half the capacity, so a key in use stays (it moves to
// the newer one on a hit) and memory is bounded. Keys are wiped when dropped (secret32).
// Threads: one at a time (meshcoord's server thread).
class request_key_cache {
public:
    request_key_cache(const crypto::secret32& server_secret, std::size_t capacity = 65536);
    // As verify_request above, with the cached key when there is one.
    result<verified_request> verify(std::string_view node_header, std::string_view counter_header,
                                    std::string_view mac_header, std::string_view method, std::string_view target,
                                    std::string_view body);
    std::size_t size() const noexcept { return _current.size() + _previous.size(); }
    uint64_t hits() const noexcept { return _hits; }

private:
    struct key_hash {
        std::size_t operator()(const node_key& k) const noexcept;
    };
    using map = std::unordered_map<node_key, crypto::secret32, key_hash>;
    void insert(const node_key& node, crypto::secret32 key);

    crypto::secret32 _server_secret;
    std::size_t _half;
    map _current;
    map _previous;
    uint64_t _hits = 0;
};

} // namespace meshfwd::coord
