// TUN offload input: the virtio-net header that precedes every TUN read and write (IFF_VNET_HDR),
// finishing a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM), and splitting TSO/USO
// super-packets (up to 64 KiB) into MTU-sized IP packets ready to encrypt.
//
// Pipeline position: worker tx path  TUN rx burst → [complete_checksum | split_super_packet]
//                                     → classify → lookup → encrypt → UDP tx burst.
// Threads: data-plane workers, per packet; pure functions over caller buffers (no state, no
// allocation, lock, exception or log). Bad input gives a gso_reason, never a crash.
//
// Semantics follow Linux (tun.c, include/linux/virtio_net.h, tcp_gso_segment, __udp_gso_segment)
// and wireguard-go's tun/offload_linux.go: the kernel hands us the super-packet with the L4
// checksum field holding only the pseudo-header sum. Header lengths come from the packet itself;
// hdr_len, csum_start and csum_offset of a GSO packet are not trusted (and not needed: every
// segment's L4 checksum is computed from scratch).
#pragma once

#include "lib/reasons.h"

#include <cstddef>
#include <cstdint>
#include <span>

namespace meshfwd::dataplane {

// struct virtio_net_hdr (<linux/virtio_net.h>): 10 bytes, fields little-endian (x86, and
// TUNSETVNETLE-style legacy headers on little-endian hosts).
inline constexpr std::size_t virtio_net_hdr_size = 10;

namespace vnet {
inline constexpr uint8_t f_needs_csum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM (CHECKSUM_PARTIAL)
inline constexpr uint8_t f_data_valid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID
inline constexpr uint8_t gso_none = 0;
inline constexpr uint8_t gso_tcpv4 = 1;
inline constexpr uint8_t gso_udp = 3;  // UFO (IP fragmentation): not supported
inline constexpr uint8_t gso_tcpv6 = 4;
inline constexpr uint8_t gso_udp_l4 = 5;  // USO (UDP_SEGMENT), IPv4 or IPv6
inline constexpr uint8_t gso_ecn = 0x80;  // flag on the TCP types
}  // namespace vnet

#define MESHFWD_GSO_REASONS(X)                                                                       \
    X(ok, "done")                                                                                   \
    X(truncated, "packet shorter than its IP header or total length says")                          \
    X(bad_ip_header, "wrong IP version for the GSO type, bad header/total length, fragment or protocol") \
    X(bad_l4_header, "TCP/UDP header too short or past the end of the packet")                     \
    X(bad_csum_offset, "NEEDS_CSUM with csum_start/csum_offset outside the packet")                \
    X(unsupported_gso_type, "GSO type other than TCPV4, TCPV6, UDP_L4")                             \
    X(unsupported_ipv6_extension, "IPv6 extension headers before TCP/UDP")                          \
    X(bad_gso_size, "gso_size is 0")                                                                \
    X(too_many_segments, "more segments than output buffers")                                       \
    X(segment_too_large, "a segment would not fit its output buffer")
MESHFWD_DEFINE_REASONS(gso_reason, MESHFWD_GSO_REASONS)

struct vnet_header {
    uint8_t flags = 0;
    uint8_t gso_type = 0;
    uint16_t hdr_len = 0;
    uint16_t gso_size = 0;
    uint16_t csum_start = 0;
    uint16_t csum_offset = 0;

    friend bool operator==(const vnet_header&, const vnet_header&) = default;
};

[[nodiscard]] vnet_header parse_vnet_header(std::span<const uint8_t, virtio_net_hdr_size> bytes) noexcept;
void write_vnet_header(const vnet_header& h, std::span<uint8_t, virtio_net_hdr_size> bytes) noexcept;

// For gso_type NONE: with NEEDS_CSUM, sums packet[csum_start, end) (whose checksum field holds the
// pseudo-header sum) and stores the result at csum_start + csum_offset, in place; without it,
// does nothing. Returns bad_csum_offset when the field does not fit inside the packet, and
// unsupported_gso_type for any other gso_type (use split_super_packet).
[[nodiscard]] gso_reason complete_checksum(const vnet_header& h, std::span<uint8_t> packet) noexcept;

struct gso_split_result {
    gso_reason reason;
    // ok: segments written by this call. too_many_segments (split_super_packet only): segments
    // needed. Otherwise 0.
    uint32_t segments;
    // ok or too_many_segments: segments the whole super-packet gives. Otherwise 0.
    uint32_t total;
};

// For gso_type TCPV4 / TCPV6 (either may carry the ECN flag) / UDP_L4: writes segment i as a
// complete IP packet into out[i] (each buffer has `segment_capacity` bytes), its length into
// lengths[i]. Per segment: IP header copied (IPv4 options too) with IPv4 total length, id
// (first id + i) and header checksum, or IPv6 payload length, fixed; TCP seq += i * gso_size,
// FIN/PSH kept only on the last segment and CWR only on the first; UDP length; full L4 checksum.
// A payload of at most gso_size (even 0) gives one segment. Checks everything before writing:
// on any reason other than ok nothing was written that the caller may use. All segments must
// fit `out` and `lengths` (too_many_segments otherwise); split_super_packet_from does a part.
// Limits: IPv4 needs IHL >= 5, total length == packet size, no fragment bits; IPv6 needs next
// header TCP/UDP directly (extension headers are refused) and payload length == size - 40.
[[nodiscard]] gso_split_result split_super_packet(const vnet_header& h, std::span<const uint8_t> packet,
                                                  std::span<uint8_t* const> out, uint32_t segment_capacity,
                                                  std::span<uint32_t> lengths) noexcept;

// The same in parts, for callers with fewer output buffers than segments (a 64 KiB super-packet
// of MSS 88 gives 745): writes segments first_segment, first_segment + 1, ... into out[0],
// out[1], ... for as many as fit min(out.size(), lengths.size()), each exactly as
// split_super_packet writes it (ids, sequence numbers and flags of its place in the whole).
// Returns ok with `segments` written (0 once first_segment >= total) and `total`; the caller
// goes on from first_segment + segments until total. too_many_segments when no buffer was
// given but segments are left; other reasons as split_super_packet, for every part alike.
[[nodiscard]] gso_split_result split_super_packet_from(const vnet_header& h, std::span<const uint8_t> packet,
                                                       uint32_t first_segment, std::span<uint8_t* const> out,
                                                       uint32_t segment_capacity,
                                                       std::span<uint32_t> lengths) noexcept;

}  // namespace meshfwd::dataplane
