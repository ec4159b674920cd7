// IPv4/ICMP and IPv6/ICMPv6 echo packets for `meshctl ping`: builds the request that goes
// inside the tunnel and parses the reply that comes out of it. Main thread; pure functions.
//
// The packets are whole IP packets (what a TUN device would carry), because a WireGuard peer
// decrypts our transport data and hands it to its own IP stack, which checks every checksum.
#pragma once

#include "lib/ip_address.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace meshfwd::meshctl {

namespace icmp {

constexpr size_t ipv4_header_len = 20;
constexpr size_t ipv6_header_len = 40;
constexpr size_t echo_header_len = 8;
// ping's default: 56 data bytes, 64 bytes of ICMP.
constexpr size_t default_payload_len = 56;
constexpr uint8_t default_ttl = 64;

constexpr uint8_t type_echo_reply_v4 = 0;
constexpr uint8_t type_echo_request_v4 = 8;
constexpr uint8_t type_echo_request_v6 = 128;
constexpr uint8_t type_echo_reply_v6 = 129;
constexpr uint8_t proto_icmp = 1;
constexpr uint8_t proto_icmpv6 = 58;

} // namespace icmp

// RFC 1071 one's-complement sum, not yet folded or inverted; feed several pieces in turn.
[[nodiscard]] uint32_t checksum_add(uint32_t sum, std::span<const uint8_t> data) noexcept;
[[nodiscard]] uint16_t checksum_fold(uint32_t sum) noexcept;

// Writes an echo request from src to dst into out; src and dst must be the same family.
// Returns the packet length, or 0 when out is too small.
[[nodiscard]] size_t build_echo_request(std::span<uint8_t> out, const ip_address& src,
                                        const ip_address& dst, uint16_t id, uint16_t seq,
                                        std::span<const uint8_t> payload) noexcept;

struct echo_reply {
    ip_address from;
    ip_address to;
    uint16_t id = 0;
    uint16_t seq = 0;
    uint8_t ttl = 0;      // hop limit for IPv6
    size_t icmp_len = 0;  // ICMP header + data, what ping prints as "N bytes"
    std::span<const uint8_t> payload;
};

// Parses a decrypted IP packet (which may carry WireGuard's zero padding past the IP length).
// Returns a reply only for a well-formed echo reply whose IP and ICMP checksums verify.
[[nodiscard]] std::optional<echo_reply> parse_echo_reply(std::span<const uint8_t> packet) noexcept;

} // namespace meshfwd::meshctl
