// Seed 003's endpoints, in its JSON shapes, so a client written for that system works against
// meshcoord unchanged: POST /register, POST /heartbeat, GET /peers?peer_id=. Seed 003 has no
// authentication (anyone may register a key; the peer_id is the only handle), so these serve only
// the one network the operator names with --legacy-network, and only if that network was created
// with require_admission: false. Server io_context thread only.
#include "coord/api.h"

#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "coord/api_support.h"
#include "coord/node_address.h"
#include "crypto/x25519.h"

namespace meshfwd::coord {

namespace asio = boost::asio;

namespace {

// Strict reading of seed 003's bodies: known fields only, each of its type.
result<nlohmann::json> read_object(std::string_view body, std::initializer_list<std::pair<const char*, nlohmann::json::value_t>> fields) {
    auto in = nlohmann::json::parse(body, nullptr, false);
    if (in.is_discarded()) return error{"body is not valid JSON"};
    if (!in.is_object()) return error{"body must be a JSON object"};
    for (auto it = in.begin(); it != in.end(); ++it) {
        auto field = std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return it.key() == f.first; });
        if (field == fields.end()) return error{"unknown field '" + it.key() + "'"};
        const auto want = field->second;
        const auto got = it.value().type();
        const bool ok = got == want || (want == nlohmann::json::value_t::number_unsigned &&
                                        got == nlohmann::json::value_t::number_integer);
        if (!ok) return error{"field '" + it.key() + "' has the wrong type"};
        if (got == nlohmann::json::value_t::string && it.value().get_ref<const std::string&>().size() > max_text_field)
            return error{"field '" + it.key() + "' is longer than " + std::to_string(max_text_field) + " bytes"};
    }
    return in;
}

std::string text_field(const nlohmann::json& in, const char* name) {
    auto it = in.find(name);
    return it == in.end() ? std::string{} : it->get<std::string>();
}

} // namespace

api_response api::legacy_register(const api_request& request) {
    if (_options.legacy_network.empty())
        return json_error(404, "not_found", "seed-003 endpoints are off (meshcoord --legacy-network NETWORK turns them on)");
    const std::string& id = _options.legacy_network;
    using t = nlohmann::json::value_t;
    auto in = read_object(request.body, {{"public_key", t::string},
                                         {"hostname", t::string},
                                         {"os", t::string},
                                         {"endpoint", t::string},
                                         {"request_ip", t::boolean},
                                         {"exit_node", t::boolean}});
    if (!in) return json_error(400, "bad_request", in.error_message());
    auto key = crypto::key_from_base64(text_field(*in, "public_key"));
    if (!key) return json_error(400, "bad_request", "public_key: not a 32-byte base64 key");

    auto network = _db.get_network(id);
    if (!network) return json_error(500, "store_error", network.error_message());
    if (!*network) return json_error(404, "not_found", "the legacy network '" + id + "' does not exist");
    const network_options options = options_of(**network);
    if (options.require_admission)
        return json_error(403, "admission_required",
                          "network '" + id + "' requires an invite or token; seed-003 registration needs an open network");

    registration reg;
    reg.network_id = id;
    reg.public_key = *key;
    reg.hostname = text_field(*in, "hostname");
    reg.os = text_field(*in, "os");
    if (auto endpoint = text_field(*in, "endpoint"); !endpoint.empty()) reg.endpoints.push_back(endpoint);
    reg.exit_node = in->value("exit_node", false);
    reg.approved = options.auto_approve;
    auto existing = _db.get_peer(id, *key);
    if (!existing) return json_error(500, "store_error", existing.error_message());
    if (*existing) reg.approved = (*existing)->approved;
    auto outcome = _db.register_peer(reg, unix_ms());
    if (!outcome) return json_error(500, "store_error", outcome.error_message());
    if (outcome->status == register_status::network_full)
        return json_error(409, "network_full", "network '" + id + "' has no free address left in " + (*network)->cidr);
    if (outcome->status == register_status::no_network)
        return json_error(404, "not_found", "the legacy network '" + id + "' does not exist");
    nlohmann::json out{{"success", true},
                       {"assigned_ip", ip_address::v4(outcome->peer->ipv4).to_string()},
                       {"network_cidr", (*network)->cidr},
                       {"peer_id", outcome->peer->peer_id},
                       {"server_public_key", crypto::key_to_base64(_server_public)}};
    return {200, out.dump()};
}

asio::awaitable<api_response> api::legacy_heartbeat(const api_request& request) {
    if (_options.legacy_network.empty())
        co_return json_error(404, "not_found", "seed-003 endpoints are off (meshcoord --legacy-network NETWORK turns them on)");
    using t = nlohmann::json::value_t;
    auto in = read_object(request.body, {{"peer_id", t::string}, {"endpoint", t::string}});
    if (!in) co_return json_error(400, "bad_request", in.error_message());
    const std::string peer_id = text_field(*in, "peer_id");
    auto peer = _db.get_peer_by_id(peer_id);
    if (!peer) co_return json_error(500, "store_error", peer.error_message());
    if (!*peer || (*peer)->network_id != _options.legacy_network)
        co_return json_error(404, "not_registered", "no peer '" + peer_id + "'");
    heartbeat beat;
    beat.network_id = (*peer)->network_id;
    beat.public_key = (*peer)->public_key;
    if (auto endpoint = text_field(*in, "endpoint"); !endpoint.empty())
        beat.endpoints = std::vector<std::string>{endpoint};
    auto status = co_await _beats.record(std::move(beat));
    if (!status) co_return json_error(500, "store_error", status.error_message());
    if (*status == heartbeat_status::unknown_peer) co_return json_error(404, "not_registered", "no peer '" + peer_id + "'");
    co_return api_response{200, R"({"success":true})"};
}

api_response api::legacy_peers(std::string_view query) {
    if (_options.legacy_network.empty())
        return json_error(404, "not_found", "seed-003 endpoints are off (meshcoord --legacy-network NETWORK turns them on)");
    const std::string& id = _options.legacy_network;
    const auto requester = query_value(query, "peer_id");
    auto peers = _db.list_peers(id);
    if (!peers) return json_error(500, "store_error", peers.error_message());
    std::sort(peers->begin(), peers->end(), [](const peer_record& a, const peer_record& b) { return a.ipv4 < b.ipv4; });
    const std::string ula = network_ula_prefix(id).to_string();
    std::vector<peer_view> views;
    for (const auto& peer : *peers) {
        if (!peer.approved || (requester && peer.peer_id == *requester)) continue;
        views.push_back(make_peer_view(peer, ula));
    }
    return {200, peer_list_json(views)};
}

} // namespace meshfwd::coord
