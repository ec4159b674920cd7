// meshcoord's JSON wire formats (see protocol.h). Parsers are strict and never throw: field
// errors are thrown internally as field_error and turned into result errors at the one entry
// point (parse_body), which also catches anything nlohmann or the allocator throws. Pure
// functions: any thread.
#include "coord/protocol.h"

#include <sodium.h>

#include <algorithm>
#include <ctime>
#include <exception>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "coord/invite.h"
#include "coord/json_read.h"
#include "coord/node_address.h"
#include "coord/node_token.h"

namespace meshfwd::coord {

namespace {

using detail::as_bool;
using detail::as_int;
using detail::as_text;
using detail::child;
using detail::fail;
using detail::field_error;
using detail::for_each_element;
using detail::json;
using detail::object_reader;
using detail::parse_body;

constexpr std::size_t max_allowed_ips = 64;
constexpr std::size_t max_hs256_secret = 1024;
constexpr std::size_t min_hs256_secret = 32;
constexpr std::size_t max_pem = 16 * 1024;

std::string as_id(const json& v, const std::string& path) {
    std::string s = as_text(v, path, 63);
    if (!valid_id(s)) {
        fail(path, "not an id ([a-z0-9-], 1 to 63 characters)");
    }
    return s;
}

std::string as_key(const json& v, const std::string& path) {
    const std::string s = as_text(v, path, 64);
    if (!parse_key(s)) {
        fail(path, "not a 32-byte base64 key");
    }
    return s;
}

std::string as_endpoint(const json& v, const std::string& path) {
    const std::string s = as_text(v, path, 64);
    auto e = endpoint::parse(s);
    if (!e) {
        fail(path, "not an ip:port endpoint (" + e.error_message() + ")");
    }
    return e->to_string();
}

std::vector<std::string> as_endpoints(const json& v, const std::string& path) {
    std::vector<std::string> out;
    for_each_element(v, path, max_endpoints,
                     [&](const json& e, const std::string& p) { out.push_back(as_endpoint(e, p)); });
    return out;
}

std::string as_address(const json& v, const std::string& path, ip_family family) {
    const std::string s = as_text(v, path, 64);
    auto a = ip_address::parse(s);
    if (!a || a->family() != family) {
        fail(path, family == ip_family::v4 ? "not an IPv4 address" : "not an IPv6 address");
    }
    return a->to_string();
}

std::string as_cidr(const json& v, const std::string& path) {
    const std::string s = as_text(v, path, 64);
    auto p = parse_network_cidr(s);
    if (!p) {
        fail(path, p.error_message());
    }
    return s;
}

std::string as_ula_prefix(const json& v, const std::string& path) {
    const std::string s = as_text(v, path, 64);
    auto p = ip_prefix::parse(s);
    if (!p || !p->address().is_v6() || p->length() != 48 || p->masked() != *p ||
        p->address().bytes()[0] != 0xfd) {
        fail(path, "not an fd00::/8 /48 prefix");
    }
    return s;
}

bool digits(std::string_view s, std::size_t at, std::size_t n) {
    for (std::size_t i = at; i < at + n; ++i) {
        if (i >= s.size() || s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

// "YYYY-MM-DDTHH:MM:SS[.fraction]Z", the UTC subset of RFC 3339 that meshcoord writes.
std::string as_timestamp(const json& v, const std::string& path) {
    const std::string s = as_text(v, path, 40);
    if (s.empty()) {
        return s;
    }
    auto num = [&](std::size_t at, std::size_t n) { return std::stoi(s.substr(at, n)); };
    bool ok = s.size() >= 20 && digits(s, 0, 4) && s[4] == '-' && digits(s, 5, 2) && s[7] == '-' &&
              digits(s, 8, 2) && s[10] == 'T' && digits(s, 11, 2) && s[13] == ':' && digits(s, 14, 2) &&
              s[16] == ':' && digits(s, 17, 2) && s.back() == 'Z';
    if (ok && s.size() > 20) {
        ok = s[19] == '.' && s.size() > 21 && digits(s, 20, s.size() - 21);
    }
    ok = ok && num(5, 2) >= 1 && num(5, 2) <= 12 && num(8, 2) >= 1 && num(8, 2) <= 31 && num(11, 2) < 24 &&
         num(14, 2) < 60 && num(17, 2) <= 60;
    if (!ok) {
        fail(path, "not an RFC 3339 UTC time (2024-01-01T12:00:00Z)");
    }
    return s;
}

// --- network options ---

enum class options_form { full, view };

network_options read_options(const json& v, const std::string& path, options_form form,
                             network_view* view = nullptr) {
    network_options o;
    object_reader r(v, path);
    if (const json* x = r.get("heartbeat_interval_s")) {
        o.heartbeat_interval_s = static_cast<uint32_t>(as_int(*x, r.path("heartbeat_interval_s"), 1, 3600));
    }
    if (const json* x = r.get("offline_after_s")) {
        o.offline_after_s = static_cast<uint32_t>(as_int(*x, r.path("offline_after_s"), 2, 86400));
    }
    if (o.offline_after_s <= o.heartbeat_interval_s) {
        fail(r.path("offline_after_s"), "must be longer than heartbeat_interval_s");
    }
    if (const json* x = r.get("auto_approve")) {
        o.auto_approve = as_bool(*x, r.path("auto_approve"));
    }
    if (const json* x = r.get("max_peers")) {
        o.max_peers = static_cast<uint32_t>(as_int(*x, r.path("max_peers"), 0, 1 << 24));
    }
    if (const json* x = r.get("require_admission")) {
        o.require_admission = as_bool(*x, r.path("require_admission"));
    }
    if (const json* x = r.get("jwt")) {
        object_reader j(*x, r.path("jwt"));
        if (form == options_form::full) {
            if (const json* s = j.get("hs256_secret")) {
                if (!s->is_string()) {
                    fail(j.path("hs256_secret"), "must be a string");
                }
                o.jwt.hs256_secret = s->get<std::string>();
                if (o.jwt.hs256_secret.size() > max_hs256_secret) {
                    fail(j.path("hs256_secret"), "longer than " + std::to_string(max_hs256_secret) + " bytes");
                }
                if (!o.jwt.hs256_secret.empty() && o.jwt.hs256_secret.size() < min_hs256_secret) {
                    fail(j.path("hs256_secret"), "shorter than 32 bytes (HS256 needs a 256-bit secret)");
                }
            }
            if (const json* s = j.get("rs256_public_key_pem")) {
                if (!s->is_string()) {
                    fail(j.path("rs256_public_key_pem"), "must be a string");
                }
                o.jwt.rs256_public_key_pem = s->get<std::string>();
                if (o.jwt.rs256_public_key_pem.size() > max_pem) {
                    fail(j.path("rs256_public_key_pem"), "longer than " + std::to_string(max_pem) + " bytes");
                }
                if (!o.jwt.rs256_public_key_pem.empty()) {
                    if (auto ok = check_rs256_public_key(o.jwt.rs256_public_key_pem); !ok) {
                        fail(j.path("rs256_public_key_pem"), ok.error_message());
                    }
                }
            }
        } else {
            const json* hs = j.get("hs256");
            const json* rs = j.get("rs256");
            const bool hs_on = hs != nullptr && as_bool(*hs, j.path("hs256"));
            const bool rs_on = rs != nullptr && as_bool(*rs, j.path("rs256"));
            if (view != nullptr) {
                view->jwt_hs256 = hs_on;
                view->jwt_rs256 = rs_on;
            }
        }
        j.finish();
    }
    r.finish();
    return o;
}

json options_to_json(const network_options& o, options_form form, const network_view* view = nullptr) {
    json j = {{"heartbeat_interval_s", o.heartbeat_interval_s},
              {"offline_after_s", o.offline_after_s},
              {"auto_approve", o.auto_approve},
              {"max_peers", o.max_peers},
              {"require_admission", o.require_admission}};
    if (form == options_form::full) {
        j["jwt"] = {{"hs256_secret", o.jwt.hs256_secret}, {"rs256_public_key_pem", o.jwt.rs256_public_key_pem}};
    } else {
        const bool hs = view ? view->jwt_hs256 : !o.jwt.hs256_secret.empty();
        const bool rs = view ? view->jwt_rs256 : !o.jwt.rs256_public_key_pem.empty();
        j["jwt"] = {{"hs256", hs}, {"rs256", rs}};
    }
    return j;
}

// --- peers ---

peer_view read_peer(const json& v, const std::string& path) {
    peer_view p;
    object_reader r(v, path);
    p.id = as_id(r.need("id"), r.path("id"));
    p.public_key = as_key(r.need("public_key"), r.path("public_key"));
    p.virtual_ip = as_address(r.need("virtual_ip"), r.path("virtual_ip"), ip_family::v4);
    if (const json* x = r.get("ipv6"); x != nullptr && !(x->is_string() && x->get_ref<const std::string&>().empty())) {
        p.ipv6 = as_address(*x, r.path("ipv6"), ip_family::v6);
    }
    if (const json* x = r.get("endpoints")) {
        p.endpoints = as_endpoints(*x, r.path("endpoints"));
    }
    if (const json* x = r.get("endpoint"); x != nullptr && !(x->is_string() && x->get_ref<const std::string&>().empty())) {
        p.endpoint = as_endpoint(*x, r.path("endpoint"));
    }
    if (const json* x = r.get("hostname")) {
        p.hostname = as_text(*x, r.path("hostname"), max_text_field);
    }
    if (const json* x = r.get("os")) {
        p.os = as_text(*x, r.path("os"), max_text_field);
    }
    if (const json* x = r.get("allowed_ips")) {
        for_each_element(*x, r.path("allowed_ips"), max_allowed_ips, [&](const json& e, const std::string& ep) {
            const std::string s = as_text(e, ep, 64);
            if (!ip_prefix::parse(s)) {
                fail(ep, "not an address/length prefix");
            }
            p.allowed_ips.push_back(s);
        });
    }
    if (const json* x = r.get("exit_node")) {
        p.exit_node = as_bool(*x, r.path("exit_node"));
    }
    if (const json* x = r.get("online")) {
        p.online = as_bool(*x, r.path("online"));
    }
    if (const json* x = r.get("approved")) {
        p.approved = as_bool(*x, r.path("approved"));
    }
    if (const json* x = r.get("last_heartbeat")) {
        p.last_heartbeat = as_timestamp(*x, r.path("last_heartbeat"));
    }
    r.finish();
    return p;
}

json peer_to_json(const peer_view& p) {
    return {{"id", p.id},
            {"public_key", p.public_key},
            {"virtual_ip", p.virtual_ip},
            {"ipv6", p.ipv6},
            {"endpoints", p.endpoints},
            {"endpoint", p.endpoint},
            {"hostname", p.hostname},
            {"os", p.os},
            {"allowed_ips", p.allowed_ips},
            {"exit_node", p.exit_node},
            {"online", p.online},
            {"approved", p.approved},
            {"last_heartbeat", p.last_heartbeat}};
}

std::vector<peer_view> read_peer_array(const json& v, const std::string& path) {
    std::vector<peer_view> out;
    // No count limit beyond the body size: a snapshot of a large network is legitimately long.
    for_each_element(v, path, v.is_array() ? v.size() : 0,
                     [&](const json& e, const std::string& p) { out.push_back(read_peer(e, p)); });
    return out;
}

// --- networks ---

network_view read_network_view(const json& v, const std::string& path) {
    network_view n;
    object_reader r(v, path);
    n.id = as_id(r.need("id"), r.path("id"));
    n.name = as_text(r.need("name"), r.path("name"), max_text_field);
    n.cidr = as_cidr(r.need("cidr"), r.path("cidr"));
    n.ula_prefix = as_ula_prefix(r.need("ula_prefix"), r.path("ula_prefix"));
    n.invite_public_key = as_key(r.need("invite_public_key"), r.path("invite_public_key"));
    if (const json* x = r.get("options")) {
        n.options = read_options(*x, r.path("options"), options_form::view, &n);
    }
    if (const json* x = r.get("created_ms")) {
        n.created_ms = as_int(*x, r.path("created_ms"), 0, INT64_MAX);
    }
    r.finish();
    return n;
}

json network_view_to_json(const network_view& n) {
    return {{"id", n.id},
            {"name", n.name},
            {"cidr", n.cidr},
            {"ula_prefix", n.ula_prefix},
            {"invite_public_key", n.invite_public_key},
            {"options", options_to_json(n.options, options_form::view, &n)},
            {"created_ms", n.created_ms}};
}

std::string dump(const json& j) {
    // replace: a stored string that is not UTF-8 must not make serialisation throw.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace

// --- validators ---

bool valid_id(std::string_view id) {
    if (id.empty() || id.size() > 63) {
        return false;
    }
    for (const char c : id) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            return false;
        }
    }
    return true;
}

result<ip_prefix> parse_network_cidr(std::string_view text) {
    auto p = ip_prefix::parse(text);
    if (!p) {
        return make_error("not an address/length prefix (" + p.error_message() + ")");
    }
    if (!p->address().is_v4()) {
        return make_error("must be an IPv4 prefix");
    }
    if (p->length() < 8 || p->length() > 30) {
        return make_error("prefix length /" + std::to_string(p->length()) + " outside /8.../30");
    }
    if (p->masked() != *p) {
        return make_error("host bits set (the network is " + p->masked().to_string() + ")");
    }
    return *p;
}

std::optional<node_key> parse_key(std::string_view text) {
    if (text.size() != 44 || text[43] != '=') {
        return std::nullopt;
    }
    // libsodium 1.0.18 takes bytes >= 0x80 as digits: check the alphabet first.
    for (std::size_t i = 0; i < 43; ++i) {
        const char c = text[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/')) {
            return std::nullopt;
        }
    }
    node_key key{};
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(key.data(), key.size(), text.data(), text.size(), nullptr, &len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len != key.size() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    // One text per key: refuse non-zero padding bits, which decode to the same key.
    if (key_text(key) != text) {
        return std::nullopt;
    }
    return key;
}

std::string key_text(const node_key& key) {
    char text[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(text, sizeof text, key.data(), key.size(), sodium_base64_VARIANT_ORIGINAL);
    return std::string(text);
}

std::string format_rfc3339(int64_t unix_ms) {
    if (unix_ms <= 0) {
        return "";
    }
    const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    if (gmtime_r(&t, &tm) == nullptr) {
        return "";
    }
    char buf[32];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buf, n);
}

// --- parsers ---

result<create_network_request> parse_create_network(std::string_view body) {
    return parse_body(body, max_request_body, [](const json& doc) {
        create_network_request q;
        object_reader r(doc, "");
        if (const json* x = r.get("id"); x != nullptr && !(x->is_string() && x->get_ref<const std::string&>().empty())) {
            q.id = as_id(*x, "id");
        }
        if (const json* x = r.get("name")) {
            q.name = as_text(*x, "name", max_text_field);
        }
        q.cidr = as_cidr(r.need("cidr"), "cidr");
        if (const json* x = r.get("options")) {
            q.options = read_options(*x, "options", options_form::full);
        }
        r.finish();
        return q;
    });
}

result<register_request> parse_register(std::string_view body) {
    return parse_body(body, max_request_body, [](const json& doc) {
        register_request q;
        object_reader r(doc, "");
        q.public_key = as_key(r.need("public_key"), "public_key");
        if (const json* x = r.get("hostname")) {
            q.hostname = as_text(*x, "hostname", max_text_field);
        }
        if (const json* x = r.get("os")) {
            q.os = as_text(*x, "os", max_text_field);
        }
        if (const json* x = r.get("endpoints")) {
            q.endpoints = as_endpoints(*x, "endpoints");
        }
        // Seed 003's single endpoint joins the list (first, as its only candidate).
        if (const json* x = r.get("endpoint"); x != nullptr && !(x->is_string() && x->get_ref<const std::string&>().empty())) {
            const std::string e = as_endpoint(*x, "endpoint");
            if (std::find(q.endpoints.begin(), q.endpoints.end(), e) == q.endpoints.end()) {
                if (q.endpoints.size() == max_endpoints) {
                    fail("endpoint", "more than " + std::to_string(max_endpoints) + " endpoints in all");
                }
                q.endpoints.insert(q.endpoints.begin(), e);
            }
        }
        if (const json* x = r.get("request_ip")) { // seed 003: always true in effect
            (void)as_bool(*x, "request_ip");
        }
        if (const json* x = r.get("exit_node")) {
            q.exit_node = as_bool(*x, "exit_node");
        }
        if (const json* x = r.get("invite")) {
            q.invite = as_text(*x, "invite", max_invite_code);
        }
        if (const json* x = r.get("token")) {
            q.token = as_text(*x, "token", max_token);
        }
        if (!q.invite.empty() && !q.token.empty()) {
            fail("token", "give either an invite or a token, not both");
        }
        r.finish();
        return q;
    });
}

result<heartbeat_request> parse_heartbeat(std::string_view body) {
    return parse_body(body, max_request_body, [](const json& doc) {
        heartbeat_request q;
        object_reader r(doc, "");
        if (const json* x = r.get("peer_id")) {
            q.peer_id = as_id(*x, "peer_id");
        }
        if (const json* x = r.get("endpoints")) {
            q.endpoints = as_endpoints(*x, "endpoints");
        }
        if (const json* x = r.get("endpoint"); x != nullptr && !(x->is_string() && x->get_ref<const std::string&>().empty())) {
            q.endpoint = as_endpoint(*x, "endpoint");
        }
        r.finish();
        return q;
    });
}

result<subscribe_request> parse_subscribe(std::string_view body) {
    return parse_body(body, max_request_body, [](const json& doc) {
        subscribe_request q;
        object_reader r(doc, "");
        if (const json* x = r.get("since_version")) {
            q.since_version = as_int(*x, "since_version", 0, INT64_MAX);
        }
        r.finish();
        return q;
    });
}

result<register_response> parse_register_response(std::string_view body) {
    return parse_body(body, max_response_body, [](const json& doc) {
        register_response q;
        object_reader r(doc, "");
        if (const json* x = r.get("success"); x != nullptr && !as_bool(*x, "success")) {
            fail("success", "false in a registration response");
        }
        q.peer_id = as_id(r.need("peer_id"), "peer_id");
        q.assigned_ip = as_address(r.need("assigned_ip"), "assigned_ip", ip_family::v4);
        q.ipv6 = as_address(r.need("ipv6"), "ipv6", ip_family::v6);
        q.network_cidr = as_cidr(r.need("network_cidr"), "network_cidr");
        q.ula_prefix = as_ula_prefix(r.need("ula_prefix"), "ula_prefix");
        q.server_public_key = as_key(r.need("server_public_key"), "server_public_key");
        q.approved = as_bool(r.need("approved"), "approved");
        q.heartbeat_interval_s = static_cast<uint32_t>(as_int(r.need("heartbeat_interval_s"), "heartbeat_interval_s", 1, 3600));
        q.version = as_int(r.need("version"), "version", 0, INT64_MAX);
        if (const json* x = r.get("mtu"); x != nullptr && !x->is_null()) {
            q.mtu = static_cast<uint32_t>(as_int(*x, "mtu", min_mtu, max_mtu));
        }
        r.finish();
        return q;
    });
}

result<event_message> parse_event_message(std::string_view body) {
    return parse_body(body, max_response_body, [](const json& doc) {
        event_message m;
        object_reader r(doc, "");
        m.type = as_text(r.need("type"), "type", 16);
        m.version = as_int(r.need("version"), "version", 0, INT64_MAX);
        if (m.type == "snapshot") {
            for (const char* absent : {"kind", "public_key", "peer"}) {
                if (r.get(absent) != nullptr) {
                    fail(absent, "not allowed in a snapshot");
                }
            }
            m.peers = read_peer_array(r.need("peers"), "peers");
        } else if (m.type == "event") {
            if (r.get("peers") != nullptr) {
                fail("peers", "only in a snapshot");
            }
            m.kind = as_text(r.need("kind"), "kind", 16);
            if (m.kind != "joined" && m.kind != "left" && m.kind != "changed" && m.kind != "online" &&
                m.kind != "offline") {
                fail("kind", "not one of joined, left, changed, online, offline");
            }
            m.public_key = as_key(r.need("public_key"), "public_key");
            const json* peer = r.get("peer");
            if (m.kind == "left") {
                if (peer != nullptr && !peer->is_null()) {
                    fail("peer", "not allowed in a left event");
                }
            } else {
                if (peer == nullptr) {
                    fail("peer", "required in a " + m.kind + " event");
                }
                m.peer = read_peer(*peer, "peer");
                if (m.peer->public_key != m.public_key) {
                    fail("peer.public_key", "differs from the event's public_key");
                }
            }
        } else {
            fail("type", "not snapshot or event");
        }
        r.finish();
        return m;
    });
}

result<std::vector<peer_view>> parse_peer_list(std::string_view body) {
    return parse_body(body, max_response_body, [](const json& doc) {
        object_reader r(doc, "");
        auto peers = read_peer_array(r.need("peers"), "peers");
        r.finish();
        return peers;
    });
}

result<network_view> parse_network_view(std::string_view body) {
    return parse_body(body, max_response_body, [](const json& doc) { return read_network_view(doc, ""); });
}

result<std::vector<network_view>> parse_network_list(std::string_view body) {
    return parse_body(body, max_response_body, [](const json& doc) {
        object_reader r(doc, "");
        std::vector<network_view> out;
        const json& list = r.need("networks");
        for_each_element(list, "networks", list.is_array() ? list.size() : 0,
                         [&](const json& e, const std::string& p) { out.push_back(read_network_view(e, p)); });
        r.finish();
        return out;
    });
}

result<network_options> parse_options_json(std::string_view text) {
    return parse_body(text, max_request_body, [](const json& doc) {
        return read_options(doc, "options", options_form::full);
    });
}

// --- serialisers ---

std::string to_json(const create_network_request& q) {
    json j = {{"cidr", q.cidr}, {"options", options_to_json(q.options, options_form::full)}};
    if (!q.id.empty()) {
        j["id"] = q.id;
    }
    if (!q.name.empty()) {
        j["name"] = q.name;
    }
    return dump(j);
}

std::string to_json(const register_request& q) {
    json j = {{"public_key", q.public_key},
              {"hostname", q.hostname},
              {"os", q.os},
              {"endpoints", q.endpoints},
              {"exit_node", q.exit_node}};
    if (!q.invite.empty()) {
        j["invite"] = q.invite;
    }
    if (!q.token.empty()) {
        j["token"] = q.token;
    }
    return dump(j);
}

std::string to_json(const heartbeat_request& q) {
    json j = json::object();
    if (!q.peer_id.empty()) {
        j["peer_id"] = q.peer_id;
    }
    if (q.endpoints) {
        j["endpoints"] = *q.endpoints;
    }
    if (!q.endpoint.empty()) {
        j["endpoint"] = q.endpoint;
    }
    return dump(j);
}

std::string to_json(const subscribe_request& q) { return dump(json{{"since_version", q.since_version}}); }

std::string to_json(const register_response& q) {
    json j = {{"success", true}, // seed 003 clients look for it
              {"peer_id", q.peer_id},
              {"assigned_ip", q.assigned_ip},
              {"ipv6", q.ipv6},
              {"network_cidr", q.network_cidr},
              {"ula_prefix", q.ula_prefix},
              {"server_public_key", q.server_public_key},
              {"approved", q.approved},
              {"heartbeat_interval_s", q.heartbeat_interval_s},
              {"version", q.version}};
    if (q.mtu) {
        j["mtu"] = *q.mtu;
    }
    return dump(j);
}

std::string to_json(const event_message& m) {
    json j = {{"type", m.type}, {"version", m.version}};
    if (m.type == "snapshot") {
        json peers = json::array();
        for (const auto& p : m.peers) {
            peers.push_back(peer_to_json(p));
        }
        j["peers"] = std::move(peers);
    } else {
        j["kind"] = m.kind;
        j["public_key"] = m.public_key;
        if (m.peer && m.kind != "left") {
            j["peer"] = peer_to_json(*m.peer);
        }
    }
    return dump(j);
}

std::string to_json(const network_view& n) { return dump(network_view_to_json(n)); }

std::string peer_list_json(const std::vector<peer_view>& peers) {
    json list = json::array();
    for (const auto& p : peers) {
        list.push_back(peer_to_json(p));
    }
    return dump(json{{"peers", std::move(list)}});
}

std::string network_list_json(const std::vector<network_view>& networks) {
    json list = json::array();
    for (const auto& n : networks) {
        list.push_back(network_view_to_json(n));
    }
    return dump(json{{"networks", std::move(list)}});
}

std::string options_json(const network_options& options) {
    return dump(options_to_json(options, options_form::full));
}

std::string error_json(std::string_view code, std::string_view message) {
    return dump(json{{"error", {{"code", std::string(code)}, {"message", std::string(message)}}}});
}

peer_view make_peer_view(const peer_record& peer, std::string_view ula_prefix) {
    peer_view v;
    v.id = peer.peer_id;
    v.public_key = key_text(peer.public_key);
    v.virtual_ip = ip_address::v4(peer.ipv4).to_string();
    auto ula = ip_prefix::parse(ula_prefix);
    const ip_address v6 = ula && ula->address().is_v6() && ula->length() == 48
                              ? node_ipv6_in(*ula, peer.public_key)
                              : node_ipv6(peer.network_id, peer.public_key);
    v.ipv6 = v6.to_string();
    v.endpoints = peer.endpoints;
    v.endpoint = peer.endpoints.empty() ? std::string() : peer.endpoints.front();
    v.hostname = peer.hostname;
    v.os = peer.os;
    v.allowed_ips = {v.virtual_ip + "/32", v.ipv6 + "/128"};
    v.exit_node = peer.exit_node;
    v.online = peer.online;
    v.approved = peer.approved;
    v.last_heartbeat = format_rfc3339(peer.last_heartbeat_ms);
    return v;
}

const char* event_kind_name(event_kind kind) {
    switch (kind) {
    case event_kind::joined:
        return "joined";
    case event_kind::left:
        return "left";
    case event_kind::changed:
        return "changed";
    case event_kind::online:
        return "online";
    case event_kind::offline:
        return "offline";
    }
    return "changed";
}

} // namespace meshfwd::coord
