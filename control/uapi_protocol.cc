// The UAPI text protocol (see uapi_protocol.h). Pure functions; any thread.
#include "control/uapi_protocol.h"

#include <cerrno>
#include <limits>
#include <span>

namespace meshfwd::control::uapi {
namespace {

error fail(int code, std::size_t line, std::string_view key, std::string_view what) {
    std::string m = "line " + std::to_string(line) + ": ";
    if (!key.empty()) {
        m += std::string(key) + ": ";
    }
    m += what;
    return {code, std::move(m)};
}

// At most 40 characters of a value in a message: enough to recognise, never a flood.
std::string quoted(std::string_view v) {
    std::string s = "'";
    for (char c : v.substr(0, 40)) {
        s += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    return s + (v.size() > 40 ? "...'" : "'");
}

template <typename T>
std::optional<T> parse_unsigned(std::string_view v) noexcept {
    if (v.empty() || v.size() > 10) {
        return std::nullopt;
    }
    uint64_t n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    if (n > std::numeric_limits<T>::max()) {
        return std::nullopt;
    }
    return static_cast<T>(n);
}

int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::string key_to_hex(std::span<const uint8_t, 32> key) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s(64, '0');
    for (std::size_t i = 0; i < 32; ++i) {
        s[2 * i] = digits[key[i] >> 4];
        s[2 * i + 1] = digits[key[i] & 15];
    }
    return s;
}

std::optional<crypto::public_key> key_from_hex(std::string_view text) noexcept {
    if (text.size() != 64) {
        return std::nullopt;
    }
    crypto::public_key k{};
    for (std::size_t i = 0; i < 32; ++i) {
        const int hi = hex_digit(text[2 * i]);
        const int lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        k[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return k;
}

std::size_t request_end(std::string_view buffered) noexcept {
    if (!buffered.empty() && buffered.front() == '\n') {
        return 1;
    }
    const auto at = buffered.find("\n\n");
    return at == std::string_view::npos ? at : at + 2;
}

request parse_request(std::string_view text) {
    if (text.size() > max_request_bytes) {
        return error{EMSGSIZE, "request of " + std::to_string(text.size()) + " bytes; at most " +
                                   std::to_string(max_request_bytes) + " are read"};
    }
    std::size_t line_no = 0;
    std::size_t pos = 0;
    // The next line without its '\n'; nullopt at the end of the text (no '\n' left: truncated).
    const auto next_line = [&]() -> std::optional<std::string_view> {
        const auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) {
            return std::nullopt;
        }
        const std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        ++line_no;
        return line;
    };
    const auto truncated = [&] {
        return fail(EPROTO, line_no + 1, "", "the request ends before its empty line (truncated)");
    };

    const auto op = next_line();
    if (!op) {
        return truncated();
    }
    if (op->size() > max_line_bytes) {
        return fail(EMSGSIZE, line_no, "", "line longer than " + std::to_string(max_line_bytes) + " bytes");
    }
    if (*op == "get=1") {
        const auto end = next_line();
        if (!end) {
            return truncated();
        }
        if (!end->empty()) {
            return fail(EINVAL, line_no, "", "get=1 takes no keys; expected the empty line");
        }
        return get_request{};
    }
    if (*op != "set=1") {
        return fail(EPROTO, line_no, "", "unknown operation " + quoted(*op) + "; expected get=1 or set=1");
    }

    set_request req;
    peer_change* peer = nullptr;
    for (;;) {
        const auto line = next_line();
        if (!line) {
            return truncated();
        }
        if (line->empty()) {
            return req;
        }
        if (line->size() > max_line_bytes) {
            return fail(EMSGSIZE, line_no, "", "line longer than " + std::to_string(max_line_bytes) + " bytes");
        }
        const auto eq = line->find('=');
        if (eq == std::string_view::npos) {
            return fail(EPROTO, line_no, "", "not key=value: " + quoted(*line));
        }
        const std::string_view key = line->substr(0, eq);
        const std::string_view value = line->substr(eq + 1);
        const auto bad = [&](std::string_view what) { return fail(EINVAL, line_no, key, quoted(value) + " " + std::string(what)); };
        const auto need_true = [&](bool& flag) -> std::optional<error> {
            if (value != "true") {
                return bad("is not 'true' (the only value it takes)");
            }
            flag = true;
            return std::nullopt;
        };

        if (key == "public_key") {
            const auto k = key_from_hex(value);
            if (!k) {
                return bad("is not a key (64 hex digits)");
            }
            peer = &req.peers.emplace_back();
            peer->public_key = *k;
            continue;
        }
        if (peer == nullptr) {
            if (key == "private_key") {
                const auto k = key_from_hex(value);
                if (!k) {
                    return bad("is not a key (64 hex digits)");
                }
                req.private_key.emplace(std::span<const uint8_t, 32>(*k));
            } else if (key == "listen_port") {
                const auto p = parse_unsigned<uint16_t>(value);
                if (!p) {
                    return bad("is not a port (0..65535)");
                }
                req.listen_port = *p;
            } else if (key == "fwmark") {
                // wg sends "fwmark=" to clear it, as 0 does.
                const auto m = value.empty() ? std::optional<uint32_t>(0) : parse_unsigned<uint32_t>(value);
                if (!m) {
                    return bad("is not a mark (0..4294967295)");
                }
                req.fwmark = *m;
            } else if (key == "replace_peers") {
                if (auto e = need_true(req.replace_peers)) {
                    return *e;
                }
            } else {
                return fail(EINVAL, line_no, key, "unknown device key");
            }
            continue;
        }
        if (key == "remove") {
            if (auto e = need_true(peer->remove)) {
                return *e;
            }
        } else if (key == "update_only") {
            if (auto e = need_true(peer->update_only)) {
                return *e;
            }
        } else if (key == "preshared_key") {
            const auto k = key_from_hex(value);
            if (!k) {
                return bad("is not a key (64 hex digits)");
            }
            peer->preshared_key.emplace(std::span<const uint8_t, 32>(*k));
        } else if (key == "endpoint") {
            auto e = endpoint::parse(value);
            if (!e) {
                return bad("is not an endpoint (IPv4:port or [IPv6]:port): " + e.error_message());
            }
            peer->endpoint_address = *e;
        } else if (key == "persistent_keepalive_interval") {
            const auto s = parse_unsigned<uint16_t>(value);
            if (!s) {
                return bad("is not a number of seconds (0..65535)");
            }
            peer->persistent_keepalive = *s;
        } else if (key == "replace_allowed_ips") {
            if (auto e = need_true(peer->replace_allowed_ips)) {
                return *e;
            }
        } else if (key == "allowed_ip") {
            auto p = ip_prefix::parse(value);
            if (!p) {
                return bad("is not a CIDR (address/length): " + p.error_message());
            }
            peer->allowed_ips.push_back(p->masked());
        } else if (key == "protocol_version") {
            if (value != "1") {
                return bad("is not a protocol version this implements (1)");
            }
        } else if (key == "private_key" || key == "listen_port" || key == "fwmark" || key == "replace_peers") {
            return fail(EINVAL, line_no, key, "a device key after the first public_key");
        } else {
            return fail(EINVAL, line_no, key, "unknown peer key");
        }
    }
}

std::string format_errno(int code) { return "errno=" + std::to_string(code) + "\n\n"; }

std::string format_get(const device_view& d) {
    std::string out;
    std::size_t ips = 0;
    for (const auto& p : d.peers) {
        ips += p.allowed_ips.size();
    }
    out.reserve(256 + d.peers.size() * 400 + ips * 48);
    const auto line = [&](std::string_view k, std::string_view v) {
        out += k;
        out += '=';
        out += v;
        out += '\n';
    };
    if (d.private_key) {
        line("private_key", key_to_hex(*d.private_key));
    }
    if (d.listen_port != 0) {
        line("listen_port", std::to_string(d.listen_port));
    }
    if (d.fwmark != 0) {
        line("fwmark", std::to_string(d.fwmark));
    }
    for (const auto& p : d.peers) {
        line("public_key", key_to_hex(p.public_key));
        line("preshared_key", key_to_hex(p.preshared_key));
        line("protocol_version", "1");
        if (p.endpoint_address) {
            line("endpoint", p.endpoint_address->to_string());
        }
        line("last_handshake_time_sec", std::to_string(p.last_handshake_sec));
        line("last_handshake_time_nsec", std::to_string(p.last_handshake_nsec));
        line("tx_bytes", std::to_string(p.tx_bytes));
        line("rx_bytes", std::to_string(p.rx_bytes));
        line("persistent_keepalive_interval", std::to_string(p.persistent_keepalive));
        for (const auto& a : p.allowed_ips) {
            line("allowed_ip", a.to_string());
        }
    }
    out += "errno=0\n\n";
    return out;
}

}  // namespace meshfwd::control::uapi
