// TEMPORARY, tests only: minimal implementations of the coord/ wire-format functions that
// coord_session_test needs, linked only while coord/'s own coord_wire library is not built
// (tests/unit/meson.build picks). They follow the headers (coord/protocol.h,
// coord/request_auth.h) but are not the real formats: delete this file once coord_wire lands.
// Test threads only.
#include "coord/protocol.h"
#include "crypto/secret.h"

namespace meshfwd::coord {
using crypto::secret32;
}
#include "coord/request_auth.h"
#include "crypto/x25519.h"

#include <nlohmann/json.hpp>
#include <sodium.h>

namespace meshfwd::coord {

namespace {

using json = nlohmann::json;

std::array<uint8_t, 32> mac_of(const secret32& key, std::string_view method, std::string_view target, uint64_t counter,
                               std::string_view body) {
    std::array<uint8_t, 32> body_hash{};
    crypto_generichash(body_hash.data(), body_hash.size(), reinterpret_cast<const uint8_t*>(body.data()), body.size(),
                       nullptr, 0);
    const std::string text = std::string(method) + "\n" + std::string(target) + "\n" + std::to_string(counter) + "\n" +
                             std::string(reinterpret_cast<const char*>(body_hash.data()), body_hash.size());
    std::array<uint8_t, 32> mac{};
    crypto_generichash(mac.data(), mac.size(), reinterpret_cast<const uint8_t*>(text.data()), text.size(), key.data(),
                       key.size());
    return mac;
}

json view_json(const peer_view& p) {
    return {{"id", p.id}, {"public_key", p.public_key}, {"virtual_ip", p.virtual_ip}, {"ipv6", p.ipv6},
            {"endpoints", p.endpoints}, {"endpoint", p.endpoint}, {"hostname", p.hostname}, {"os", p.os},
            {"allowed_ips", p.allowed_ips}, {"exit_node", p.exit_node}, {"online", p.online},
            {"approved", p.approved}, {"last_heartbeat", p.last_heartbeat}};
}

peer_view view_of(const json& j) {
    peer_view p;
    p.id = j.at("id");
    p.public_key = j.at("public_key");
    p.virtual_ip = j.at("virtual_ip");
    p.ipv6 = j.at("ipv6");
    p.endpoints = j.at("endpoints").get<std::vector<std::string>>();
    p.endpoint = j.at("endpoint");
    p.hostname = j.at("hostname");
    p.os = j.at("os");
    p.allowed_ips = j.at("allowed_ips").get<std::vector<std::string>>();
    p.exit_node = j.at("exit_node");
    p.online = j.at("online");
    p.approved = j.at("approved");
    p.last_heartbeat = j.at("last_heartbeat");
    return p;
}

template <class F>
auto parsed(std::string_view body, F&& f) -> result<decltype(f(json()))> {
    try {
        return f(json::parse(body));
    } catch (const std::exception& e) {
        return make_error(e.what());
    }
}

} // namespace

result<secret32> request_key(const secret32& own_secret, const node_key& other_public) {
    secret32 shared;
    if (crypto_scalarmult(shared.data(), own_secret.data(), other_public.data()) != 0) {
        return make_error("low-order public key");
    }
    secret32 key;
    crypto_generichash(key.data(), key.size(), shared.data(), shared.size(),
                       reinterpret_cast<const uint8_t*>("test request key"), 16);
    return key;
}

signed_headers sign_request(const secret32& key, const node_key& node, std::string_view method, std::string_view target,
                            uint64_t counter, std::string_view body) {
    return {crypto::key_to_base64(node), std::to_string(counter),
            crypto::key_to_base64(mac_of(key, method, target, counter, body))};
}

result<verified_request> verify_request(const secret32& server_secret, std::string_view node_header,
                                        std::string_view counter_header, std::string_view mac_header,
                                        std::string_view method, std::string_view target, std::string_view body) {
    auto node = crypto::key_from_base64(node_header);
    if (!node) {
        return make_error("bad node header");
    }
    auto key = request_key(server_secret, *node);
    if (!key) {
        return make_error(key.error_message());
    }
    const uint64_t counter = std::stoull(std::string(counter_header));
    if (crypto::key_to_base64(mac_of(*key, method, target, counter, body)) != mac_header) {
        return make_error("bad MAC");
    }
    return verified_request{*node, counter};
}

std::string to_json(const register_request& r) {
    return json{{"public_key", r.public_key}, {"hostname", r.hostname}, {"os", r.os}, {"endpoints", r.endpoints},
                {"exit_node", r.exit_node}, {"invite", r.invite}, {"token", r.token}}
        .dump();
}
result<register_request> parse_register(std::string_view body) {
    return parsed(body, [](const json& j) {
        register_request r;
        r.public_key = j.at("public_key");
        r.hostname = j.at("hostname");
        r.os = j.at("os");
        r.endpoints = j.at("endpoints").get<std::vector<std::string>>();
        r.invite = j.at("invite");
        r.token = j.at("token");
        return r;
    });
}
std::string to_json(const heartbeat_request& h) {
    json j{{"peer_id", h.peer_id}};
    if (h.endpoints) {
        j["endpoints"] = *h.endpoints;
    }
    return j.dump();
}
result<heartbeat_request> parse_heartbeat(std::string_view body) {
    return parsed(body, [](const json& j) {
        heartbeat_request h;
        h.peer_id = j.at("peer_id");
        if (j.contains("endpoints")) {
            h.endpoints = j.at("endpoints").get<std::vector<std::string>>();
        }
        return h;
    });
}
std::string to_json(const subscribe_request& s) { return json{{"since_version", s.since_version}}.dump(); }
result<subscribe_request> parse_subscribe(std::string_view body) {
    return parsed(body, [](const json& j) { return subscribe_request{j.at("since_version").get<int64_t>()}; });
}
std::string to_json(const register_response& r) {
    return json{{"peer_id", r.peer_id}, {"assigned_ip", r.assigned_ip}, {"ipv6", r.ipv6},
                {"network_cidr", r.network_cidr}, {"ula_prefix", r.ula_prefix},
                {"server_public_key", r.server_public_key}, {"approved", r.approved},
                {"heartbeat_interval_s", r.heartbeat_interval_s}, {"version", r.version}}
        .dump();
}
result<register_response> parse_register_response(std::string_view body) {
    return parsed(body, [](const json& j) {
        register_response r;
        r.peer_id = j.at("peer_id");
        r.assigned_ip = j.at("assigned_ip");
        r.ipv6 = j.at("ipv6");
        r.network_cidr = j.at("network_cidr");
        r.ula_prefix = j.at("ula_prefix");
        r.server_public_key = j.at("server_public_key");
        r.approved = j.at("approved");
        r.heartbeat_interval_s = j.at("heartbeat_interval_s");
        r.version = j.at("version");
        return r;
    });
}
std::string to_json(const event_message& m) {
    json j{{"type", m.type}, {"version", m.version}};
    if (m.type == "snapshot") {
        j["peers"] = json::array();
        for (const auto& p : m.peers) {
            j["peers"].push_back(view_json(p));
        }
    } else {
        j["kind"] = m.kind;
        j["public_key"] = m.public_key;
        if (m.peer) {
            j["peer"] = view_json(*m.peer);
        }
    }
    return j.dump();
}
result<event_message> parse_event_message(std::string_view body) {
    return parsed(body, [](const json& j) {
        event_message m;
        m.type = j.at("type");
        m.version = j.at("version");
        if (m.type == "snapshot") {
            for (const auto& p : j.at("peers")) {
                m.peers.push_back(view_of(p));
            }
        } else {
            m.kind = j.at("kind");
            m.public_key = j.at("public_key");
            if (j.contains("peer")) {
                m.peer = view_of(j.at("peer"));
            }
        }
        return m;
    });
}

} // namespace meshfwd::coord
