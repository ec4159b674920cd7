// IP addresses, prefixes (CIDR) and UDP endpoints: value types for config, routing tables and
// the socket layer. Text forms are parsed strictly (see ip_address::parse). Value types with no
// shared state: any thread.
#pragma once

#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lib/result.h"

namespace meshfwd {

enum class ip_family : uint8_t { v4, v6 };

/// An IPv4 or IPv6 address. Default-constructed: 0.0.0.0. Ordered IPv4 before IPv6, then by
/// bytes (network order), so sorting gives numeric order within a family.
class ip_address {
public:
    ip_address() noexcept = default;

    /// Accepts IPv4 dotted-quad (exactly four decimal octets 0-255, no leading zeros, which some
    /// parsers read as octal) and IPv6 in RFC 4291 text form, including "::" compression and a
    /// trailing dotted quad ("::ffff:192.0.2.1", kept as IPv6). Refuses blanks, brackets, zone
    /// indexes ("fe80::1%eth0"), host names, and the loose inet_aton forms ("10.1", "0x0a.0.0.1").
    static result<ip_address> parse(std::string_view text);

    /// An IPv4 address from a host-order integer: v4(0xc0000201) is 192.0.2.1.
    static ip_address v4(uint32_t host_order) noexcept;
    static ip_address v6(const std::array<uint8_t, 16>& network_order) noexcept;
    /// 4 bytes give IPv4, 16 bytes IPv6 (network order). Any other length gives 0.0.0.0: callers
    /// pass buffers whose size they know (a sockaddr field, a packet header field).
    static ip_address from_bytes(std::span<const uint8_t> network_order) noexcept;

    ip_family family() const noexcept { return _family; }
    bool is_v4() const noexcept { return _family == ip_family::v4; }
    bool is_v6() const noexcept { return _family == ip_family::v6; }
    /// 4 bytes for IPv4, 16 for IPv6, network order; valid while this object lives.
    std::span<const uint8_t> bytes() const noexcept {
        return {_bytes.data(), is_v4() ? std::size_t{4} : std::size_t{16}};
    }
    /// The IPv4 address as a host-order integer; 0 for IPv6.
    uint32_t v4_host_order() const noexcept;
    /// True for ::ffff:a.b.c.d, as dual-stack sockets report IPv4 peers.
    bool is_v4_mapped() const noexcept;
    /// a.b.c.d for ::ffff:a.b.c.d; any other address unchanged.
    ip_address unmapped() const noexcept;
    /// The canonical text form (inet_ntop: RFC 5952-style "::" compression for IPv6).
    std::string to_string() const;

    friend auto operator<=>(const ip_address&, const ip_address&) = default;
    friend bool operator==(const ip_address&, const ip_address&) = default;

private:
    ip_family _family = ip_family::v4;
    // Bytes past the 4th are always zero for IPv4, so defaulted comparison and hashing work.
    std::array<uint8_t, 16> _bytes{};
};

/// An address with a prefix length: a route ("10.0.0.0/8") or a node address with its network
/// ("10.100.0.1/16"); host bits are kept as written, masked() clears them.
class ip_prefix {
public:
    ip_prefix() noexcept = default; // 0.0.0.0/0

    /// "address/length"; the length is required, decimal, at most 32 (IPv4) or 128 (IPv6).
    static result<ip_prefix> parse(std::string_view text);
    /// Errors when length exceeds the family's maximum.
    static result<ip_prefix> make(const ip_address& address, unsigned length);

    const ip_address& address() const noexcept { return _address; }
    uint8_t length() const noexcept { return _length; }
    /// The same prefix with host bits cleared: 10.100.0.1/16 -> 10.100.0.0/16.
    ip_prefix masked() const noexcept;
    /// True when addr has the same family and the same first length() bits.
    bool contains(const ip_address& addr) const noexcept;
    std::string to_string() const;

    friend auto operator<=>(const ip_prefix&, const ip_prefix&) = default;
    friend bool operator==(const ip_prefix&, const ip_prefix&) = default;

private:
    ip_prefix(const ip_address& address, uint8_t length) noexcept : _address(address), _length(length) {}

    ip_address _address;
    uint8_t _length = 0;
};

/// A UDP endpoint: address and port.
class endpoint {
public:
    endpoint() noexcept = default; // 0.0.0.0:0
    endpoint(const ip_address& address, uint16_t port) noexcept : _address(address), _port(port) {}

    /// "192.0.2.1:51820" or "[2001:db8::1]:51820"; port 1-65535, decimal. Addresses as in
    /// ip_address::parse; host names are not resolved.
    static result<endpoint> parse(std::string_view text);

    const ip_address& address() const noexcept { return _address; }
    uint16_t port() const noexcept { return _port; }
    /// "192.0.2.1:51820" or "[2001:db8::1]:51820".
    std::string to_string() const;

    /// Fills a sockaddr_in or sockaddr_in6 (zeroed first); returns its length.
    socklen_t to_sockaddr(sockaddr_storage& out) const noexcept;
    /// From what recvmsg/getsockname report: AF_INET or AF_INET6 with a long enough len, else
    /// nullopt. The port is taken as is (may be 0); IPv6 scope ids are dropped; v4-mapped IPv6
    /// stays IPv6 (see ip_address::unmapped).
    static std::optional<endpoint> from_sockaddr(const sockaddr* addr, socklen_t len) noexcept;

    friend auto operator<=>(const endpoint&, const endpoint&) = default;
    friend bool operator==(const endpoint&, const endpoint&) = default;

private:
    ip_address _address;
    uint16_t _port = 0;
};

} // namespace meshfwd

template <>
struct std::hash<meshfwd::ip_address> {
    std::size_t operator()(const meshfwd::ip_address& a) const noexcept;
};

template <>
struct std::hash<meshfwd::ip_prefix> {
    std::size_t operator()(const meshfwd::ip_prefix& p) const noexcept;
};

template <>
struct std::hash<meshfwd::endpoint> {
    std::size_t operator()(const meshfwd::endpoint& e) const noexcept;
};
