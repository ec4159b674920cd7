// IP address, prefix and endpoint parsing/formatting (see ip_address.h). Any thread.
#include "lib/ip_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace meshfwd {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_hex_digit(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Decimal digits only, at most max_digits of them (so the caller's value cannot overflow).
bool parse_decimal(std::string_view s, size_t max_digits, uint64_t* out) {
    if (s.empty() || s.size() > max_digits || !std::all_of(s.begin(), s.end(), is_digit)) {
        return false;
    }
    uint64_t v = 0;
    for (const char c : s) {
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    *out = v;
    return true;
}

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

} // namespace

result<ip_address> ip_address::parse(std::string_view text) {
    const std::string quoted = "'" + std::string(text) + "'";
    if (text.empty()) {
        return make_error("IP address is empty");
    }
    // Longest IPv6 text form: 8 groups of 4 with 7 colons, or 6 groups plus a dotted quad (45).
    if (text.size() > INET6_ADDRSTRLEN - 1) {
        return make_error(quoted.substr(0, 50) + "... is too long for an IP address");
    }
    const bool has_colon = text.find(':') != std::string_view::npos;
    if (has_colon) {
        if (text.find('%') != std::string_view::npos) {
            return make_error(quoted + ": IPv6 zone indexes (%...) are not supported");
        }
        if (text.front() == '[' || text.back() == ']') {
            return make_error(quoted + ": brackets belong only around the address in an endpoint");
        }
        // Also rejects embedded NULs, which would end the C string early inside inet_pton.
        if (!std::all_of(text.begin(), text.end(), [](char c) { return is_hex_digit(c) || c == ':' || c == '.'; })) {
            return make_error(quoted + " is not a valid IPv6 address");
        }
    } else if (!std::all_of(text.begin(), text.end(), [](char c) { return is_digit(c) || c == '.'; })) {
        return make_error(quoted + " is not an IP address (host names are not resolved)");
    }
    char buf[INET6_ADDRSTRLEN] = {};
    std::memcpy(buf, text.data(), text.size());
    ip_address a;
    if (has_colon) {
        if (inet_pton(AF_INET6, buf, a._bytes.data()) != 1) {
            return make_error(quoted + " is not a valid IPv6 address");
        }
        a._family = ip_family::v6;
        return a;
    }
    // glibc's inet_pton(AF_INET) already wants exactly four decimal octets and refuses leading
    // zeros; inet_aton's shorthand forms never reach it.
    if (inet_pton(AF_INET, buf, a._bytes.data()) != 1) {
        return make_error(quoted + " is not a valid IPv4 address");
    }
    return a;
}

ip_address ip_address::v4(uint32_t host_order) noexcept {
    ip_address a;
    a._bytes[0] = static_cast<uint8_t>(host_order >> 24);
    a._bytes[1] = static_cast<uint8_t>(host_order >> 16);
    a._bytes[2] = static_cast<uint8_t>(host_order >> 8);
    a._bytes[3] = static_cast<uint8_t>(host_order);
    return a;
}

ip_address ip_address::v6(const std::array<uint8_t, 16>& network_order) noexcept {
    ip_address a;
    a._family = ip_family::v6;
    a._bytes = network_order;
    return a;
}

ip_address ip_address::from_bytes(std::span<const uint8_t> network_order) noexcept {
    ip_address a;
    if (network_order.size() == 4) {
        std::copy(network_order.begin(), network_order.end(), a._bytes.begin());
    } else if (network_order.size() == 16) {
        a._family = ip_family::v6;
        std::copy(network_order.begin(), network_order.end(), a._bytes.begin());
    }
    return a;
}

uint32_t ip_address::v4_host_order() const noexcept {
    if (!is_v4()) {
        return 0;
    }
    return (uint32_t{_bytes[0]} << 24) | (uint32_t{_bytes[1]} << 16) | (uint32_t{_bytes[2]} << 8) |
           uint32_t{_bytes[3]};
}

bool ip_address::is_v4_mapped() const noexcept {
    static constexpr uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return is_v6() && std::memcmp(_bytes.data(), prefix, sizeof(prefix)) == 0;
}

ip_address ip_address::unmapped() const noexcept {
    if (!is_v4_mapped()) {
        return *this;
    }
    return from_bytes(std::span<const uint8_t>(_bytes.data() + 12, 4));
}

std::string ip_address::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (inet_ntop(is_v4() ? AF_INET : AF_INET6, _bytes.data(), buf, sizeof(buf)) == nullptr) {
        return {}; // cannot happen: the buffer is large enough for either family
    }
    return buf;
}

namespace {

unsigned max_length(ip_family f) { return f == ip_family::v4 ? 32 : 128; }

const char* family_name(ip_family f) { return f == ip_family::v4 ? "IPv4" : "IPv6"; }

} // namespace

result<ip_prefix> ip_prefix::make(const ip_address& address, unsigned length) {
    if (length > max_length(address.family())) {
        return make_error("prefix length " + std::to_string(length) + " is too long for " +
                          family_name(address.family()));
    }
    return ip_prefix(address, static_cast<uint8_t>(length));
}

result<ip_prefix> ip_prefix::parse(std::string_view text) {
    const size_t slash = text.find('/');
    if (slash == std::string_view::npos) {
        return make_error("prefix '" + std::string(text) + "' needs a length (e.g. " +
                          std::string(text) + "/32)");
    }
    auto address = ip_address::parse(text.substr(0, slash));
    if (!address) {
        return make_error(address.error_message());
    }
    const std::string_view len_text = text.substr(slash + 1);
    if (len_text.empty()) {
        return make_error("prefix '" + std::string(text) + "' has no length after '/'");
    }
    if (!std::all_of(len_text.begin(), len_text.end(), is_digit)) {
        return make_error("prefix length '" + std::string(len_text) + "' is not a number");
    }
    uint64_t len = 0;
    if (!parse_decimal(len_text, 3, &len) || len > max_length(address->family())) {
        return make_error("prefix length " + std::string(len_text) + " is too long for " +
                          family_name(address->family()));
    }
    return ip_prefix(*address, static_cast<uint8_t>(len));
}

ip_prefix ip_prefix::masked() const noexcept {
    std::array<uint8_t, 16> b{};
    const auto src = _address.bytes();
    std::copy(src.begin(), src.end(), b.begin());
    for (size_t i = 0; i < src.size(); ++i) {
        const size_t bit = i * 8;
        if (bit >= _length) {
            b[i] = 0;
        } else if (bit + 8 > _length) {
            b[i] &= static_cast<uint8_t>(0xff << (8 - (_length - bit)));
        }
    }
    return ip_prefix(ip_address::from_bytes(std::span<const uint8_t>(b.data(), src.size())), _length);
}

bool ip_prefix::contains(const ip_address& addr) const noexcept {
    if (addr.family() != _address.family()) {
        return false;
    }
    return ip_prefix(addr, _length).masked()._address == masked()._address;
}

std::string ip_prefix::to_string() const {
    return _address.to_string() + "/" + std::to_string(_length);
}

result<endpoint> endpoint::parse(std::string_view text) {
    const std::string quoted = "endpoint '" + std::string(text) + "'";
    if (text.empty()) {
        return make_error("endpoint is empty");
    }
    std::string_view addr_text;
    std::string_view rest; // ":port", or empty
    if (text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string_view::npos) {
            return make_error(quoted + " is missing ']'");
        }
        addr_text = text.substr(1, close - 1);
        rest = text.substr(close + 1);
        if (addr_text.find(':') == std::string_view::npos) {
            return make_error(quoted + ": brackets are only for IPv6 addresses");
        }
    } else {
        const size_t colon = text.find(':');
        if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos) {
            return make_error("IPv6 " + quoted + " must be written as [address]:port");
        }
        addr_text = text.substr(0, colon == std::string_view::npos ? text.size() : colon);
        rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon);
    }
    if (rest.empty() || rest == ":") {
        return make_error(quoted + " needs a port (e.g. " +
                          (text.front() == '[' ? "[2001:db8::1]:51820" : "192.0.2.1:51820") + ")");
    }
    if (rest.front() != ':') {
        return make_error(quoted + ": expected ':' and a port after ']'");
    }
    const std::string_view port_text = rest.substr(1);
    if (!std::all_of(port_text.begin(), port_text.end(), is_digit)) {
        return make_error(quoted + ": port '" + std::string(port_text) + "' is not a number");
    }
    uint64_t port = 0;
    if (!parse_decimal(port_text, 5, &port) || port == 0 || port > 65535) {
        return make_error("port " + std::string(port_text) + " out of range 1-65535");
    }
    auto address = ip_address::parse(addr_text);
    if (!address) {
        return make_error(quoted + ": " + address.error_message());
    }
    return endpoint(*address, static_cast<uint16_t>(port));
}

std::string endpoint::to_string() const {
    if (_address.is_v4()) {
        return _address.to_string() + ":" + std::to_string(_port);
    }
    return "[" + _address.to_string() + "]:" + std::to_string(_port);
}

socklen_t endpoint::to_sockaddr(sockaddr_storage& out) const noexcept {
    std::memset(&out, 0, sizeof(out));
    const auto b = _address.bytes();
    if (_address.is_v4()) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(_port);
        std::memcpy(&sin.sin_addr, b.data(), 4);
        std::memcpy(&out, &sin, sizeof(sin));
        return sizeof(sin);
    }
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(_port);
    std::memcpy(&sin6.sin6_addr, b.data(), 16);
    std::memcpy(&out, &sin6, sizeof(sin6));
    return sizeof(sin6);
}

std::optional<endpoint> endpoint::from_sockaddr(const sockaddr* addr, socklen_t len) noexcept {
    if (addr == nullptr || len < static_cast<socklen_t>(sizeof(sa_family_t))) {
        return std::nullopt;
    }
    // memcpy rather than casts: the caller's buffer need not be aligned for sockaddr_in6.
    sa_family_t family = 0;
    std::memcpy(&family, reinterpret_cast<const char*>(addr) + offsetof(sockaddr, sa_family), sizeof(family));
    if (family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
        sockaddr_in sin{};
        std::memcpy(&sin, addr, sizeof(sin));
        return endpoint(ip_address::from_bytes(std::span<const uint8_t>(
                            reinterpret_cast<const uint8_t*>(&sin.sin_addr), 4)),
                        ntohs(sin.sin_port));
    }
    if (family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
        sockaddr_in6 sin6{};
        std::memcpy(&sin6, addr, sizeof(sin6));
        return endpoint(ip_address::from_bytes(std::span<const uint8_t>(
                            reinterpret_cast<const uint8_t*>(&sin6.sin6_addr), 16)),
                        ntohs(sin6.sin6_port));
    }
    return std::nullopt;
}

} // namespace meshfwd

std::size_t std::hash<meshfwd::ip_address>::operator()(const meshfwd::ip_address& a) const noexcept {
    const auto b = a.bytes();
    uint64_t hi = 0;
    uint64_t lo = 0;
    std::array<uint8_t, 16> full{};
    std::copy(b.begin(), b.end(), full.begin());
    std::memcpy(&hi, full.data(), 8);
    std::memcpy(&lo, full.data() + 8, 8);
    return static_cast<std::size_t>(
        meshfwd::splitmix64(hi ^ meshfwd::splitmix64(lo ^ (a.is_v6() ? 0x6ULL : 0x4ULL))));
}

std::size_t std::hash<meshfwd::ip_prefix>::operator()(const meshfwd::ip_prefix& p) const noexcept {
    return std::hash<meshfwd::ip_address>{}(p.address()) ^ meshfwd::splitmix64(p.length());
}

std::size_t std::hash<meshfwd::endpoint>::operator()(const meshfwd::endpoint& e) const noexcept {
    return std::hash<meshfwd::ip_address>{}(e.address()) ^ meshfwd::splitmix64(uint64_t{e.port()} + 0x10000);
}
