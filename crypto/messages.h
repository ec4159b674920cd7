// WireGuard wire formats and protocol constants. Any thread (plain data, no state).
//
// The four message types, byte for byte as the Linux module (drivers/net/wireguard/messages.h)
// and wireguard-go (device/noise-protocol.go) put them on the wire. Every multi-byte integer is
// little-endian and stored as bytes (le32/le64), so the structs have alignment 1, no padding,
// and can be copied to and from packet buffers with memcpy on any host:
//
//   type 1  initiation    148 B  type | sender | ephemeral[32] | static[32+16] | timestamp[12+16] | mac1 | mac2
//   type 2  response       92 B  type | sender | receiver | ephemeral[32] | empty[0+16] | mac1 | mac2
//   type 3  cookie reply   64 B  type | receiver | nonce[24] | cookie[16+16]
//   type 4  transport   16+n+16  type | receiver | counter(le64) | data[n padded to 16] + tag[16]
//
// The type field is a full le32: the three "reserved" bytes must be zero or the message is not
// of that type (both reference implementations compare the whole 32-bit word).
//
// `spec` holds the whitepaper's constants; `limits` holds our own tuning. Message parsing lives
// here too (parse_* never read past the span and never crash; they return a named reason).
#pragma once

#include "lib/reasons.h"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace meshfwd::crypto {

// ---------------------------------------------------------------------------------------------
// Little-endian fields stored as bytes.

inline uint32_t load_le32(const uint8_t* p) noexcept {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
           (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t load_le64(const uint8_t* p) noexcept {
    return static_cast<uint64_t>(load_le32(p)) | (static_cast<uint64_t>(load_le32(p + 4)) << 32);
}
inline void store_le32(uint8_t* p, uint32_t v) noexcept {
    p[0] = static_cast<uint8_t>(v);
    p[1] = static_cast<uint8_t>(v >> 8);
    p[2] = static_cast<uint8_t>(v >> 16);
    p[3] = static_cast<uint8_t>(v >> 24);
}
inline void store_le64(uint8_t* p, uint64_t v) noexcept {
    store_le32(p, static_cast<uint32_t>(v));
    store_le32(p + 4, static_cast<uint32_t>(v >> 32));
}

struct le32 {
    std::array<uint8_t, 4> bytes{};
    uint32_t get() const noexcept { return load_le32(bytes.data()); }
    void set(uint32_t v) noexcept { store_le32(bytes.data(), v); }
};
struct le64 {
    std::array<uint8_t, 8> bytes{};
    uint64_t get() const noexcept { return load_le64(bytes.data()); }
    void set(uint64_t v) noexcept { store_le64(bytes.data(), v); }
};
static_assert(sizeof(le32) == 4 && alignof(le32) == 1);
static_assert(sizeof(le64) == 8 && alignof(le64) == 1);

// ---------------------------------------------------------------------------------------------
// Protocol constants (whitepaper section 6 and the reference implementations).

namespace spec {

inline constexpr std::string_view construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
inline constexpr std::string_view identifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";
inline constexpr std::string_view label_mac1 = "mac1----";
inline constexpr std::string_view label_cookie = "cookie--";

inline constexpr uint32_t message_initiation_type = 1;
inline constexpr uint32_t message_response_type = 2;
inline constexpr uint32_t message_cookie_reply_type = 3;
inline constexpr uint32_t message_transport_type = 4;

inline constexpr std::size_t key_size = 32;
inline constexpr std::size_t tag_size = 16;     // Poly1305
inline constexpr std::size_t mac_size = 16;     // mac1, mac2, cookie
inline constexpr std::size_t cookie_size = 16;
inline constexpr std::size_t timestamp_size = 12;  // TAI64N
inline constexpr std::size_t cookie_nonce_size = 24;
inline constexpr std::size_t padding_multiple = 16;

inline constexpr uint64_t rekey_after_messages = uint64_t{1} << 60;
// 2^64 - 2^13 - 1, the whitepaper's and wireguard-go's value (the kernel's U64_MAX - 8128 - 1 is
// 63 larger; ours is the stricter of the two). Counters >= this are never sent nor accepted.
inline constexpr uint64_t reject_after_messages = ~uint64_t{0} - (uint64_t{1} << 13);
static_assert(reject_after_messages == 18446744073709543423ULL);

inline constexpr std::chrono::seconds rekey_after_time{120};
inline constexpr std::chrono::seconds reject_after_time{180};
inline constexpr std::chrono::seconds rekey_attempt_time{90};
inline constexpr std::chrono::seconds rekey_timeout{5};
inline constexpr std::chrono::seconds keepalive_timeout{10};
inline constexpr std::chrono::seconds cookie_secret_max_age{120};
inline constexpr std::chrono::seconds cookie_secret_latency{5};
// Initiations accepted per peer per second (the kernel's INITIATIONS_PER_SECOND): a valid
// initiation arriving sooner than 1/50 s after the previous accepted one is dropped as a flood.
inline constexpr uint32_t initiations_per_second = 50;
inline constexpr std::chrono::nanoseconds initiation_min_interval{1'000'000'000 / initiations_per_second};

// RFC 6479 anti-replay window: 8192 bits of which one 64-bit word is redundant.
inline constexpr uint64_t counter_bits_total = 8192;
inline constexpr uint64_t counter_redundant_bits = 64;
inline constexpr uint64_t replay_window_size = counter_bits_total - counter_redundant_bits;  // 8128

}  // namespace spec

// Our own tuning, not part of the protocol.
namespace limits {

// Largest transport payload we encapsulate/decapsulate in one message (a UDP datagram).
inline constexpr std::size_t max_transport_payload = 65535 - 16 - 16;
// Largest UDP payload over IPv4: 65535 - 20 (IPv4 header) - 8 (UDP header). IPv6 allows 65527.
inline constexpr std::size_t max_udp_payload_v4 = 65535 - 20 - 8;
// Largest device MTU meshfwd accepts (mesh.device.mtu; the config reader, --check and the node
// all use this one constant): a packet of exactly the MTU becomes a transport message of 16
// (header) + MTU + 16 (tag) bytes, since padding never goes past the MTU, and that message must
// fit one UDP datagram over IPv4. 65475. (wireguard-go caps its MTU at MaxContentSize = 65535 -
// 32 = 65503, whose largest messages fit no UDP datagram on either IP version; the kernel module
// allows still more. Both work with meshfwd at any MTU up to this one.)
inline constexpr std::size_t max_mtu = max_udp_payload_v4 - 16 - 16;
static_assert(max_mtu == 65475);
// Most counters one reserve() call hands out (a worker's burst).
inline constexpr uint64_t max_counter_reservation = 4096;

}  // namespace limits

// Monotonic time as used for every protocol timer here. Tests inject arbitrary points.
using mono_clock = std::chrono::steady_clock;
using mono_time = mono_clock::time_point;

// ---------------------------------------------------------------------------------------------
// Wire structs.

struct message_macs {
    std::array<uint8_t, spec::mac_size> mac1{};
    std::array<uint8_t, spec::mac_size> mac2{};
};
static_assert(sizeof(message_macs) == 32);

struct message_initiation {
    le32 type;                                 // 1, reserved bytes zero
    le32 sender_index;                         // initiator's local index
    std::array<uint8_t, 32> ephemeral{};       // unencrypted ephemeral public key
    std::array<uint8_t, 32 + 16> encrypted_static{};
    std::array<uint8_t, 12 + 16> encrypted_timestamp{};
    message_macs macs;
};
static_assert(sizeof(message_initiation) == 148 && alignof(message_initiation) == 1);

struct message_response {
    le32 type;                                 // 2
    le32 sender_index;                         // responder's local index
    le32 receiver_index;                       // the initiator's sender_index
    std::array<uint8_t, 32> ephemeral{};
    std::array<uint8_t, 0 + 16> encrypted_nothing{};
    message_macs macs;
};
static_assert(sizeof(message_response) == 92 && alignof(message_response) == 1);

struct message_cookie_reply {
    le32 type;                                 // 3
    le32 receiver_index;                       // sender_index of the message being answered
    std::array<uint8_t, spec::cookie_nonce_size> nonce{};
    std::array<uint8_t, spec::cookie_size + 16> encrypted_cookie{};
};
static_assert(sizeof(message_cookie_reply) == 64 && alignof(message_cookie_reply) == 1);

struct message_transport_header {
    le32 type;                                 // 4
    le32 receiver_index;                       // the receiver's local index
    le64 counter;                              // nonce
};
static_assert(sizeof(message_transport_header) == 16 && alignof(message_transport_header) == 1);

inline constexpr std::size_t message_transport_min_size = sizeof(message_transport_header) + spec::tag_size;
// mac1 covers the message up to mac1; mac2 covers it up to mac2.
inline constexpr std::size_t macs_size = sizeof(message_macs);

// Size on the wire of a transport message carrying `plain_len` bytes, padded to 16 (MTU cap
// is applied by the caller through encapsulate()'s `mtu` argument).
constexpr std::size_t transport_padded_len(std::size_t plain_len) noexcept {
    return (plain_len + spec::padding_multiple - 1) & ~(spec::padding_multiple - 1);
}

// ---------------------------------------------------------------------------------------------
// Parsing. Every reason is counted by the caller (STYLE.md #4).

#define MESHFWD_MESSAGE_REASONS(X)                                                  \
    X(ok, "well-formed")                                                           \
    X(empty, "zero-length datagram")                                               \
    X(unknown_type, "type word is not 1..4 with zero reserved bytes")             \
    X(truncated, "shorter than the message type's fixed size")                     \
    X(oversized, "longer than the message type's fixed size")                      \
    X(wrong_type, "type word differs from the type this parser expects")

MESHFWD_DEFINE_REASONS(message_reason, MESHFWD_MESSAGE_REASONS)

enum class message_kind : uint8_t { invalid = 0, initiation = 1, response = 2, cookie_reply = 3, transport = 4 };

// Classifies a datagram by its type word and size (handshake messages must have their exact
// size; transport must be at least 32 bytes). Reason != ok means: drop and count.
struct classified {
    message_kind kind;
    message_reason reason;
};
[[nodiscard]] classified classify_message(std::span<const uint8_t> datagram) noexcept;

// Copies a datagram into the struct after checking type and exact size. `out` is untouched
// unless the result is ok.
[[nodiscard]] message_reason parse_initiation(std::span<const uint8_t> datagram, message_initiation& out) noexcept;
[[nodiscard]] message_reason parse_response(std::span<const uint8_t> datagram, message_response& out) noexcept;
[[nodiscard]] message_reason parse_cookie_reply(std::span<const uint8_t> datagram,
                                                message_cookie_reply& out) noexcept;
// Transport messages are not copied: checks type and minimum size, fills the header.
[[nodiscard]] message_reason parse_transport_header(std::span<const uint8_t> datagram,
                                                    message_transport_header& out) noexcept;

// A message struct as bytes (for mac computation and sending).
template <typename Message>
std::span<const uint8_t, sizeof(Message)> as_bytes(const Message& m) noexcept {
    return std::span<const uint8_t, sizeof(Message)>(reinterpret_cast<const uint8_t*>(&m), sizeof(Message));
}
template <typename Message>
std::span<uint8_t, sizeof(Message)> as_writable_bytes(Message& m) noexcept {
    return std::span<uint8_t, sizeof(Message)>(reinterpret_cast<uint8_t*>(&m), sizeof(Message));
}

}  // namespace meshfwd::crypto
