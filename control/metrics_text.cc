// Prometheus text exposition built from the /v1/status and /v1/peers JSON. Any thread; see
// metrics_text.h. Every lookup checks the JSON type first (nlohmann's accessors throw or assert on
// a mismatch), so arbitrary input gives some text, never an exception.
#include "control/metrics_text.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>

namespace meshfwd::control {
namespace {

using json = nlohmann::json;

const json* member(const json* obj, std::string_view key) {
    if (obj == nullptr || !obj->is_object()) {
        return nullptr;
    }
    const auto it = obj->find(key);
    return it == obj->end() ? nullptr : &*it;
}

// Counters are non-negative integers; the control thread may build them as signed or unsigned.
std::optional<uint64_t> counter(const json* v) {
    if (v == nullptr) {
        return std::nullopt;
    }
    if (v->is_number_unsigned()) {
        return v->get<uint64_t>();
    }
    if (v->is_number_integer() && v->get<int64_t>() >= 0) {
        return static_cast<uint64_t>(v->get<int64_t>());
    }
    return std::nullopt;
}

std::optional<double> number(const json* v) {
    if (v == nullptr || !v->is_number()) {
        return std::nullopt;
    }
    return v->get<double>();
}

const std::string* string_member(const json* obj, std::string_view key) {
    const json* v = member(obj, key);
    return v != nullptr && v->is_string() ? v->get_ptr<const std::string*>() : nullptr;
}

// Shortest text that reads back as the same double; the format's spellings for the specials.
std::string format_double(double v) {
    if (std::isnan(v)) {
        return "NaN";
    }
    if (std::isinf(v)) {
        return v > 0 ? "+Inf" : "-Inf";
    }
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v);
    return std::string(buf, r.ptr);
}

// One metric family: the header lines, then samples appended by the caller.
class family {
public:
    family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
        : _out(out), _name(name) {
        _out.append("# HELP ").append(name).append(" ").append(help).append("\n");
        _out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    }

    // labels: alternating name, value; values are escaped here.
    void sample(std::initializer_list<std::string_view> labels, std::string_view value) {
        _out.append(_name);
        if (labels.size() >= 2) {
            _out.push_back('{');
            bool first = true;
            for (auto it = labels.begin(); it + 1 < labels.end(); it += 2) {
                if (!first) {
                    _out.push_back(',');
                }
                first = false;
                _out.append(*it).append("=\"").append(prometheus_escape_label(*(it + 1))).append("\"");
            }
            _out.push_back('}');
        }
        _out.append(" ").append(value).append("\n");
    }

private:
    std::string& _out;
    std::string_view _name;
};

void worker_counters(std::string& out, const json* workers) {
    struct spec {
        std::string_view key, name, help;
    };
    static constexpr spec specs[] = {
        {"rx_packets", "meshfwd_rx_packets_total", "Packets received from the underlay and decrypted, per worker."},
        {"rx_bytes", "meshfwd_rx_bytes_total", "WireGuard message bytes received and decrypted, per worker."},
        {"tx_packets", "meshfwd_tx_packets_total", "Packets encrypted and sent to the underlay, per worker."},
        {"tx_bytes", "meshfwd_tx_bytes_total", "WireGuard message bytes encrypted and sent, per worker."},
        {"stale_source_resends", "meshfwd_stale_source_resends_total",
         "Datagrams whose sticky source address was gone (removed), sent again from the route's source, per worker."},
    };
    for (const auto& s : specs) {
        family f(out, s.name, "counter", s.help);
        if (workers == nullptr || !workers->is_array()) {
            continue;
        }
        for (const auto& w : *workers) {
            const auto id = counter(member(&w, "id"));
            const auto v = counter(member(&w, s.key));
            if (id && v) {
                f.sample({"worker", std::to_string(*id)}, std::to_string(*v));
            }
        }
    }

    family drops(out, "meshfwd_drops_total", "counter", "Packets dropped, per worker and reason.");
    if (workers == nullptr || !workers->is_array()) {
        return;
    }
    for (const auto& w : *workers) {
        const auto id = counter(member(&w, "id"));
        const json* reasons = member(&w, "drops");
        if (!id || reasons == nullptr || !reasons->is_object()) {
            continue;
        }
        const std::string worker = std::to_string(*id);
        for (const auto& [reason, n] : reasons->items()) {
            if (const auto v = counter(&n)) {
                drops.sample({"worker", worker, "reason", reason}, std::to_string(*v));
            }
        }
    }
}

void handshake_counters(std::string& out, const json* handshakes) {
    {
        family f(out, "meshfwd_handshakes_total", "counter", "Handshake messages and sessions, by kind.");
        if (handshakes != nullptr && handshakes->is_object()) {
            for (const auto& [kind, n] : handshakes->items()) {
                if (const auto v = counter(&n)) {
                    f.sample({"kind", kind}, std::to_string(*v));
                }
            }
        }
    }
    family f(out, "meshfwd_handshake_rejections_total", "counter", "Handshake messages rejected, by reason.");
    const json* rejected = member(handshakes, "rejected");
    if (rejected != nullptr && rejected->is_object()) {
        for (const auto& [reason, n] : rejected->items()) {
            if (const auto v = counter(&n)) {
                f.sample({"reason", reason}, std::to_string(*v));
            }
        }
    }
}

void peer_metrics(std::string& out, const json* peer_list) {
    struct spec {
        std::string_view key, name, type, help;
    };
    static constexpr spec specs[] = {
        {"rx_bytes", "meshfwd_peer_rx_bytes_total", "counter", "WireGuard message bytes received from the peer."},
        {"tx_bytes", "meshfwd_peer_tx_bytes_total", "counter", "WireGuard message bytes sent to the peer."},
        {"latest_handshake_unix", "meshfwd_peer_latest_handshake_timestamp_seconds", "gauge",
         "Unix time of the peer's latest completed handshake; 0 = never."},
    };
    for (const auto& s : specs) {
        family f(out, s.name, s.type, s.help);
        if (peer_list == nullptr || !peer_list->is_array()) {
            continue;
        }
        for (const auto& p : *peer_list) {
            const std::string* key = string_member(&p, "public_key");
            const std::string* name = string_member(&p, "name");
            const auto v = counter(member(&p, s.key));
            if (key != nullptr && v) {
                if (name != nullptr) {
                    f.sample({"public_key", *key, "name", *name}, std::to_string(*v));
                } else {
                    f.sample({"public_key", *key}, std::to_string(*v));
                }
            }
        }
    }
}

} // namespace

std::string prometheus_escape_label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        switch (c) {
        case '\\':
            out.append("\\\\");
            break;
        case '"':
            out.append("\\\"");
            break;
        case '\n':
            out.append("\\n");
            break;
        default:
            out.push_back(c);
        }
    }
    return out;
}

std::string prometheus_text(const json& status, const json& peers) {
    std::string out;
    out.reserve(4096);
    {
        const json* node = member(&status, "node");
        const std::string* version = string_member(node, "version");
        const std::string* crypto = string_member(node, "crypto");
        family f(out, "meshfwd_build_info", "gauge", "Always 1; the labels name meshfwd's version and AEAD backend.");
        if (version != nullptr && crypto != nullptr) {
            f.sample({"version", *version, "crypto", *crypto}, "1");
        }
    }
    worker_counters(out, member(&status, "workers"));
    handshake_counters(out, member(&status, "handshakes"));
    const json* peer_list = member(&peers, "peers");
    peer_metrics(out, peer_list);

    {
        family f(out, "meshfwd_peers", "gauge", "Configured and discovered peers.");
        if (const auto n = counter(member(&status, "peers"))) {
            f.sample({}, std::to_string(*n));
        } else if (peer_list != nullptr && peer_list->is_array()) {
            f.sample({}, std::to_string(peer_list->size()));
        }
    }
    family f(out, "meshfwd_uptime_seconds", "gauge", "Seconds since meshfwd started.");
    if (const auto up = number(member(member(&status, "node"), "uptime_seconds"))) {
        f.sample({}, format_double(*up));
    }
    return out;
}

} // namespace meshfwd::control
