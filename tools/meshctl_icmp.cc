// Echo request building and echo reply parsing for `meshctl ping`. Main thread.
#include "tools/meshctl_icmp.h"

#include <cstring>

namespace meshfwd::meshctl {
namespace {

void put16(uint8_t* p, uint16_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

uint16_t get16(const uint8_t* p) noexcept { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// ICMPv6 checksums cover a pseudo-header (RFC 8200 section 8.1).
uint32_t ipv6_pseudo_header_sum(const uint8_t* src, const uint8_t* dst, uint32_t upper_len) noexcept {
    uint8_t tail[8] = {static_cast<uint8_t>(upper_len >> 24), static_cast<uint8_t>(upper_len >> 16),
                       static_cast<uint8_t>(upper_len >> 8), static_cast<uint8_t>(upper_len), 0, 0, 0,
                       icmp::proto_icmpv6};
    uint32_t sum = checksum_add(0, std::span<const uint8_t>(src, 16));
    sum = checksum_add(sum, std::span<const uint8_t>(dst, 16));
    return checksum_add(sum, tail);
}

} // namespace

uint32_t checksum_add(uint32_t sum, std::span<const uint8_t> data) noexcept {
    size_t i = 0;
    for (; i + 1 < data.size(); i += 2) {
        sum += get16(&data[i]);
    }
    if (i < data.size()) {
        sum += static_cast<uint32_t>(data[i]) << 8;
    }
    // Fold early so a long run of pieces never overflows.
    return (sum & 0xffff) + (sum >> 16);
}

uint16_t checksum_fold(uint32_t sum) noexcept {
    while ((sum >> 16) != 0) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<uint16_t>(~sum);
}

size_t build_echo_request(std::span<uint8_t> out, const ip_address& src, const ip_address& dst,
                          uint16_t id, uint16_t seq, std::span<const uint8_t> payload) noexcept {
    if (src.family() != dst.family()) {
        return 0;
    }
    const size_t ip_len = src.is_v6() ? icmp::ipv6_header_len : icmp::ipv4_header_len;
    const size_t icmp_len = icmp::echo_header_len + payload.size();
    const size_t total = ip_len + icmp_len;
    if (out.size() < total || total > 0xffff) {
        return 0;
    }
    uint8_t* p = out.data();
    std::memset(p, 0, total);
    uint8_t* m = p + ip_len;
    m[0] = src.is_v6() ? icmp::type_echo_request_v6 : icmp::type_echo_request_v4;
    m[1] = 0;
    put16(m + 4, id);
    put16(m + 6, seq);
    if (!payload.empty()) {
        std::memcpy(m + icmp::echo_header_len, payload.data(), payload.size());
    }
    if (src.is_v6()) {
        p[0] = 0x60;
        put16(p + 4, static_cast<uint16_t>(icmp_len));
        p[6] = icmp::proto_icmpv6;
        p[7] = icmp::default_ttl;
        std::memcpy(p + 8, src.bytes().data(), 16);
        std::memcpy(p + 24, dst.bytes().data(), 16);
        uint32_t sum = ipv6_pseudo_header_sum(p + 8, p + 24, static_cast<uint32_t>(icmp_len));
        put16(m + 2, checksum_fold(checksum_add(sum, std::span<const uint8_t>(m, icmp_len))));
    } else {
        p[0] = 0x45;
        put16(p + 2, static_cast<uint16_t>(total));
        put16(p + 4, seq);     // IP id: any value; DF is set so it never matters
        put16(p + 6, 0x4000);  // DF
        p[8] = icmp::default_ttl;
        p[9] = icmp::proto_icmp;
        std::memcpy(p + 12, src.bytes().data(), 4);
        std::memcpy(p + 16, dst.bytes().data(), 4);
        put16(p + 10, checksum_fold(checksum_add(0, std::span<const uint8_t>(p, ip_len))));
        put16(m + 2, checksum_fold(checksum_add(0, std::span<const uint8_t>(m, icmp_len))));
    }
    return total;
}

std::optional<echo_reply> parse_echo_reply(std::span<const uint8_t> packet) noexcept {
    if (packet.empty()) {
        return std::nullopt;
    }
    echo_reply r;
    const uint8_t* p = packet.data();
    std::span<const uint8_t> msg;
    const uint8_t version = static_cast<uint8_t>(p[0] >> 4);
    if (version == 4) {
        if (packet.size() < icmp::ipv4_header_len) {
            return std::nullopt;
        }
        const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
        const size_t total = get16(p + 2);
        if (ihl < icmp::ipv4_header_len || total < ihl || total > packet.size() || p[9] != icmp::proto_icmp) {
            return std::nullopt;
        }
        // A fragment would not hold a whole echo reply; our requests are small and DF.
        if ((get16(p + 6) & 0x3fff) != 0) {
            return std::nullopt;
        }
        if (checksum_fold(checksum_add(0, packet.subspan(0, ihl))) != 0) {
            return std::nullopt;
        }
        msg = packet.subspan(ihl, total - ihl);
        if (msg.size() < icmp::echo_header_len || msg[0] != icmp::type_echo_reply_v4 || msg[1] != 0 ||
            checksum_fold(checksum_add(0, msg)) != 0) {
            return std::nullopt;
        }
        r.from = ip_address::from_bytes(std::span<const uint8_t>(p + 12, 4));
        r.to = ip_address::from_bytes(std::span<const uint8_t>(p + 16, 4));
        r.ttl = p[8];
    } else if (version == 6) {
        if (packet.size() < icmp::ipv6_header_len) {
            return std::nullopt;
        }
        const size_t payload_len = get16(p + 4);
        // Extension headers are not walked: an echo reply to our request carries none.
        if (p[6] != icmp::proto_icmpv6 || icmp::ipv6_header_len + payload_len > packet.size()) {
            return std::nullopt;
        }
        msg = packet.subspan(icmp::ipv6_header_len, payload_len);
        if (msg.size() < icmp::echo_header_len || msg[0] != icmp::type_echo_reply_v6 || msg[1] != 0) {
            return std::nullopt;
        }
        const uint32_t sum = ipv6_pseudo_header_sum(p + 8, p + 24, static_cast<uint32_t>(payload_len));
        if (checksum_fold(checksum_add(sum, msg)) != 0) {
            return std::nullopt;
        }
        r.from = ip_address::from_bytes(std::span<const uint8_t>(p + 8, 16));
        r.to = ip_address::from_bytes(std::span<const uint8_t>(p + 24, 16));
        r.ttl = p[7];
    } else {
        return std::nullopt;
    }
    r.id = get16(msg.data() + 4);
    r.seq = get16(msg.data() + 6);
    r.icmp_len = msg.size();
    r.payload = msg.subspan(icmp::echo_header_len);
    return r;
}

} // namespace meshfwd::meshctl
