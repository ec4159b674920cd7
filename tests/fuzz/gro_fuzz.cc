// Fuzz target: arbitrary bytes cut into a burst of packets (each prefixed by a 2-byte big-endian
// length, clipped to what is left) and coalesced, TCP only or (input size % 3 == 0) UDP too.
// Beyond "no crash": every packet is in exactly one write, in burst order within it, at most
// max_segments a write; a lone packet is written as it came behind a zero header; a merged
// write splits back (split_super_packet) into one segment per packet carrying that packet's
// ports, TCP sequence number and payload.
#include "dataplane/checksum.h"
#include "dataplane/gro.h"
#include "dataplane/gso.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace {

using namespace meshfwd::dataplane;

constexpr std::size_t max_burst = 64;
constexpr uint32_t max_segments = 16;  // under the burst, so the cap is reached

struct state {
    tcp_coalescer coalescer{max_burst, max_segments};
    std::vector<std::vector<uint8_t>> bufs = std::vector<std::vector<uint8_t>>(max_burst);
    std::vector<std::vector<uint8_t>> originals = std::vector<std::vector<uint8_t>>(max_burst);
    std::vector<gro_packet> burst;
    std::vector<uint8_t> flat;
    std::vector<std::vector<uint8_t>> seg = std::vector<std::vector<uint8_t>>(max_burst, std::vector<uint8_t>(65600));
    std::array<uint8_t*, max_burst> seg_ptrs{};
    std::array<uint32_t, max_burst> seg_len{};
    state() {
        for (std::size_t i = 0; i < max_burst; ++i) {
            seg_ptrs[i] = seg[i].data();
        }
    }
};

// Which packet of the burst an iovec points into, or -1.
int owner(const state& s, const struct iovec& v) {
    const auto* p = static_cast<const uint8_t*>(v.iov_base);
    for (std::size_t i = 0; i < s.burst.size(); ++i) {
        const uint8_t* b = s.bufs[i].data();
        if (p >= b && p + v.iov_len <= b + s.bufs[i].size()) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static state s;
    s.burst.clear();
    std::size_t at = 0;
    while (at + 2 <= size && s.burst.size() < max_burst) {
        std::size_t len = (std::size_t{data[at]} << 8) | data[at + 1];
        at += 2;
        len = std::min(len, size - at);
        const std::size_t i = s.burst.size();
        s.originals[i].assign(data + at, data + at + len);
        s.bufs[i].assign(virtio_net_hdr_size + len, 0xa5);
        std::memcpy(s.bufs[i].data() + virtio_net_hdr_size, data + at, len);
        s.burst.push_back({s.bufs[i].data() + virtio_net_hdr_size, static_cast<uint32_t>(len)});
        at += len;
    }
    s.coalescer.set_enabled(size % 7 != 0);
    s.coalescer.set_udp(size % 3 == 0);
    const auto writes = s.coalescer.coalesce(s.burst);

    std::array<int, max_burst> seen{};
    for (const auto& w : writes) {
        if (w.iov_count == 0 || w.iov_count > max_segments) {
            __builtin_trap();
        }
        int last = -1;
        std::size_t total = 0;
        s.flat.clear();
        for (uint32_t k = 0; k < w.iov_count; ++k) {
            const int i = owner(s, w.iov[k]);
            if (i <= last || (k == 0 && w.iov[k].iov_base != s.bufs[i].data())) {
                __builtin_trap();  // outside any packet, out of order, or a first entry without its header
            }
            ++seen[i];
            last = i;
            total += w.iov[k].iov_len;
            const auto* b = static_cast<const uint8_t*>(w.iov[k].iov_base);
            s.flat.insert(s.flat.end(), b, b + w.iov[k].iov_len);
        }
        if (total != w.total_bytes) {
            __builtin_trap();
        }
        const vnet_header h = parse_vnet_header(std::span<const uint8_t, virtio_net_hdr_size>(s.flat.data(), virtio_net_hdr_size));
        const std::span<const uint8_t> pkt(s.flat.data() + virtio_net_hdr_size, s.flat.size() - virtio_net_hdr_size);
        if (w.iov_count == 1) {
            const int i = owner(s, w.iov[0]);
            if (!(h == vnet_header{}) || pkt.size() != s.originals[i].size() ||
                (!pkt.empty() && std::memcmp(pkt.data(), s.originals[i].data(), pkt.size()) != 0)) {
                __builtin_trap();
            }
            continue;
        }
        const bool udp = h.gso_type == vnet::gso_udp_l4;
        if (udp && !s.coalescer.udp()) {
            __builtin_trap();
        }
        const auto r = split_super_packet(h, pkt, s.seg_ptrs, 65600, s.seg_len);
        if (r.reason != gso_reason::ok || r.segments != w.iov_count) {
            __builtin_trap();
        }
        for (uint32_t k = 0; k < w.iov_count; ++k) {
            const std::vector<uint8_t>& o = s.originals[static_cast<std::size_t>(owner(s, w.iov[k]))];
            const uint8_t* d = s.seg_ptrs[k];
            const std::size_t ip_len = (d[0] >> 4) == 6 ? 40 : 20;
            const std::size_t hdrs = ip_len + (udp ? 8u : (d[ip_len + 12] >> 4) * 4u);
            const std::size_t payload = s.seg_len[k] - hdrs;
            if (o.size() < hdrs + payload || std::memcmp(d + hdrs, o.data() + hdrs, payload) != 0 ||
                (!udp && load_be32(d + ip_len + 4) != load_be32(o.data() + ip_len + 4)) ||
                (udp && load_be16(o.data() + ip_len + 4) != 8 + payload) ||
                std::memcmp(d + ip_len, o.data() + ip_len, 4) != 0) {
                __builtin_trap();
            }
        }
    }
    for (std::size_t i = 0; i < s.burst.size(); ++i) {
        if (seen[i] != 1) {
            __builtin_trap();
        }
    }
    return 0;
}
