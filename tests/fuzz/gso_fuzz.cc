// Fuzz target: arbitrary bytes as a 10-byte virtio-net header plus the packet a TUN read gives,
// into complete_checksum (on a copy) and split_super_packet. Beyond "no crash", every split that
// succeeds must give segments that fit their buffers, carry valid IPv4 header and L4 checksums,
// and together hold exactly the original payload; split in parts of a few buffers, the same.
#include "dataplane/checksum.h"
#include "dataplane/gso.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace {

using namespace meshfwd::dataplane;

constexpr std::size_t max_segments = 64;

struct state {
    // Small buffers make segment_too_large reachable; large ones let big gso_size values split.
    std::vector<std::vector<uint8_t>> small = std::vector<std::vector<uint8_t>>(max_segments, std::vector<uint8_t>(1500));
    std::vector<std::vector<uint8_t>> large = std::vector<std::vector<uint8_t>>(4, std::vector<uint8_t>(65600));
    std::array<uint8_t*, max_segments> small_ptrs{};
    std::array<uint8_t*, 4> large_ptrs{};
    std::array<uint32_t, max_segments> lengths{};
    std::vector<uint8_t> copy;
    state() {
        for (std::size_t i = 0; i < max_segments; ++i) {
            small_ptrs[i] = small[i].data();
        }
        for (std::size_t i = 0; i < 4; ++i) {
            large_ptrs[i] = large[i].data();
        }
    }
};

// Checks segments [first, first + n) of a split, lying in out[0, n); `payload_total` is the
// payload of the segments before them (in: where theirs starts; out: where the next starts).
// Returns the header length.
std::size_t check_part(const vnet_header& h, std::span<const uint8_t> packet, std::span<uint8_t* const> out,
                       uint32_t capacity, const uint32_t* lengths, uint32_t n, std::size_t& payload_total) {
    if (n == 0 || n > out.size()) {
        __builtin_trap();
    }
    const bool tcp = (h.gso_type & 0x7f) != vnet::gso_udp_l4;
    std::size_t hdrs = 0;
    for (uint32_t i = 0; i < n; ++i) {
        const uint8_t* d = out[i];
        const uint32_t len = lengths[i];
        if (len > capacity || len < 28) {
            __builtin_trap();
        }
        const bool v6 = (d[0] >> 4) == 6;
        const std::size_t ip_len = v6 ? 40 : (d[0] & 0x0fu) * 4u;
        if (v6 ? load_be16(d + 4) + 40u != len : load_be16(d + 2) != len) {
            __builtin_trap();
        }
        if (!v6 && checksum_fold(checksum_add({d, ip_len})) != 0xffff) {
            __builtin_trap();
        }
        const std::size_t l4_len = tcp ? (d[ip_len + 12] >> 4) * 4u : 8u;
        hdrs = ip_len + l4_len;
        if (hdrs > len || (i + 1 < n && len - hdrs != h.gso_size)) {
            __builtin_trap();
        }
        const std::span<const uint8_t> src = v6 ? std::span<const uint8_t>(d + 8, 16) : std::span<const uint8_t>(d + 12, 4);
        const std::span<const uint8_t> dst = v6 ? std::span<const uint8_t>(d + 24, 16) : std::span<const uint8_t>(d + 16, 4);
        const uint64_t sum = checksum_add({d + ip_len, len - ip_len},
                                          pseudo_header_sum(src, dst, tcp ? 6 : 17, static_cast<uint32_t>(len - ip_len)));
        if (checksum_fold(sum) != 0xffff) {
            __builtin_trap();
        }
        if (hdrs + payload_total + (len - hdrs) > packet.size() ||
            std::memcmp(d + hdrs, packet.data() + hdrs + payload_total, len - hdrs) != 0) {
            __builtin_trap();
        }
        payload_total += len - hdrs;
    }
    return hdrs;
}

void check_segments(const vnet_header& h, std::span<const uint8_t> packet, std::span<uint8_t* const> out,
                    uint32_t capacity, const uint32_t* lengths, uint32_t n) {
    std::size_t payload_total = 0;
    const std::size_t hdrs = check_part(h, packet, out, capacity, lengths, n, payload_total);
    if (hdrs + payload_total != packet.size()) {
        __builtin_trap();
    }
}

// The same split in parts of `part` buffers (split_super_packet_from), however many segments:
// the parts must agree with each other and together hold the whole payload.
void check_parts(const vnet_header& h, std::span<const uint8_t> packet, std::span<uint8_t* const> out,
                 uint32_t capacity, std::span<uint32_t> lengths, uint32_t part) {
    uint32_t done = 0;
    uint32_t total = 0;
    std::size_t payload_total = 0;
    std::size_t hdrs = 0;
    do {
        const auto r = split_super_packet_from(h, packet, done, out.first(part), capacity, lengths.first(part));
        if (r.reason != gso_reason::ok) {
            if (done != 0 || r.segments != 0 || r.total != 0) {
                __builtin_trap();  // a refusal is the same for every part, so the first one
            }
            return;
        }
        if ((done != 0 && r.total != total) || r.segments != std::min(part, r.total - done)) {
            __builtin_trap();
        }
        total = r.total;
        hdrs = check_part(h, packet, out, capacity, lengths.data(), r.segments, payload_total);
        done += r.segments;
    } while (done < total);
    if (hdrs + payload_total != packet.size()) {
        __builtin_trap();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static state s;
    if (size < virtio_net_hdr_size) {
        return 0;
    }
    const vnet_header h = parse_vnet_header(std::span<const uint8_t, virtio_net_hdr_size>(data, virtio_net_hdr_size));
    const std::span<const uint8_t> packet(data + virtio_net_hdr_size, size - virtio_net_hdr_size);

    s.copy.assign(packet.begin(), packet.end());
    if (complete_checksum(h, s.copy) == gso_reason::ok) {
        // Only the two checksum bytes may change.
        std::size_t changed = 0;
        for (std::size_t i = 0; i < s.copy.size(); ++i) {
            if (s.copy[i] != packet[i] && (i < std::size_t{h.csum_start} + h.csum_offset ||
                                           i > std::size_t{h.csum_start} + h.csum_offset + 1)) {
                ++changed;
            }
        }
        if (changed != 0) {
            __builtin_trap();
        }
    }

    auto r = split_super_packet(h, packet, s.small_ptrs, 1500, s.lengths);
    if (r.reason == gso_reason::ok) {
        check_segments(h, packet, s.small_ptrs, 1500, s.lengths.data(), r.segments);
    } else if (r.segments != 0 && r.reason != gso_reason::too_many_segments) {
        __builtin_trap();
    }
    check_parts(h, packet, s.small_ptrs, 1500, s.lengths, 1 + static_cast<uint32_t>(size % 5));
    r = split_super_packet(h, packet, s.large_ptrs, 65600, std::span<uint32_t>(s.lengths).first(4));
    if (r.reason == gso_reason::ok) {
        check_segments(h, packet, s.large_ptrs, 65600, s.lengths.data(), r.segments);
    }
    return 0;
}
