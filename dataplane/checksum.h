// Internet checksum (RFC 1071) helpers for the offload code (gso.cc, gro.cc) and anyone who
// builds or fixes IP/TCP/UDP headers. Pure functions over caller memory: any thread, no state,
// no allocation; safe on the per-packet path.
//
// Conventions: a "sum" is an unfolded 64-bit accumulator of 16-bit words in network byte order
// (big-endian), so partial sums of different pieces can simply be added (keep the total below
// 2^63: that is billions of pieces). checksum_fold() folds it to 16 bits WITHOUT inverting: the
// value for a checksum field is ~checksum_fold(...). A span that is not the last piece of one
// checksum must have even length (an odd byte is the high half of a padded word, RFC 1071 4.1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace meshfwd::dataplane {

// Adds `data` (16-bit big-endian words; an odd last byte is padded with zero) to `sum`.
// Reads 8 bytes at a time.
[[nodiscard]] uint64_t checksum_add(std::span<const uint8_t> data, uint64_t sum = 0) noexcept;

// Folds a sum to the 16-bit one's complement sum (not inverted). Gives 0 only for a zero sum;
// any other multiple of 0xffff gives 0xffff.
[[nodiscard]] uint16_t checksum_fold(uint64_t sum) noexcept;

// Pseudo-header sum for TCP/UDP (RFC 793/768 for IPv4, RFC 8200 8.1 for IPv6): source and
// destination address (both 4 bytes or both 16 bytes, network order), protocol, and the L4
// length (header + payload). Unfolded; fold it to get what NEEDS_CSUM puts in the L4 field.
[[nodiscard]] uint64_t pseudo_header_sum(std::span<const uint8_t> src, std::span<const uint8_t> dst,
                                         uint8_t protocol, uint32_t l4_length) noexcept;

// The value to store in an IPv4 header's checksum field (bytes 10-11), computed over
// `header` (IHL*4 bytes) as if that field were zero. Does not write it.
[[nodiscard]] uint16_t ipv4_header_checksum(std::span<const uint8_t> header) noexcept;

// Finishes an L4 checksum: ~fold(sum), with 0 sent as 0xffff (UDP reserves 0 for "no
// checksum"; for TCP the two are the same value in one's complement).
[[nodiscard]] inline uint16_t checksum_finish(uint64_t sum) noexcept {
    const uint16_t c = static_cast<uint16_t>(~checksum_fold(sum));
    return c == 0 ? uint16_t{0xffff} : c;
}

// Big-endian field access for the header code in dataplane/ (unaligned-safe).
[[nodiscard]] inline uint16_t load_be16(const uint8_t* p) noexcept {
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
[[nodiscard]] inline uint32_t load_be32(const uint8_t* p) noexcept {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void store_be16(uint8_t* p, uint16_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
inline void store_be32(uint8_t* p, uint32_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}

}  // namespace meshfwd::dataplane
