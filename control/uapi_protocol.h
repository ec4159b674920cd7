// WireGuard's cross-platform userspace API (https://www.wireguard.com/xplatform/), the text protocol
// `wg`, `wg-quick` and wgctrl speak over /var/run/wireguard/IFNAME.sock: parsing of requests into
// typed values, and the text of replies. No I/O and no node state here, so every rule is unit-tested
// and fuzzed on its own (tests/unit/uapi_protocol_test.cc, tests/fuzz/uapi_fuzz.cc).
//
// Threads: pure functions on their arguments; any thread (the UAPI server thread parses, the
// control thread formats replies from its state).
//
// A request is an operation line ("get=1" or "set=1"), then for set=1 "key=value" lines, then an
// empty line. Keys are hex (64 digits). A set request is parsed whole before anything is applied,
// so a bad line changes nothing (wireguard-go applies line by line and may leave half a change).
// Every failure is an `errno=N` reply with N > 0 as wireguard-go sends it:
//   EPROTO  malformed: a line without '=', an unknown operation, input that ends before the empty
//           line (truncated)
//   EINVAL  a bad value, an unknown key, a device key after the first public_key, a peer key
//           before it, protocol_version other than 1, get=1 followed by anything but the empty line
//   EMSGSIZE a line longer than max_line_bytes or a request longer than max_request_bytes
// Applying may add EADDRINUSE (listen_port taken) and EIO (the device failed); see node_uapi.cc.
#pragma once

#include "crypto/secret.h"
#include "crypto/x25519.h"
#include "lib/ip_address.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace meshfwd::control::uapi {

// 130,000+ allowed IPs at ~40 bytes a line is ~5 MB; hundreds of thousands fit with room to spare.
inline constexpr std::size_t max_request_bytes = 64u << 20;
// The longest valid line is an IPv6 allowed_ip (~55 bytes); anything near this is garbage.
inline constexpr std::size_t max_line_bytes = 1024;

// One peer's change, in request order. Unset fields are left as they are.
struct peer_change {
    crypto::public_key public_key{};
    bool remove = false;
    bool update_only = false;                     // change it only if it exists
    std::optional<crypto::secret32> preshared_key; // all zeros: none
    std::optional<endpoint> endpoint_address;
    std::optional<uint16_t> persistent_keepalive;  // 0: off
    bool replace_allowed_ips = false;
    std::vector<ip_prefix> allowed_ips;            // added (after the replace, if any); masked
};

struct set_request {
    std::optional<crypto::secret32> private_key;  // all zeros: remove the key
    std::optional<uint16_t> listen_port;
    std::optional<uint32_t> fwmark;                // 0: none
    bool replace_peers = false;
    std::vector<peer_change> peers;
};

struct get_request {};

struct error {
    int code = 0;         // a positive errno
    std::string message;  // "line 3: listen_port: '70000' is not a port (0..65535)"
};

using request = std::variant<get_request, set_request, error>;

// Where the first request in `buffered` ends (just past its empty line), or npos when it is not
// complete yet. The server reads until this is found or max_request_bytes is passed.
std::size_t request_end(std::string_view buffered) noexcept;

// Parses one whole request (operation line through the empty line). Never throws on bad input.
request parse_request(std::string_view text);

// What a get=1 reply describes.
struct peer_view {
    crypto::public_key public_key{};
    crypto::public_key preshared_key{};  // zeros: none
    std::optional<endpoint> endpoint_address;
    int64_t last_handshake_sec = 0;      // Unix time; 0: never
    int64_t last_handshake_nsec = 0;
    uint64_t rx_bytes = 0;
    uint64_t tx_bytes = 0;
    uint16_t persistent_keepalive = 0;
    std::vector<ip_prefix> allowed_ips;
};

struct device_view {
    std::optional<crypto::public_key> private_key;  // unset: no key (the line is left out)
    uint16_t listen_port = 0;                        // 0: left out
    uint32_t fwmark = 0;                             // 0: left out
    std::vector<peer_view> peers;
};

// The get=1 reply, "errno=0" and the empty line included.
std::string format_get(const device_view& device);
// The set=1 (or failed request) reply: "errno=N\n\n".
std::string format_errno(int code);

// Lower-case hex of a key, and its inverse (exactly 64 hex digits, either case).
std::string key_to_hex(std::span<const uint8_t, 32> key);
std::optional<crypto::public_key> key_from_hex(std::string_view text) noexcept;

}  // namespace meshfwd::control::uapi
