// Key-derived ULA addresses (see node_address.h). Pure functions: any thread.
#include "coord/node_address.h"

#include <array>
#include <cstring>

#include "crypto/blake2s.h"

namespace meshfwd::coord {

namespace {

// Keyed BLAKE2s with a label as the key separates these hashes from every other use of BLAKE2s
// in meshfwd (WireGuard's own hashes are unkeyed or keyed by secrets).
constexpr std::string_view ula_label = "meshfwd ula v1";
constexpr std::string_view node_label = "meshfwd node ipv6 v1";

std::span<const uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

} // namespace

ip_prefix network_ula_prefix(std::string_view network_id) {
    crypto::hash32 h{};
    crypto::blake2s(h, bytes_of(network_id), bytes_of(ula_label));
    std::array<uint8_t, 16> a{};
    a[0] = 0xfd;
    std::memcpy(a.data() + 1, h.data(), 5); // 40-bit global id (RFC 4193)
    auto p = ip_prefix::make(ip_address::v6(a), 48);
    return p ? *p : ip_prefix{};
}

ip_address node_ipv6_in(const ip_prefix& ula, const node_key& key) {
    crypto::hash32 h{};
    crypto::blake2s(h, key, bytes_of(node_label));
    std::array<uint8_t, 16> a{};
    const ip_prefix masked = ula.masked(); // bytes() points into it: keep it alive
    const auto prefix = masked.address().bytes();
    if (prefix.size() == 16) {
        std::memcpy(a.data(), prefix.data(), 6);
    }
    std::memcpy(a.data() + 6, h.data(), 10); // the low 80 bits: subnet id and interface id
    // All-zero low bits would be the subnet-router anycast address (RFC 4291 2.6.1).
    bool zero = true;
    for (std::size_t i = 6; i < 16; ++i) {
        zero = zero && a[i] == 0;
    }
    if (zero) {
        a[15] = 1;
    }
    return ip_address::v6(a);
}

ip_address node_ipv6(std::string_view network_id, const node_key& key) {
    return node_ipv6_in(network_ula_prefix(network_id), key);
}

} // namespace meshfwd::coord
