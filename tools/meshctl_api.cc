// `meshctl status` / `meshctl peers`: the API client and the wg-style formatting. Main thread.
// Every JSON access goes through `fields`, which checks the type first and records the first
// problem by path, so malformed input ends as one error message (see meshctl_api.h).
#include "tools/meshctl_api.h"

#include "control/config_yaml.h"

#include <httplib.h>

#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <vector>

namespace meshfwd::meshctl {
namespace {

using json = nlohmann::json;

constexpr const char* default_api = "127.0.0.1:7082";

// Typed, path-named access to untrusted JSON. After the first failure every accessor returns an
// empty default, so callers read straight through and check ok() once at the end.
class fields {
public:
    bool ok() const noexcept { return _error.empty(); }
    const std::string& error() const noexcept { return _error; }

    const json& object(const json& parent, const std::string& path, std::string_view key) {
        const json* v = find(parent, path, key);
        if (v != nullptr && !v->is_object()) {
            fail(join(path, key), "not an object");
            v = nullptr;
        }
        return v != nullptr ? *v : empty_object();
    }
    const json& array(const json& parent, const std::string& path, std::string_view key) {
        const json* v = find(parent, path, key);
        if (v != nullptr && !v->is_array()) {
            fail(join(path, key), "not an array");
            v = nullptr;
        }
        return v != nullptr ? *v : empty_array();
    }
    std::string str(const json& parent, const std::string& path, std::string_view key) {
        const json* v = find(parent, path, key);
        if (v != nullptr && !v->is_string()) {
            fail(join(path, key), "not a string");
            return {};
        }
        return v != nullptr ? v->get<std::string>() : std::string();
    }
    // A string or null (null gives "").
    std::string str_or_null(const json& parent, const std::string& path, std::string_view key) {
        const json* v = find(parent, path, key);
        if (v != nullptr && v->is_null()) {
            return {};
        }
        if (v != nullptr && !v->is_string()) {
            fail(join(path, key), "not a string or null");
            return {};
        }
        return v != nullptr ? v->get<std::string>() : std::string();
    }
    bool boolean(const json& parent, const std::string& path, std::string_view key) {
        const json* v = find(parent, path, key);
        if (v != nullptr && !v->is_boolean()) {
            fail(join(path, key), "not true or false");
            return false;
        }
        return v != nullptr && v->get<bool>();
    }
    double number(const json& parent, const std::string& path, std::string_view key) {
        const json* v = find(parent, path, key);
        if (v != nullptr && !v->is_number()) {
            fail(join(path, key), "not a number");
            return 0;
        }
        return v != nullptr ? v->get<double>() : 0;
    }
    uint64_t count(const json& parent, const std::string& path, std::string_view key) {
        const json* v = find(parent, path, key);
        return v != nullptr ? count_value(*v, join(path, key)) : 0;
    }
    uint64_t count_value(const json& v, const std::string& path) {
        if (v.is_number_unsigned()) {
            return v.get<uint64_t>();
        }
        if (v.is_number_integer() && v.get<int64_t>() >= 0) {
            return static_cast<uint64_t>(v.get<int64_t>());
        }
        fail(path, "not a non-negative integer");
        return 0;
    }
    // A top-level document must be an object.
    bool document(const json& doc, std::string_view what) {
        if (!doc.is_object()) {
            fail(std::string(what), "not a JSON object");
        }
        return ok();
    }

    static std::string join(const std::string& path, std::string_view key) {
        return path.empty() ? std::string(key) : path + "." + std::string(key);
    }
    static std::string index(std::string_view path, size_t i) {
        return std::string(path) + "[" + std::to_string(i) + "]";
    }

private:
    const json* find(const json& parent, const std::string& path, std::string_view key) {
        if (!ok()) {
            return nullptr;
        }
        if (!parent.is_object()) {
            fail(path, "not an object");
            return nullptr;
        }
        const auto it = parent.find(key);
        if (it == parent.end()) {
            fail(join(path, key), "missing");
            return nullptr;
        }
        return &*it;
    }
    void fail(const std::string& path, std::string_view what) {
        if (ok()) {
            _error = path + ": " + std::string(what);
        }
    }
    static const json& empty_object() {
        static const json v = json::object();
        return v;
    }
    static const json& empty_array() {
        static const json v = json::array();
        return v;
    }

    std::string _error;
};

std::string plural(uint64_t n, std::string_view unit) {
    return std::to_string(n) + " " + std::string(unit) + (n == 1 ? "" : "s");
}

// "no_route 3, replay 1" for the non-zero entries of a reason -> count object; "" when none.
std::string nonzero_reasons(fields& f, const json& reasons, const std::string& path) {
    std::string out;
    for (const auto& [reason, n] : reasons.items()) {
        const uint64_t v = f.count_value(n, fields::join(path, reason));
        if (v != 0) {
            out += (out.empty() ? "" : ", ") + reason + " " + std::to_string(v);
        }
    }
    return out;
}

std::string traffic(uint64_t rx_packets, uint64_t rx_bytes, uint64_t tx_packets, uint64_t tx_bytes) {
    return "rx " + plural(rx_packets, "packet") + " (" + format_bytes(rx_bytes) + "), tx " + plural(tx_packets, "packet") +
           " (" + format_bytes(tx_bytes) + ")";
}

std::string on_off(bool v) { return v ? "on" : "off"; }

// Numbers of a JSON array joined by `sep` ("40001 40002", "0,1").
std::string count_list(fields& f, const json& list, const std::string& path, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < list.size(); ++i) {
        out += (i == 0 ? "" : std::string(sep)) + std::to_string(f.count_value(list[i], fields::index(path, i)));
    }
    return out;
}

std::string api_unreachable(const endpoint& api) {
    return "cannot reach meshfwd's API at " + api.to_string() + " (is meshfwd running? is api.listen different?)";
}

// The API's {"error": "..."} text when there is one, else the start of the body.
std::string error_text(const std::string& body) {
    const json j = json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) {
        return j["error"].get<std::string>();
    }
    return body.substr(0, 200);
}

int fetch_and_print(const api_options& opts, std::string_view path,
                    result<std::string> (*format)(const json&, int64_t now_unix)) {
    const auto api = resolve_api(opts);
    if (!api) {
        std::fprintf(stderr, "meshctl: %s\n", api.error_message().c_str());
        return 2;
    }
    const auto doc = fetch_json(*api, path);
    if (!doc) {
        std::fprintf(stderr, "meshctl: %s\n", doc.error_message().c_str());
        return 1;
    }
    if (opts.json) {
        std::printf("%s\n", doc->dump(2, ' ', false, json::error_handler_t::replace).c_str());
        return 0;
    }
    const auto text = format(*doc, static_cast<int64_t>(std::time(nullptr)));
    if (!text) {
        std::fprintf(stderr, "meshctl: unexpected answer from meshfwd's API at %s%.*s: %s\n", api->to_string().c_str(),
                     static_cast<int>(path.size()), path.data(), text.error_message().c_str());
        return 1;
    }
    std::fputs(text->c_str(), stdout);
    return 0;
}

} // namespace

void add_api_options(CLI::App& cmd, api_options& opts) {
    auto* api = cmd.add_option("--api", opts.api, std::string("meshfwd's API address, HOST:PORT (default ") + default_api + ")");
    auto* cfg = cmd.add_option("-c,--config", opts.config_file, "take the API address from api.listen in this mesh.yaml");
    api->excludes(cfg);
    cmd.add_flag("--json", opts.json, "print the API's JSON as is (pretty-printed)");
}

result<endpoint> resolve_api(const api_options& opts) {
    if (!opts.config_file.empty()) {
        auto cfg = control::load_config(opts.config_file, control::load_options{});
        if (!cfg) {
            return make_error("cannot take api.listen from " + opts.config_file + ":\n" + cfg.error_message());
        }
        return cfg->api.listen;
    }
    const std::string text = opts.api.empty() ? default_api : opts.api;
    auto ep = endpoint::parse(text);
    if (!ep) {
        return make_error("--api " + text + ": " + ep.error_message() + " (want IP:PORT, e.g. " + default_api + ")");
    }
    return *ep;
}

result<json> fetch_json(const endpoint& api, std::string_view path) {
    httplib::Client cli(api.address().to_string(), api.port());
    cli.set_connection_timeout(2, 0);
    // The server answers within ~2 s (its wait for the control thread) unless something is wrong.
    cli.set_read_timeout(5, 0);
    cli.set_write_timeout(2, 0);
    const auto res = cli.Get(std::string(path));
    if (!res) {
        if (res.error() == httplib::Error::Connection) {
            return make_error(api_unreachable(api));
        }
        return make_error("meshfwd's API at " + api.to_string() + " did not answer " + std::string(path) + ": " +
                          httplib::to_string(res.error()));
    }
    if (res->status != 200) {
        return make_error("meshfwd's API at " + api.to_string() + " answered " + std::to_string(res->status) + " to " +
                          std::string(path) + ": " + error_text(res->body));
    }
    json doc = json::parse(res->body, nullptr, false);
    if (doc.is_discarded()) {
        return make_error("meshfwd's API at " + api.to_string() + " sent malformed JSON for " + std::string(path) +
                          " (is something else listening there?)");
    }
    return doc;
}

std::string format_bytes(uint64_t bytes) {
    constexpr uint64_t k = 1024;
    char buf[64];
    if (bytes < k) {
        std::snprintf(buf, sizeof(buf), "%" PRIu64 " B", bytes);
    } else if (bytes < k * k) {
        std::snprintf(buf, sizeof(buf), "%.2f KiB", static_cast<double>(bytes) / k);
    } else if (bytes < k * k * k) {
        std::snprintf(buf, sizeof(buf), "%.2f MiB", static_cast<double>(bytes) / (k * k));
    } else if (bytes < k * k * k * k) {
        std::snprintf(buf, sizeof(buf), "%.2f GiB", static_cast<double>(bytes) / (k * k * k));
    } else {
        std::snprintf(buf, sizeof(buf), "%.2f TiB", static_cast<double>(bytes) / (k * k * k * k));
    }
    return buf;
}

std::string format_duration_words(uint64_t seconds) {
    // wg's pretty_time: years of 365 days, then days, hours, minutes, seconds.
    constexpr uint64_t minute = 60, hour = 60 * minute, day = 24 * hour, year = 365 * day;
    const uint64_t parts[] = {seconds / year, seconds % year / day, seconds % day / hour, seconds % hour / minute,
                              seconds % minute};
    static constexpr std::string_view units[] = {"year", "day", "hour", "minute", "second"};
    std::string out;
    for (size_t i = 0; i < std::size(parts); ++i) {
        if (parts[i] != 0) {
            out += (out.empty() ? "" : ", ") + plural(parts[i], units[i]);
        }
    }
    return out.empty() ? "0 seconds" : out;
}

std::string format_handshake_age(int64_t handshake_unix, int64_t now_unix) {
    if (handshake_unix == 0) {
        return "never";
    }
    if (handshake_unix == now_unix) {
        return "Now";
    }
    if (handshake_unix > now_unix) {
        return "in the future (the system clock went backwards?)";
    }
    // Unsigned difference: no overflow even for extreme values from a malformed answer.
    return format_duration_words(static_cast<uint64_t>(now_unix) - static_cast<uint64_t>(handshake_unix)) + " ago";
}

// The `coordination` object of the status: what this node knows from meshcoord.
std::string format_coordination(fields& f, const json& c) {
    const std::string p = "coordination";
    if (!c.is_object()) {
        f.object(json{{"coordination", c}}, "", "coordination");  // records "not an object"
        return {};
    }
    std::string out = "meshcoord: " + f.str(c, p, "server") +
                      (f.boolean(c, p, "connected") ? " (connected)" : " (not connected)") + ", network " +
                      f.str(c, p, "network_id") + "\n";
    const std::string peer_id = f.str_or_null(c, p, "peer_id");
    const json& addresses = f.array(c, p, "addresses");
    std::string list;
    for (size_t i = 0; i < addresses.size(); ++i) {
        list += (i == 0 ? "" : ", ") + (addresses[i].is_string() ? addresses[i].get<std::string>() : std::string("?"));
    }
    out += "  registered: " +
           (f.boolean(c, p, "registered") ? "yes, as " + peer_id
                                          : peer_id.empty() ? std::string("no") : peer_id + ", pending approval") +
           (list.empty() ? "" : "; addresses " + list) + "\n";
    out += "  peers: " + std::to_string(f.count(c, p, "peers")) + " known, " + std::to_string(f.count(c, p, "peers_online")) +
           " online, version " + std::to_string(f.count(c, p, "version")) +
           (f.boolean(c, p, "from_cache") ? " (from the cache file)" : "") + "\n";
    if (const std::string error = f.str_or_null(c, p, "last_error"); !error.empty()) {
        out += "  last error: " + error + "\n";
    }
    return out;
}

result<std::string> format_status(const json& status) {
    fields f;
    if (!f.document(status, "status")) {
        return make_error(f.error());
    }
    std::string out;

    const json& node = f.object(status, "", "node");
    const json& lanes = f.array(node, "node", "lane_ports");
    const json& cores = f.array(node, "node", "cores");
    const json& offloads = f.object(node, "node", "offloads");
    out += "node " + f.str(node, "node", "name") + ": " + f.str(node, "node", "device") + " " +
           f.str(node, "node", "address") + ", mtu " + std::to_string(f.count(node, "node", "mtu")) + "\n";
    out += "  public key: " + f.str(node, "node", "public_key") + "\n";
    out += "  listening port: " + std::to_string(f.count(node, "node", "listen_port"));
    if (!lanes.empty()) {
        out += ", lane ports: " + count_list(f, lanes, "node.lane_ports", " ");
    }
    out += "\n";
    out += "  " + plural(f.count(node, "node", "workers"), "worker") + " on cores " +
           count_list(f, cores, "node.cores", ",") + ", crypto " + f.str(node, "node", "crypto") + ", poll " +
           f.str(node, "node", "poll") + "\n";
    out += "  offloads: tso " + on_off(f.boolean(offloads, "node.offloads", "tso")) + ", uso " +
           on_off(f.boolean(offloads, "node.offloads", "uso")) + ", udp_gso " +
           on_off(f.boolean(offloads, "node.offloads", "udp_gso")) + ", udp_gro " +
           on_off(f.boolean(offloads, "node.offloads", "udp_gro")) + "\n";
    const double uptime = f.number(node, "node", "uptime_seconds");
    // Clamp before converting: a double out of uint64_t's range is undefined behaviour to convert.
    const uint64_t up = uptime > 0 && uptime < 1e18 ? static_cast<uint64_t>(uptime) : 0;
    out += "  version " + f.str(node, "node", "version") + ", up " + format_duration_words(up) + ", " +
           plural(f.count(status, "", "peers"), "peer") + "\n";

    // Optional: null or absent without mesh.discovery.server (and from older nodes).
    if (const auto it = status.find("coordination"); it != status.end() && !it->is_null()) {
        out += format_coordination(f, *it);
    }

    out += "workers:\n";
    const json& workers = f.array(status, "", "workers");
    for (size_t i = 0; i < workers.size() && f.ok(); ++i) {
        const std::string p = fields::index("workers", i);
        const json& w = workers[i];
        const uint64_t id = f.count(w, p, "id");
        const uint64_t cpu = f.count(w, p, "cpu");
        out += "  worker " + std::to_string(id) + " (cpu " + std::to_string(cpu) + "): " +
               traffic(f.count(w, p, "rx_packets"), f.count(w, p, "rx_bytes"), f.count(w, p, "tx_packets"),
                       f.count(w, p, "tx_bytes"));
        const std::string drops = nonzero_reasons(f, f.object(w, p, "drops"), p + ".drops");
        out += (drops.empty() ? "" : "; drops: " + drops) + "\n";
    }
    const json& totals = f.object(status, "", "totals");
    out += "  total: " +
           traffic(f.count(totals, "totals", "rx_packets"), f.count(totals, "totals", "rx_bytes"),
                   f.count(totals, "totals", "tx_packets"), f.count(totals, "totals", "tx_bytes")) +
           "\n";
    const std::string drops = nonzero_reasons(f, f.object(totals, "totals", "drops"), "totals.drops");
    out += "drops: " + (drops.empty() ? std::string("none") : drops) + "\n";

    const json& hs = f.object(status, "", "handshakes");
    const auto pair = [&](std::string_view what, std::string_view sent, std::string_view received) {
        return std::string(what) + " " + std::to_string(f.count(hs, "handshakes", sent)) + " sent / " +
               std::to_string(f.count(hs, "handshakes", received)) + " received";
    };
    out += "handshakes: " + pair("initiations", "initiations_sent", "initiations_received") + ", " +
           pair("responses", "responses_sent", "responses_received") + ", " +
           pair("cookie replies", "cookie_replies_sent", "cookie_replies_received") + ", " +
           plural(f.count(hs, "handshakes", "sessions_established"), "session") + " established\n";
    const std::string rejected = nonzero_reasons(f, f.object(hs, "handshakes", "rejected"), "handshakes.rejected");
    if (!rejected.empty()) {
        out += "  rejected: " + rejected + "\n";
    }

    if (!f.ok()) {
        return make_error(f.error());
    }
    return out;
}

result<std::string> format_peers(const json& peers, int64_t now_unix) {
    fields f;
    if (!f.document(peers, "peers document")) {
        return make_error(f.error());
    }
    const json& list = f.array(peers, "", "peers");
    std::string out;
    for (size_t i = 0; i < list.size() && f.ok(); ++i) {
        const std::string p = fields::index("peers", i);
        const json& peer = list[i];
        if (i != 0) {
            out += "\n";
        }
        out += "peer: " + f.str(peer, p, "public_key") + "\n";
        // Optional (peers[].name; older nodes do not send it).
        if (const auto it = peer.find("name"); it != peer.end() && it->is_string()) {
            out += "  name: " + it->get<std::string>() + "\n";
        }
        const std::string ep = f.str_or_null(peer, p, "endpoint");
        if (!ep.empty()) {
            out += "  endpoint: " + ep + "\n";
        }
        const json& ips = f.array(peer, p, "allowed_ips");
        std::string allowed;
        for (size_t j = 0; j < ips.size(); ++j) {
            if (!ips[j].is_string()) {
                return make_error(fields::index(p + ".allowed_ips", j) + ": not a string");
            }
            allowed += (j == 0 ? "" : ", ") + ips[j].get<std::string>();
        }
        out += "  allowed ips: " + (allowed.empty() ? std::string("(none)") : allowed) + "\n";
        const uint64_t hs = f.count(peer, p, "latest_handshake_unix");
        // Past int64_t's range the time is nonsense anyway; show it as far in the future.
        const int64_t hs_unix = hs > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(hs);
        out += "  latest handshake: " + format_handshake_age(hs_unix, now_unix) + "\n";
        const uint64_t rx = f.count(peer, p, "rx_bytes");
        const uint64_t tx = f.count(peer, p, "tx_bytes");
        if (rx != 0 || tx != 0) {
            out += "  transfer: " + format_bytes(rx) + " received, " + format_bytes(tx) + " sent\n";
        }
        const uint64_t keepalive = f.count(peer, p, "persistent_keepalive_seconds");
        if (keepalive != 0) {
            out += "  persistent keepalive: every " + format_duration_words(keepalive) + "\n";
        }
        // Optional (older nodes do not send it): where the node learned of this peer.
        if (const auto it = peer.find("source"); it != peer.end() && it->is_string() && *it == "meshcoord") {
            out += "  from: meshcoord\n";
        }
        out += "  session: " + f.str(peer, p, "session");
        if (f.boolean(peer, p, "meshfwd")) {
            out += ", lanes: " + std::to_string(f.count(peer, p, "lanes"));
        } else {
            out += ", plain WireGuard";
        }
        out += "\n";
        // This peer's traffic per worker, as a table (how evenly lanes spread it).
        const json& workers = f.array(peer, p, "workers");
        if (!workers.empty()) {
            char row[160];
            std::snprintf(row, sizeof(row), "  %-8s %12s %12s %12s %12s\n", "worker", "rx packets", "tx packets",
                          "rx bytes", "tx bytes");
            out += row;
            for (size_t j = 0; j < workers.size(); ++j) {
                const std::string wp = fields::index(p + ".workers", j);
                std::snprintf(row, sizeof(row), "  %-8" PRIu64 " %12" PRIu64 " %12" PRIu64 " %12s %12s\n",
                              f.count(workers[j], wp, "id"), f.count(workers[j], wp, "rx_packets"),
                              f.count(workers[j], wp, "tx_packets"),
                              format_bytes(f.count(workers[j], wp, "rx_bytes")).c_str(),
                              format_bytes(f.count(workers[j], wp, "tx_bytes")).c_str());
                out += row;
            }
        }
    }
    if (!f.ok()) {
        return make_error(f.error());
    }
    if (list.empty()) {
        return std::string("no peers\n");
    }
    return out;
}

int run_status(const api_options& opts) {
    return fetch_and_print(opts, "/v1/status", [](const json& doc, int64_t) { return format_status(doc); });
}

int run_peers(const api_options& opts) { return fetch_and_print(opts, "/v1/peers", format_peers); }

} // namespace meshfwd::meshctl
