// STUN message codec (see stun.h). Any thread.
#include "lib/stun.h"

#include <cstring>

namespace meshfwd::stun {

namespace {

uint16_t load16(const uint8_t* p) noexcept { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t load32(const uint8_t* p) noexcept {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
void store16(uint8_t* p, uint16_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void store32(uint8_t* p, uint32_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}

// Reflected CRC-32 (polynomial 0xEDB88320), table built at compile time.
constexpr std::array<uint32_t, 256> make_crc_table() {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
        }
        table[i] = c;
    }
    return table;
}
constexpr std::array<uint32_t, 256> crc_table = make_crc_table();

std::optional<endpoint> decode_address(const attribute& a, const message& msg, bool xored) noexcept {
    const auto v = a.value;
    if (v.size() < 4 || v[0] != 0) {
        return std::nullopt;
    }
    uint16_t port = load16(v.data() + 2);
    if (xored) {
        port ^= static_cast<uint16_t>(magic_cookie >> 16);
    }
    if (v[1] == 0x01 && v.size() == 8) {
        uint32_t addr = load32(v.data() + 4);
        if (xored) {
            addr ^= magic_cookie;
        }
        return endpoint(ip_address::v4(addr), port);
    }
    if (v[1] == 0x02 && v.size() == 20) {
        std::array<uint8_t, 16> addr{};
        std::memcpy(addr.data(), v.data() + 4, 16);
        if (xored) {
            // The key is the magic cookie followed by the transaction id.
            std::array<uint8_t, 16> key{};
            store32(key.data(), magic_cookie);
            std::memcpy(key.data() + 4, msg.transaction_id.data(), transaction_id_size);
            for (std::size_t i = 0; i < 16; ++i) {
                addr[i] ^= key[i];
            }
        }
        return endpoint(ip_address::v6(addr), port);
    }
    return std::nullopt;
}

void write_header(uint8_t* p, uint16_t type, uint16_t length,
                  const std::array<uint8_t, transaction_id_size>& transaction_id) noexcept {
    store16(p, type);
    store16(p + 2, length);
    store32(p + 4, magic_cookie);
    std::memcpy(p + 8, transaction_id.data(), transaction_id_size);
}

// Appends FINGERPRINT at `at` (the header length must already count it); returns the new size.
std::size_t append_fingerprint(uint8_t* base, std::size_t at) noexcept {
    const uint32_t crc = crc32({base, at}) ^ fingerprint_xor;
    store16(base + at, attr::fingerprint);
    store16(base + at + 2, 4);
    store32(base + at + 4, crc);
    return at + 8;
}

} // namespace

const attribute* message::find(uint16_t attr_type) const noexcept {
    for (std::size_t i = 0; i < attribute_count; ++i) {
        if (attributes[i].type == attr_type) {
            return &attributes[i];
        }
    }
    return nullptr;
}

uint32_t crc32(std::span<const uint8_t> data) noexcept {
    uint32_t c = 0xFFFFFFFFu;
    for (const uint8_t b : data) {
        c = crc_table[(c ^ b) & 0xFF] ^ (c >> 8);
    }
    return c ^ 0xFFFFFFFFu;
}

bool is_stun_message(std::span<const uint8_t> d) noexcept {
    if (d.size() < header_size || (d[0] & 0xC0) != 0) {
        return false;
    }
    const uint16_t length = load16(d.data() + 2);
    return (length & 3) == 0 && std::size_t{length} + header_size == d.size() &&
           load32(d.data() + 4) == magic_cookie;
}

parse_result parse(std::span<const uint8_t> d, message& out) noexcept {
    out.attribute_count = 0;
    out.has_fingerprint = false;
    if (d.size() < header_size) {
        return parse_result::too_short;
    }
    if ((d[0] & 0xC0) != 0 || load32(d.data() + 4) != magic_cookie) {
        return parse_result::not_stun;
    }
    const uint16_t length = load16(d.data() + 2);
    if ((length & 3) != 0 || std::size_t{length} + header_size != d.size()) {
        return parse_result::bad_length;
    }
    out.type = load16(d.data());
    std::memcpy(out.transaction_id.data(), d.data() + 8, transaction_id_size);
    out.bytes = d;

    std::size_t at = header_size;
    while (at < d.size()) {
        if (out.has_fingerprint) {
            return parse_result::after_fingerprint;
        }
        if (d.size() - at < 4) {
            return parse_result::truncated_attribute;
        }
        const uint16_t type = load16(d.data() + at);
        const std::size_t value_len = load16(d.data() + at + 2);
        const std::size_t padded = (value_len + 3) & ~std::size_t{3};
        if (d.size() - at - 4 < padded) {
            return parse_result::truncated_attribute;
        }
        if (out.attribute_count == max_attributes) {
            return parse_result::too_many_attributes;
        }
        if (type == attr::fingerprint) {
            if (value_len != 4 || (crc32(d.first(at)) ^ fingerprint_xor) != load32(d.data() + at + 4)) {
                return parse_result::bad_fingerprint;
            }
            out.has_fingerprint = true;
        }
        out.attributes[out.attribute_count++] =
            attribute{type, static_cast<uint16_t>(at), d.subspan(at + 4, value_len)};
        at += 4 + padded;
    }
    return parse_result::ok;
}

std::optional<endpoint> xor_mapped_address(const message& msg) noexcept {
    const attribute* a = msg.find(attr::xor_mapped_address);
    return a ? decode_address(*a, msg, true) : std::nullopt;
}

std::optional<endpoint> mapped_address(const message& msg) noexcept {
    const attribute* a = msg.find(attr::mapped_address);
    return a ? decode_address(*a, msg, false) : std::nullopt;
}

std::size_t build_binding_success(std::span<uint8_t> out,
                                  const std::array<uint8_t, transaction_id_size>& transaction_id,
                                  const endpoint& mapped) noexcept {
    const ip_address addr = mapped.address().unmapped();
    const std::size_t addr_len = addr.is_v4() ? 4 : 16;
    const std::size_t xma_len = 4 + addr_len;
    const std::size_t total = header_size + 4 + xma_len + 8;
    if (out.size() < total) {
        return 0;
    }
    uint8_t* p = out.data();
    write_header(p, binding_success, static_cast<uint16_t>(total - header_size), transaction_id);
    uint8_t* a = p + header_size;
    store16(a, attr::xor_mapped_address);
    store16(a + 2, static_cast<uint16_t>(xma_len));
    a[4] = 0;
    a[5] = addr.is_v4() ? 0x01 : 0x02;
    store16(a + 6, static_cast<uint16_t>(mapped.port() ^ (magic_cookie >> 16)));
    // The xor key: cookie, then (IPv6) the transaction id, i.e. header bytes 4..19.
    const auto bytes = addr.bytes();
    for (std::size_t i = 0; i < addr_len; ++i) {
        a[8 + i] = static_cast<uint8_t>(bytes[i] ^ p[4 + i]);
    }
    return append_fingerprint(p, header_size + 4 + xma_len);
}

std::size_t build_binding_request(std::span<uint8_t> out,
                                  const std::array<uint8_t, transaction_id_size>& transaction_id) noexcept {
    if (out.size() < binding_request_size) {
        return 0;
    }
    write_header(out.data(), binding_request, 8, transaction_id);
    return append_fingerprint(out.data(), header_size);
}

std::size_t answer_binding_request(std::span<const uint8_t> datagram, const endpoint& from,
                                   std::span<uint8_t> out, parse_result* why) noexcept {
    message m;
    const parse_result r = parse(datagram, m);
    if (why != nullptr) {
        *why = r;
    }
    if (r != parse_result::ok || m.type != binding_request) {
        return 0;
    }
    return build_binding_success(out, m.transaction_id, from);
}

} // namespace meshfwd::stun
