// meshcoord's node-facing handlers: registration (with invite or JWT admission), heartbeats, the
// peer list a node may see, removal, and the event stream's access check. Every node request is
// signed (coord/request_auth.h). Server io_context thread only.
#include "coord/api.h"

#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "coord/api_support.h"
#include "coord/invite.h"
#include "coord/node_address.h"
#include "coord/node_token.h"
#include "coord/request_auth.h"
#include "crypto/x25519.h"

namespace meshfwd::coord {

namespace asio = boost::asio;

namespace {

std::string counter_slot(const std::string& network_id, const node_key& key) {
    return network_id + '/' + std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

std::string ipv4_text(uint32_t host_order) { return ip_address::v4(host_order).to_string(); }

} // namespace

api::authenticated api::authenticate_node(const api_request& request) {
    authenticated out;
    const std::string_view node = request.header(header_node);
    const std::string_view counter = request.header(header_counter);
    const std::string_view mac = request.header(header_mac);
    if (node.empty() || counter.empty() || mac.empty()) {
        out.refusal = json_error(401, "unauthorized",
                                 "unsigned request: X-Meshfwd-Node, X-Meshfwd-Counter and X-Meshfwd-Auth are required");
        return out;
    }
    auto verified = _request_keys.verify(node, counter, mac, request.method, request.target, request.body);
    if (!verified) {
        out.refusal = json_error(401, "unauthorized", "request signature: " + verified.error_message());
        return out;
    }
    const int64_t now = unix_us();
    const auto skew = std::chrono::duration_cast<std::chrono::microseconds>(max_clock_skew).count();
    const auto counter_value = static_cast<int64_t>(std::min<uint64_t>(verified->counter, INT64_MAX));
    if (counter_value < now - skew || counter_value > now + skew) {
        out.refusal = json_error(401, "unauthorized",
                                 "request counter is not a current time in microseconds (clock skew over " +
                                     std::to_string(max_clock_skew.count()) + " s?)");
        return out;
    }
    out.key = verified->node;
    out.counter = verified->counter;
    return out;
}

// Refuses a replayed request of a known node, in this process and in the store (which other
// replicas share). Registration of a new key stores its first counter with the row.
static std::optional<api_response> check_replay(store& db, std::unordered_map<std::string, uint64_t>& last,
                                                const std::string& network_id, const node_key& key,
                                                uint64_t counter, bool known) {
    auto& seen = last[counter_slot(network_id, key)];
    if (counter <= seen) return json_error(401, "replayed", "replayed request: its counter is not newer than the last one");
    if (known) {
        auto advanced = db.advance_request_counter(network_id, key, counter);
        if (!advanced) return json_error(500, "store_error", advanced.error_message());
        if (!*advanced)
            return json_error(401, "replayed", "replayed request: its counter is not newer than the last one");
    }
    seen = counter;
    return std::nullopt;
}

api_response api::register_node(const std::string& id, const api_request& request) {
    auto auth = authenticate_node(request);
    if (auth.refusal) return *auth.refusal;
    auto parsed = parse_register(request.body);
    if (!parsed) return json_error(400, "bad_request", parsed.error_message());
    auto body_key = crypto::key_from_base64(parsed->public_key);
    if (!body_key || *body_key != auth.key)
        return json_error(403, "forbidden", "public_key in the body is not the key that signed the request");

    auto network = _db.get_network(id);
    if (!network) return json_error(500, "store_error", network.error_message());
    if (!*network) return json_error(404, "not_found", "no network '" + id + "'");
    const network_options options = options_of(**network);

    auto existing = _db.get_peer(id, auth.key);
    if (!existing) return json_error(500, "store_error", existing.error_message());
    if (auto replay = check_replay(_db, _last_counter, id, auth.key, auth.counter, existing->has_value()))
        return *replay;

    registration reg;
    reg.network_id = id;
    reg.public_key = auth.key;
    reg.hostname = parsed->hostname;
    reg.os = parsed->os;
    reg.endpoints = parsed->endpoints;
    reg.exit_node = parsed->exit_node;
    reg.request_counter = auth.counter;
    std::optional<uint32_t> mtu;
    const int64_t now_s = unix_ms() / 1000;

    if (*existing) {
        reg.approved = (*existing)->approved;
        reg.policy_json = (*existing)->policy_json;
    } else if (!parsed->invite.empty()) {
        // The network named in the code first: an invite for another network cannot verify with
        // this one's key, and "forged" would mislead.
        auto named = decode_invite(parsed->invite);
        if (named && named->network_id != id)
            return json_error(403, "invite_refused", "invite: it is for network '" + named->network_id + "', not '" + id + "'");
        auto code = verify_invite(parsed->invite, (*network)->invite_public_key);
        if (!code) return json_error(403, "invite_refused", code.error_message());
        if (code->expires_unix < now_s)
            return json_error(403, "invite_refused", "invite: expired at " + rfc3339(code->expires_unix * 1000));
        auto used = _db.consume_invite(code->invite_id, now_s * 1000);
        if (!used) return json_error(500, "store_error", used.error_message());
        if (*used == invite_status::already_used)
            return json_error(403, "invite_refused", "invite: already used (invites are single use)");
        if (*used == invite_status::unknown)
            return json_error(403, "invite_refused", "invite: not issued by this server (or revoked)");
        reg.approved = true; // an admin issued the invite
    } else if (!parsed->token.empty()) {
        auto config = verify_node_token(parsed->token, options.jwt, now_s);
        if (!config) return json_error(403, "token_refused", "token: " + config.error_message());
        if (!config->network_id.empty() && config->network_id != id)
            return json_error(403, "token_refused", "token: it is for network '" + config->network_id + "', not '" + id + "'");
        if (!config->subject.empty() && config->subject != parsed->public_key)
            return json_error(403, "token_refused", "token: it was issued for another node (sub)");
        reg.approved = config->auto_approve;
        reg.policy_json = policy_json(*config);
        mtu = config->mtu;
        if (!config->subnet.empty()) {
            // network_config.subnet: the node's address comes from this part of the network.
            auto inner = ip_prefix::parse(config->subnet);
            auto outer = ip_prefix::parse((*network)->cidr);
            if (!inner || !outer || inner->length() < outer->length() || !outer->contains(inner->address()))
                return json_error(403, "token_refused", "token: network_config.subnet " + config->subnet +
                                                            " is not inside network '" + id + "' (" + (*network)->cidr + ")");
            reg.subnet = inner->masked().to_string();
        }
    } else if (!options.require_admission) {
        reg.approved = options.auto_approve;
    } else {
        return json_error(403, "admission_required",
                          "network '" + id + "' admits new nodes with an invite code or a token; this request has neither");
    }

    auto outcome = _db.register_peer(reg, unix_ms());
    if (!outcome) return json_error(500, "store_error", outcome.error_message());
    if (outcome->status == register_status::no_network) return json_error(404, "not_found", "no network '" + id + "'");
    if (outcome->status == register_status::network_full)
        return json_error(409, "network_full",
                          reg.subnet.empty()
                              ? "network '" + id + "' has no free address left in " + (*network)->cidr
                              : "network '" + id + "' has no free address left in the token's subnet " + reg.subnet);
    const peer_record& peer = *outcome->peer;

    register_response response;
    response.peer_id = peer.peer_id;
    response.assigned_ip = ipv4_text(peer.ipv4);
    response.ipv6 = node_ipv6(id, peer.public_key).to_string();
    response.network_cidr = (*network)->cidr;
    response.ula_prefix = network_ula_prefix(id).to_string();
    response.server_public_key = crypto::key_to_base64(_server_public);
    response.approved = peer.approved;
    response.heartbeat_interval_s = options.heartbeat_interval_s;
    response.version = peer.version;
    response.mtu = mtu;
    const unsigned status = outcome->status == register_status::updated ? 200 : (peer.approved ? 201 : 202);
    return {status, to_json(response)};
}

asio::awaitable<api_response> api::node_heartbeat(const std::string& id, const api_request& request) {
    auto auth = authenticate_node(request);
    if (auth.refusal) co_return *auth.refusal;
    auto parsed = parse_heartbeat(request.body);
    if (!parsed) co_return json_error(400, "bad_request", parsed.error_message());
    // The counter is checked here (this replica) and in the heartbeat's own batch write (every
    // replica), so a heartbeat costs no transaction of its own.
    auto& seen = _last_counter[counter_slot(id, auth.key)];
    if (auth.counter <= seen)
        co_return json_error(401, "replayed", "replayed request: its counter is not newer than the last one");
    heartbeat beat;
    beat.network_id = id;
    beat.public_key = auth.key;
    beat.endpoints = parsed->endpoints;
    beat.request_counter = auth.counter;
    auto status = co_await _beats.record(std::move(beat));
    if (!status) co_return json_error(500, "store_error", status.error_message());
    if (*status == heartbeat_status::unknown_peer)
        co_return json_error(404, "not_registered", "this node is not registered in network '" + id + "'");
    if (*status == heartbeat_status::replayed)
        co_return json_error(401, "replayed", "replayed request: its counter is not newer than the last one");
    seen = std::max(seen, auth.counter);
    co_return api_response{200, R"({"success":true})"};
}

api_response api::list_peers(const std::string& id, const api_request& request) {
    std::optional<node_key> viewer;
    if (!is_admin(request)) {
        if (request.header(header_node).empty()) return admin_refusal(request);
        auto auth = authenticate_node(request);
        if (auth.refusal) return *auth.refusal;
        if (auto replay = check_replay(_db, _last_counter, id, auth.key, auth.counter, true)) return *replay;
        viewer = auth.key;
    }
    auto network = _db.get_network(id);
    if (!network) return json_error(500, "store_error", network.error_message());
    if (!*network) return json_error(404, "not_found", "no network '" + id + "'");
    auto peers = _db.list_peers(id);
    if (!peers) return json_error(500, "store_error", peers.error_message());
    std::sort(peers->begin(), peers->end(), [](const peer_record& a, const peer_record& b) { return a.ipv4 < b.ipv4; });
    const std::string ula = network_ula_prefix(id).to_string();
    std::vector<peer_view> views;
    if (!viewer) {
        for (const auto& peer : *peers) views.push_back(make_peer_view(peer, ula));
        return {200, peer_list_json(views)};
    }
    const auto self = std::find_if(peers->begin(), peers->end(),
                                   [&](const peer_record& p) { return p.public_key == *viewer; });
    if (self == peers->end()) return json_error(403, "forbidden", "this node is not registered in network '" + id + "'");
    if (!self->approved) return json_error(403, "pending", "this node is waiting for an admin's approval");
    const peer_policy own = parse_policy(self->policy_json);
    for (const auto& peer : *peers) {
        if (own.max_peers != 0 && views.size() >= own.max_peers) break;
        if (may_see(*viewer, own, peer, parse_policy(peer.policy_json))) views.push_back(make_peer_view(peer, ula));
    }
    return {200, peer_list_json(views)};
}

api_response api::remove_peer(const std::string& id, const std::string& peer, const api_request& request) {
    auto found = find_peer(id, peer);
    if (!is_admin(request)) {
        if (request.header(header_node).empty()) return admin_refusal(request);
        auto auth = authenticate_node(request);
        if (auth.refusal) return *auth.refusal;
        if (!found || found->public_key != auth.key)
            return json_error(403, "forbidden", "a node may remove only itself");
        if (auto replay = check_replay(_db, _last_counter, id, auth.key, auth.counter, true)) return *replay;
    }
    if (!found) return json_error(404, "not_found", "no peer '" + peer + "' in network '" + id + "'");
    auto removed = _db.remove_peer(id, found->public_key);
    if (!removed) return json_error(500, "store_error", removed.error_message());
    if (!*removed) return json_error(404, "not_found", "no peer '" + peer + "' in network '" + id + "'");
    return {200, nlohmann::json{{"removed", found->peer_id}}.dump()};
}

api::events_access api::authorize_events(const api_request& request) {
    events_access access;
    const auto path = split_path(target_path(request.target));
    access.network_id = path.size() > 4 ? percent_decode(path[4]) : std::string{};
    auto network = _db.get_network(access.network_id);
    if (!network) {
        access.refusal = json_error(500, "store_error", network.error_message());
        return access;
    }
    if (is_admin(request)) {
        if (!*network) access.refusal = json_error(404, "not_found", "no network '" + access.network_id + "'");
        return access;
    }
    if (request.header(header_node).empty()) {
        access.refusal = admin_refusal(request);
        return access;
    }
    auto auth = authenticate_node(request);
    if (auth.refusal) {
        access.refusal = auth.refusal;
        return access;
    }
    if (!*network) {
        access.refusal = json_error(404, "not_found", "no network '" + access.network_id + "'");
        return access;
    }
    auto self = _db.get_peer(access.network_id, auth.key);
    if (!self || !*self) {
        access.refusal = json_error(403, "forbidden", "this node is not registered in network '" + access.network_id + "'");
        return access;
    }
    if (!(*self)->approved) {
        access.refusal = json_error(403, "pending", "this node is waiting for an admin's approval");
        return access;
    }
    if (auto replay = check_replay(_db, _last_counter, access.network_id, auth.key, auth.counter, true)) {
        access.refusal = *replay;
        return access;
    }
    access.node = auth.key;
    return access;
}

} // namespace meshfwd::coord
