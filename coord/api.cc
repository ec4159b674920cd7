// meshcoord's API: routing and the admin handlers (see api.h). Node handlers: api_nodes.cc;
// seed 003's endpoints: api_legacy.cc. Server io_context thread only.
#include "coord/api.h"

#include <sodium.h>

#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <string>
#include <vector>

#include "coord/api_support.h"
#include "coord/invite.h"
#include "coord/node_address.h"
#include "crypto/x25519.h"

namespace meshfwd::coord {

namespace asio = boost::asio;

api_response json_error(unsigned status, std::string_view code, std::string_view message) {
    return {status, error_json(code, message)};
}

api::api(asio::io_context& io, store& db, event_hub& hub, heartbeat_batcher& beats, api_options options,
         const server_identity& identity)
    : _io(io), _db(db), _hub(hub), _beats(beats), _options(std::move(options)),
      _request_keys(crypto::secret32(std::span<const uint8_t, 32>(identity.x25519_secret.data(), 32))) {
    std::copy_n(identity.x25519_public.begin(), 32, _server_public.begin());
}

bool api::is_admin(const api_request& request) const {
    if (_options.admin_token.empty()) return false;
    const std::string_view header = request.header("Authorization");
    constexpr std::string_view bearer = "Bearer ";
    if (!header.starts_with(bearer)) return false;
    const std::string_view token = header.substr(bearer.size());
    return token.size() == _options.admin_token.size() &&
           sodium_memcmp(token.data(), _options.admin_token.data(), token.size()) == 0;
}

api_response api::admin_refusal(const api_request& request) const {
    if (_options.admin_token.empty())
        return json_error(401, "unauthorized", "the admin API is off: meshcoord was started without an admin token");
    if (request.header("Authorization").empty())
        return json_error(401, "unauthorized", "admin call without 'Authorization: Bearer <token>'");
    return json_error(401, "unauthorized", "wrong admin token");
}

bool api::is_events_path(std::string_view target) const {
    const auto path = split_path(target_path(target));
    return path.size() == 6 && path[0] == "api" && path[1] == "v1" && path[2] == "mesh" && path[3] == "networks" &&
           path[5] == "events";
}

asio::awaitable<api_response> api::handle(const api_request& request) {
    const std::string_view path_text = target_path(request.target);
    const std::string_view query = target_query(request.target);
    const auto path = split_path(path_text);
    const std::string& method = request.method;
    auto not_allowed = [&] {
        return json_error(405, "method_not_allowed", method + " is not allowed on " + std::string(path_text));
    };

    if (path_text == "/healthz") co_return api_response{200, R"({"ok":true})"};
    if (path_text == "/api/v1/server") {
        if (method != "GET") co_return not_allowed();
        nlohmann::json out{{"public_key", crypto::key_to_base64(_server_public)}, {"version", MESHFWD_VERSION}};
        co_return api_response{200, out.dump()};
    }
    if (path_text == "/register") {
        if (method != "POST") co_return not_allowed();
        co_return legacy_register(request);
    }
    if (path_text == "/heartbeat") {
        if (method != "POST") co_return not_allowed();
        co_return co_await legacy_heartbeat(request);
    }
    if (path_text == "/peers") {
        if (method != "GET") co_return not_allowed();
        co_return legacy_peers(query);
    }

    const bool mesh_api = path.size() >= 4 && path[0] == "api" && path[1] == "v1" && path[2] == "mesh" &&
                          path[3] == "networks";
    if (!mesh_api) co_return json_error(404, "not_found", "no such endpoint: " + std::string(path_text));

    if (path.size() == 4) {
        if (!is_admin(request)) co_return admin_refusal(request);
        if (method == "POST") co_return create_network(request);
        if (method == "GET") co_return list_networks();
        co_return not_allowed();
    }
    const std::string network_id = percent_decode(path[4]);
    if (path.size() == 5) {
        if (!is_admin(request)) co_return admin_refusal(request);
        if (method == "GET") co_return get_network(network_id);
        if (method == "DELETE") co_return delete_network(network_id);
        co_return not_allowed();
    }
    const std::string_view collection = path[5];
    if (collection == "peers" && path.size() == 6) {
        if (method == "POST") co_return register_node(network_id, request);
        if (method == "GET") co_return list_peers(network_id, request);
        co_return not_allowed();
    }
    if (collection == "peers" && path.size() == 7) {
        if (method == "DELETE") co_return remove_peer(network_id, percent_decode(path[6]), request);
        co_return not_allowed();
    }
    if (collection == "peers" && path.size() == 8 && path[7] == "approve") {
        if (!is_admin(request)) co_return admin_refusal(request);
        if (method == "POST") co_return approve_peer(network_id, percent_decode(path[6]));
        co_return not_allowed();
    }
    if (collection == "heartbeat" && path.size() == 6) {
        if (method == "POST") co_return co_await node_heartbeat(network_id, request);
        co_return not_allowed();
    }
    if (collection == "invites" && path.size() == 6) {
        if (!is_admin(request)) co_return admin_refusal(request);
        if (method == "POST") co_return create_invite(network_id, query);
        co_return not_allowed();
    }
    if (collection == "events" && path.size() == 6)
        co_return json_error(426, "upgrade_required", "the event stream is a WebSocket: send an Upgrade request");
    co_return json_error(404, "not_found", "no such endpoint: " + std::string(path_text));
}

result<std::optional<network_record>> api::find_network(const std::string& id) { return _db.get_network(id); }

network_options api::options_of(const network_record& network) const {
    auto options = parse_options_json(network.options_json);
    if (!options) {
        // Only meshcoord writes this column; say so loudly and serve with the defaults.
        spdlog::error("network {}: stored options unreadable ({}); using the defaults", network.id, options.error_message());
        return network_options{};
    }
    return *options;
}

api_response api::create_network(const api_request& request) {
    auto parsed = parse_create_network(request.body);
    if (!parsed) return json_error(400, "bad_request", parsed.error_message());
    network_record network;
    network.id = parsed->id.empty() ? random_network_id() : parsed->id;
    network.name = parsed->name.empty() ? network.id : parsed->name;
    network.cidr = parsed->cidr;
    network.created_ms = unix_ms();
    network.options_json = options_json(parsed->options);
    make_invite_keypair(network.invite_public_key, network.invite_secret_key);

    auto existing = _db.get_network(network.id);
    if (!existing) return json_error(500, "store_error", existing.error_message());
    if (*existing) return json_error(409, "conflict", "network '" + network.id + "' already exists");
    if (auto created = _db.create_network(network); !created)
        return json_error(500, "store_error", created.error_message());
    return {201, to_json(make_network_view(network))};
}

api_response api::list_networks() {
    auto networks = _db.list_networks();
    if (!networks) return json_error(500, "store_error", networks.error_message());
    std::vector<network_view> views;
    views.reserve(networks->size());
    for (const auto& network : *networks) views.push_back(make_network_view(network));
    return {200, network_list_json(views)};
}

api_response api::get_network(const std::string& id) {
    auto network = _db.get_network(id);
    if (!network) return json_error(500, "store_error", network.error_message());
    if (!*network) return json_error(404, "not_found", "no network '" + id + "'");
    return {200, to_json(make_network_view(**network))};
}

api_response api::delete_network(const std::string& id) {
    auto deleted = _db.delete_network(id);
    if (!deleted) return json_error(500, "store_error", deleted.error_message());
    if (!*deleted) return json_error(404, "not_found", "no network '" + id + "'");
    _hub.drop_network(id, "network deleted");
    return {200, nlohmann::json{{"deleted", id}}.dump()};
}

api_response api::create_invite(const std::string& id, std::string_view query) {
    auto network = _db.get_network(id);
    if (!network) return json_error(500, "store_error", network.error_message());
    if (!*network) return json_error(404, "not_found", "no network '" + id + "'");
    auto lifetime = _options.default_invite_lifetime;
    if (auto hours = query_value(query, "hours")) {
        unsigned value = 0;
        auto [end, ec] = std::from_chars(hours->data(), hours->data() + hours->size(), value);
        if (ec != std::errc{} || end != hours->data() + hours->size() || value == 0 || value > 24 * 365)
            return json_error(400, "bad_request", "hours: expected a whole number from 1 to 8760, got '" +
                                                      std::string(*hours) + "'");
        lifetime = std::chrono::hours(value);
    }
    if (auto seconds = query_value(query, "seconds")) { // short-lived codes for scripted joins
        unsigned value = 0;
        auto [end, ec] = std::from_chars(seconds->data(), seconds->data() + seconds->size(), value);
        if (ec != std::errc{} || end != seconds->data() + seconds->size() || value == 0 || value > 24 * 365 * 3600)
            return json_error(400, "bad_request", "seconds: expected a whole number from 1 to 31536000, got '" +
                                                      std::string(*seconds) + "'");
        lifetime = std::chrono::seconds(value);
    }
    if (_options.public_urls.empty())
        return json_error(500, "no_public_url", "meshcoord knows no URL to put in invites (--public-url)");
    invite payload;
    payload.invite_id = random_invite_id();
    payload.network_id = id;
    payload.server_urls = _options.public_urls;
    payload.server_public_key = _server_public;
    payload.expires_unix = unix_ms() / 1000 + lifetime.count();
    if (auto recorded = _db.record_invite(payload.invite_id, id, payload.expires_unix * 1000); !recorded)
        return json_error(500, "store_error", recorded.error_message());
    nlohmann::json out{{"code", encode_invite(payload, (*network)->invite_secret_key)},
                       {"network_id", id},
                       {"expires", rfc3339(payload.expires_unix * 1000)}};
    return {201, out.dump()};
}

api_response api::approve_peer(const std::string& id, const std::string& peer) {
    auto found = find_peer(id, peer);
    if (!found) return json_error(404, "not_found", "no peer '" + peer + "' in network '" + id + "'");
    auto approved = _db.approve_peer(id, found->public_key);
    if (!approved) return json_error(500, "store_error", approved.error_message());
    return {200, nlohmann::json{{"approved", found->peer_id}}.dump()};
}

std::optional<peer_record> api::find_peer(const std::string& network_id, const std::string& peer) {
    if (peer.starts_with("peer-")) {
        auto found = _db.get_peer_by_id(peer);
        if (found && *found && (*found)->network_id == network_id) return **found;
        return std::nullopt;
    }
    auto key = key_from_base64_or_url(peer);
    if (!key) return std::nullopt;
    auto found = _db.get_peer(network_id, *key);
    if (found && *found) return **found;
    return std::nullopt;
}

network_view api::make_network_view(const network_record& network) const {
    network_view view;
    view.id = network.id;
    view.name = network.name;
    view.cidr = network.cidr;
    view.ula_prefix = network_ula_prefix(network.id).to_string();
    if (network.invite_public_key.size() == 32)
        view.invite_public_key = crypto::key_to_base64(std::span<const uint8_t, 32>(network.invite_public_key.data(), 32));
    view.options = options_of(network);
    view.options.jwt = {}; // secrets stay in the store
    view.created_ms = network.created_ms;
    return view;
}

} // namespace meshfwd::coord
