// Scalar parsers for the config loader. Pure functions; any thread.
#include "control/config_values.h"

#include "lib/ip_address.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace meshfwd::control {

namespace {

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
bool is_alnum(char c) { return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

int hex_value(char c) {
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// RFC 1123 host name, or a dotted IPv4 literal (which has the same shape).
bool valid_host_name(std::string_view host) {
    if (host.empty() || host.size() > 253) {
        return false;
    }
    size_t start = 0;
    while (start <= host.size()) {
        const size_t dot = std::min(host.find('.', start), host.size());
        const std::string_view label = host.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        if (!std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; })) {
            return false;
        }
        start = dot + 1;
    }
    return true;
}

result<uint16_t> parse_port(std::string_view text) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !is_digit(text.front())) {
        return make_error("port " + quote(text) + " is not a number");
    }
    if (value < 1 || value > 65535) {
        return make_error("port " + std::to_string(value) + " is out of range 1..65535");
    }
    return static_cast<uint16_t>(value);
}

} // namespace

result<std::string> expand_env(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c != '$' || i + 1 >= text.size()) {
            out.push_back(c);
            continue;
        }
        if (text[i + 1] == '$') {
            out.push_back('$');
            ++i;
            continue;
        }
        if (text[i + 1] != '{') {
            out.push_back(c);
            continue;
        }
        const size_t close = text.find('}', i + 2);
        if (close == std::string_view::npos) {
            return make_error("unterminated ${ in " + quote(text) + " (write $$ for a literal $)");
        }
        const std::string name(text.substr(i + 2, close - i - 2));
        if (name.empty() || !is_name_start(name.front()) ||
            !std::all_of(name.begin(), name.end(), [](char ch) { return is_name_char(ch); })) {
            return make_error("${" + name + "} is not a valid variable reference (only ${NAME} with NAME of "
                              "letters, digits and _ is supported; write $$ for a literal $)");
        }
        const char* value = std::getenv(name.c_str());
        if (value == nullptr) {
            return make_error("environment variable " + name + " is not set");
        }
        out += value;
        i = close;
    }
    return out;
}

result<host_port> parse_host_port(std::string_view text, std::optional<uint16_t> default_port) {
    std::string_view host;
    std::string_view port_text;
    bool has_port = false;
    if (!text.empty() && text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string_view::npos) {
            return make_error(quote(text) + " has '[' without ']'");
        }
        host = text.substr(1, close - 1);
        const std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                return make_error(quote(text) + ": expected ':port' after ']'");
            }
            port_text = rest.substr(1);
            has_port = true;
        }
        auto addr = ip_address::parse(host);
        if (!addr) {
            return make_error(quote(text) + ": " + addr.error_message());
        }
    } else {
        const size_t colon = text.rfind(':');
        if (colon != std::string_view::npos && text.find(':') != colon) {
            return make_error(quote(text) + ": write an IPv6 address in brackets, e.g. [2001:db8::1]:3478");
        }
        host = text.substr(0, colon);
        if (colon != std::string_view::npos) {
            port_text = text.substr(colon + 1);
            has_port = true;
        }
        if (!valid_host_name(host)) {
            return make_error(quote(text) + ": " + quote(host) + " is not a valid host name or address");
        }
    }
    host_port out;
    out.host = std::string(host);
    if (has_port) {
        auto port = parse_port(port_text);
        if (!port) {
            return make_error(quote(text) + ": " + port.error_message());
        }
        out.port = *port;
    } else if (default_port) {
        out.port = *default_port;
    } else {
        return make_error(quote(text) + " has no port; expected host:port");
    }
    return out;
}

result<stun_server> parse_stun_url(std::string_view text) {
    stun_server out;
    std::string_view rest;
    if (text.starts_with("stuns:")) {
        out.secure = true;
        rest = text.substr(6);
    } else if (text.starts_with("stun:")) {
        rest = text.substr(5);
    } else {
        return make_error(quote(text) + " is not a STUN URL; expected stun:host[:port] or stuns:host[:port]");
    }
    auto address = parse_host_port(rest, out.secure ? uint16_t{5349} : uint16_t{3478});
    if (!address) {
        return make_error(address.error_message());
    }
    out.address = std::move(*address);
    return out;
}

result<coord_server> parse_coord_server(std::string_view text) {
    coord_server out;
    std::string_view rest = text;
    std::optional<uint16_t> default_port;
    if (rest.starts_with("https://")) {
        out.tls = true;
        rest.remove_prefix(8);
        default_port = 443;
    } else if (rest.starts_with("http://")) {
        rest.remove_prefix(7);
        default_port = 80;
    } else if (rest.find("://") != std::string_view::npos) {
        return make_error(quote(text) + ": only http:// and https:// servers are supported");
    }
    if (default_port && rest.ends_with('/')) {
        rest.remove_suffix(1);
    }
    if (rest.find('/') != std::string_view::npos) {
        return make_error(quote(text) + ": give the server as http(s)://host:port, without a path");
    }
    auto address = parse_host_port(rest, default_port);
    if (!address) {
        return make_error(address.error_message());
    }
    if (address->port == 0) {
        return make_error(quote(text) + ": port 0 is not a server port");
    }
    out.address = std::move(*address);
    return out;
}

result<turn_server> parse_turn_url(std::string_view text) {
    turn_server out;
    std::string_view rest;
    if (text.starts_with("turns:")) {
        out.secure = true;
        // TURN over TLS runs on TCP (RFC 7065).
        out.transport = turn_transport::tcp;
        rest = text.substr(6);
    } else if (text.starts_with("turn:")) {
        rest = text.substr(5);
    } else {
        return make_error(quote(text) +
                          " is not a TURN URL; expected turn:host[:port][?transport=udp|tcp] or turns:...");
    }
    const size_t query = rest.find('?');
    if (query != std::string_view::npos) {
        const std::string_view q = rest.substr(query + 1);
        if (q == "transport=udp" && !out.secure) {
            out.transport = turn_transport::udp;
        } else if (q == "transport=tcp") {
            out.transport = turn_transport::tcp;
        } else {
            return make_error(quote(text) + ": unknown query " + quote(q) +
                              "; only ?transport=udp or ?transport=tcp (tcp only for turns:)");
        }
        rest = rest.substr(0, query);
    }
    auto address = parse_host_port(rest, out.secure ? uint16_t{5349} : uint16_t{3478});
    if (!address) {
        return make_error(address.error_message());
    }
    out.address = std::move(*address);
    return out;
}

result<std::array<uint8_t, 6>> parse_mac_address(std::string_view text) {
    std::array<uint8_t, 6> mac{};
    const auto bad = [&] {
        return make_error(quote(text) + " is not a MAC address; expected six hex octets like 02:00:5e:10:00:01");
    };
    if (text.size() != 17) {
        return bad();
    }
    for (size_t i = 0; i < 6; ++i) {
        const int hi = hex_value(text[i * 3]);
        const int lo = hex_value(text[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && text[i * 3 + 2] != ':')) {
            return bad();
        }
        mac[i] = static_cast<uint8_t>(hi * 16 + lo);
    }
    if ((mac[0] & 0x01) != 0) {
        return make_error(quote(text) +
                          " is a multicast address (lowest bit of the first octet set); a TAP device needs a "
                          "unicast one, e.g. with first octet 02 (locally administered)");
    }
    return mac;
}

result<void> check_identifier(std::string_view text, size_t max_len) {
    if (text.empty()) {
        return make_error("must not be empty");
    }
    if (text.size() > max_len) {
        return make_error(quote(text) + " is longer than " + std::to_string(max_len) + " characters");
    }
    if (!std::all_of(text.begin(), text.end(), [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; })) {
        return make_error(quote(text) + " may only hold letters, digits, '.', '_' and '-'");
    }
    return {};
}

result<void> check_interface_name(std::string_view text) {
    if (text.empty() || text.size() > 15) {
        return make_error(quote(text) + " is not a valid interface name: Linux allows 1 to 15 bytes (IFNAMSIZ)");
    }
    if (text == "." || text == ".." ||
        std::any_of(text.begin(), text.end(),
                    [](char c) { return c == '/' || c == ':' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f; })) {
        return make_error(quote(text) + " is not a valid interface name (no '/', ':', blanks, '.' or '..')");
    }
    return {};
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::optional<std::string_view> closest_name(std::string_view word, std::span<const std::string_view> candidates) {
    // Long garbage keys are not typos; comparing them would also cost O(n*m) for nothing.
    if (word.size() > 64) {
        return std::nullopt;
    }
    std::optional<std::string_view> best;
    size_t best_distance = 0;
    for (const auto candidate : candidates) {
        const size_t d = edit_distance(word, candidate);
        if (!best || d < best_distance) {
            best = candidate;
            best_distance = d;
        }
    }
    // A third of the length (at least 1, at most 3) catches typos and swaps without proposing
    // unrelated words for short keys.
    const size_t limit = std::clamp<size_t>(word.size() / 3, 1, 3);
    if (best && best_distance <= limit) {
        return best;
    }
    return std::nullopt;
}

std::string quote(std::string_view text) {
    constexpr size_t max_shown = 60;
    std::string out = "'";
    for (size_t i = 0; i < text.size() && i < max_shown; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c >= 0x7f || c == '\'' || c == '\\') {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\x%02x", c);
            out += esc;
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    if (text.size() > max_shown) {
        out += "...";
    }
    out += "'";
    return out;
}

result<port_range> parse_port_range(std::string_view text) {
    const auto bad = [&] {
        return make_error(quote(text) + " is not a port range; write first-last, e.g. 52000-52063");
    };
    const auto number = [](std::string_view t) -> std::optional<uint32_t> {
        uint32_t v = 0;
        const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (t.empty() || ec != std::errc() || ptr != t.data() + t.size()) {
            return std::nullopt;
        }
        return v;
    };
    const size_t dash = text.find('-');
    const auto first = number(text.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : number(text.substr(dash + 1));
    if (!first || !last) {
        return bad();
    }
    if (*first < 1 || *first > 65535 || *last < 1 || *last > 65535) {
        return make_error(quote(text) + ": ports are 1..65535");
    }
    if (*first > *last) {
        return make_error(quote(text) + ": the first port is above the last");
    }
    return port_range{static_cast<uint16_t>(*first), static_cast<uint16_t>(*last), {}};
}

} // namespace meshfwd::control
