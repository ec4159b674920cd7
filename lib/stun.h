// STUN (RFC 8489) message codec: enough for a Binding responder (meshcoord's --stun-listen) and
// for ICE connectivity checks later. Parsing is bounds-checked and allocation-free: a message
// view points into the caller's buffer, attributes are kept in a fixed array, and errors are
// named reasons (so a socket loop can count them). Pure functions on caller-owned buffers: any
// thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "lib/ip_address.h"
#include "lib/reasons.h"

namespace meshfwd::stun {

inline constexpr uint32_t magic_cookie = 0x2112A442;
inline constexpr std::size_t header_size = 20;
inline constexpr std::size_t transaction_id_size = 12;
// Attributes kept per message; a message with more is refused (Binding needs a handful).
inline constexpr std::size_t max_attributes = 32;
// FINGERPRINT is CRC-32 of the message up to it, xor this (RFC 8489 section 14.7).
inline constexpr uint32_t fingerprint_xor = 0x5354554e;

// Message types (method and class folded together, RFC 8489 section 5).
inline constexpr uint16_t binding_request = 0x0001;
inline constexpr uint16_t binding_indication = 0x0011;
inline constexpr uint16_t binding_success = 0x0101;
inline constexpr uint16_t binding_error = 0x0111;

// Attribute types.
namespace attr {
inline constexpr uint16_t mapped_address = 0x0001;
inline constexpr uint16_t username = 0x0006;
inline constexpr uint16_t message_integrity = 0x0008;
inline constexpr uint16_t error_code = 0x0009;
inline constexpr uint16_t unknown_attributes = 0x000A;
inline constexpr uint16_t realm = 0x0014;
inline constexpr uint16_t nonce = 0x0015;
inline constexpr uint16_t message_integrity_sha256 = 0x001C;
inline constexpr uint16_t xor_mapped_address = 0x0020;
inline constexpr uint16_t priority = 0x0024;        // ICE (RFC 8445)
inline constexpr uint16_t use_candidate = 0x0025;   // ICE
inline constexpr uint16_t software = 0x8022;
inline constexpr uint16_t alternate_server = 0x8023;
inline constexpr uint16_t fingerprint = 0x8028;
inline constexpr uint16_t ice_controlled = 0x8029;  // ICE
inline constexpr uint16_t ice_controlling = 0x802A; // ICE
} // namespace attr

#define MESHFWD_STUN_PARSE_RESULTS(X)                                                         \
    X(ok, "a well-formed STUN message")                                                       \
    X(too_short, "shorter than the 20-byte STUN header")                                      \
    X(not_stun, "first two bits not zero or magic cookie missing")                            \
    X(bad_length, "header length not a multiple of 4 or not the datagram's length")           \
    X(truncated_attribute, "an attribute runs past the end of the message")                   \
    X(too_many_attributes, "more attributes than the parser keeps")                           \
    X(after_fingerprint, "an attribute follows FINGERPRINT")                                  \
    X(bad_fingerprint, "FINGERPRINT does not match the message")
MESHFWD_DEFINE_REASONS(parse_result, MESHFWD_STUN_PARSE_RESULTS)

struct attribute {
    uint16_t type = 0;
    uint16_t offset = 0;              // of the attribute header, from the message start
    std::span<const uint8_t> value;   // without padding
};

// A parsed message: views into the buffer given to parse(); valid while that buffer is.
struct message {
    uint16_t type = 0;
    std::array<uint8_t, transaction_id_size> transaction_id{};
    std::span<const uint8_t> bytes;   // the whole message
    std::array<attribute, max_attributes> attributes{};
    std::size_t attribute_count = 0;
    bool has_fingerprint = false;     // present and checked

    std::span<const attribute> attrs() const noexcept { return {attributes.data(), attribute_count}; }
    // The first attribute of this type, or null.
    const attribute* find(uint16_t attr_type) const noexcept;
};

// Cheap demultiplexing test (a STUN message versus WireGuard or anything else on one socket):
// the header's fixed bits, the magic cookie, and a length that matches the datagram.
bool is_stun_message(std::span<const uint8_t> datagram) noexcept;

// Full parse: header, every attribute (4-byte padding, bounds checked), FINGERPRINT checked when
// present (and required to be last). Unknown attributes are kept; interpreting them is the
// caller's business. MESSAGE-INTEGRITY is recorded, not verified (no credentials here).
parse_result parse(std::span<const uint8_t> datagram, message& out) noexcept;

// XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) decoded from a message; nullopt if absent or malformed.
std::optional<endpoint> xor_mapped_address(const message& msg) noexcept;
std::optional<endpoint> mapped_address(const message& msg) noexcept;

// Builders write into `out` and return the message length, or 0 if out is too small.
// A Binding Success Response carrying XOR-MAPPED-ADDRESS (IPv4 or IPv6) and FINGERPRINT.
inline constexpr std::size_t max_binding_success_size = header_size + 4 + 20 + 8;
std::size_t build_binding_success(std::span<uint8_t> out,
                                  const std::array<uint8_t, transaction_id_size>& transaction_id,
                                  const endpoint& mapped) noexcept;
// A Binding Request with only FINGERPRINT (a client's probe).
inline constexpr std::size_t binding_request_size = header_size + 8;
std::size_t build_binding_request(std::span<uint8_t> out,
                                  const std::array<uint8_t, transaction_id_size>& transaction_id) noexcept;

// The whole binding responder step: if `datagram` parses as a Binding Request, writes the
// Binding Success Response telling `from` its address into `out` and returns its length.
// Otherwise returns 0 and, when `why` is given, sets it (parse_result::ok with 0 returned means a
// well-formed STUN message that is not a Binding Request, or an `out` that is too small).
std::size_t answer_binding_request(std::span<const uint8_t> datagram, const endpoint& from,
                                   std::span<uint8_t> out, parse_result* why = nullptr) noexcept;

// CRC-32 (ISO-HDLC, as zlib's crc32) and the FINGERPRINT value of the first `length` bytes.
uint32_t crc32(std::span<const uint8_t> data) noexcept;

} // namespace meshfwd::stun
