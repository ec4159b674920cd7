// Event fan-out (see event_hub.h). Server io_context thread only.
#include "coord/event_hub.h"

#include <algorithm>
#include <string>

#include "coord/node_address.h"
#include "coord/protocol.h"
#include "crypto/x25519.h"

namespace meshfwd::coord {

namespace {

constexpr std::size_t events_per_read = 10000;
constexpr int max_reads_per_change = 100;

std::string key_bytes(const node_key& key) { return {reinterpret_cast<const char*>(key.data()), key.size()}; }

bool allows(const peer_policy& policy, const node_key& key) {
    return policy.allowed_peers.empty() ||
           std::find(policy.allowed_peers.begin(), policy.allowed_peers.end(), key) != policy.allowed_peers.end();
}

shared_text event_text(const event_record& event, const std::string& ula_prefix) {
    event_message message;
    message.type = "event";
    message.version = event.version;
    message.kind = event_kind_name(event.kind);
    message.public_key = crypto::key_to_base64(event.public_key);
    if (event.peer && event.kind != event_kind::left) message.peer = make_peer_view(*event.peer, ula_prefix);
    return std::make_shared<const std::string>(to_json(message));
}

} // namespace

bool may_see(const node_key& viewer, const peer_policy& viewer_policy, const peer_record& peer,
             const peer_policy& policy_of_peer) {
    if (peer.public_key == viewer || !peer.approved) return false;
    return allows(viewer_policy, peer.public_key) && allows(policy_of_peer, viewer);
}

event_hub::event_hub(store& db) : _db(db) {}

result<shared_text> event_hub::snapshot_for(subscription& sub, const std::string& network_id, int64_t version) {
    // The version is read before the list: a change racing with this read is delivered again
    // later, which is harmless (events carry the peer's whole state).
    auto peers = _db.list_peers(network_id);
    if (!peers) return error{peers.error_message()};
    const std::string ula = network_ula_prefix(network_id).to_string();
    std::sort(peers->begin(), peers->end(), [](const peer_record& a, const peer_record& b) { return a.ipv4 < b.ipv4; });
    event_message message;
    message.type = "snapshot";
    message.version = version;
    sub.visible.clear();
    for (const auto& peer : *peers) {
        if (sub.viewer) {
            if (!may_see(*sub.viewer, sub.policy, peer, parse_policy(peer.policy_json))) continue;
            if (sub.restricted) {
                if (sub.policy.max_peers != 0 && sub.visible.size() >= sub.policy.max_peers) continue;
                sub.visible.insert(key_bytes(peer.public_key));
            }
        }
        message.peers.push_back(make_peer_view(peer, ula));
    }
    sub.version = version;
    return std::make_shared<const std::string>(to_json(message));
}

result<std::vector<shared_text>> event_hub::subscribe(event_subscriber* subscriber, const std::string& network_id,
                                                      const std::optional<node_key>& viewer, int64_t since) {
    auto sub = std::make_unique<subscription>();
    sub->subscriber = subscriber;
    sub->viewer = viewer;
    if (viewer) {
        auto self = _db.get_peer(network_id, *viewer);
        if (!self) return error{self.error_message()};
        if (*self) sub->policy = parse_policy((*self)->policy_json);
        sub->restricted = !sub->policy.allowed_peers.empty() || sub->policy.max_peers != 0;
    }
    auto current = _db.current_version(network_id);
    if (!current) return error{current.error_message()};

    auto [it, fresh] = _feeds.try_emplace(network_id);
    network_feed& feed = it->second;
    if (fresh || feed.subscriptions.empty()) feed.version = *current;

    std::vector<shared_text> first;
    bool snapshot = since <= 0 || sub->restricted || since > *current;
    if (!snapshot) {
        auto batch = _db.events_since(network_id, since, events_per_read);
        if (!batch) return error{batch.error_message()};
        if (batch->snapshot_needed || batch->events.size() >= events_per_read) {
            snapshot = true;
        } else {
            const std::string ula = network_ula_prefix(network_id).to_string();
            for (const auto& event : batch->events) {
                if (event.peer && sub->viewer &&
                    !may_see(*sub->viewer, sub->policy, *event.peer, parse_policy(event.peer->policy_json)))
                    continue;
                first.push_back(event_text(event, ula));
            }
            sub->version = std::max(batch->version, since);
        }
    }
    if (snapshot) {
        auto text = snapshot_for(*sub, network_id, *current);
        if (!text) return error{text.error_message()};
        first.push_back(std::move(*text));
    }
    _network_of[subscriber] = network_id;
    feed.subscriptions[subscriber] = std::move(sub);
    ++_subscriber_count;
    return first;
}

void event_hub::unsubscribe(event_subscriber* subscriber) {
    auto found = _network_of.find(subscriber);
    if (found == _network_of.end()) return;
    auto feed = _feeds.find(found->second);
    if (feed != _feeds.end() && feed->second.subscriptions.erase(subscriber) != 0) --_subscriber_count;
    _network_of.erase(found);
}

bool event_hub::admit(subscription& sub, const event_record& event, const peer_policy& policy_of_peer) {
    if (sub.version >= event.version) return false;
    if (!sub.viewer) return true; // the admin sees everything
    if (event.public_key == *sub.viewer) return false;
    const std::string key = key_bytes(event.public_key);
    if (event.kind == event_kind::left || !event.peer) {
        return !sub.restricted || sub.visible.erase(key) != 0;
    }
    const bool visible = may_see(*sub.viewer, sub.policy, *event.peer, policy_of_peer);
    if (!sub.restricted) return visible;
    if (!visible) return false;
    if (sub.visible.count(key) != 0) return true;
    if (sub.policy.max_peers != 0 && sub.visible.size() >= sub.policy.max_peers) return false;
    sub.visible.insert(key);
    return true;
}

void event_hub::resync(network_feed& feed, const std::string& network_id) {
    auto current = _db.current_version(network_id);
    if (!current) {
        ++_store_errors;
        return;
    }
    for (auto& [subscriber, sub] : feed.subscriptions) {
        auto text = snapshot_for(*sub, network_id, *current);
        if (!text) {
            ++_store_errors;
            continue;
        }
        subscriber->deliver(*text);
        ++_delivered;
    }
    feed.version = *current;
}

void event_hub::on_change(const std::string& network_id, int64_t version) {
    auto it = _feeds.find(network_id);
    if (it == _feeds.end() || it->second.subscriptions.empty()) return;
    network_feed& feed = it->second;
    const std::string ula = network_ula_prefix(network_id).to_string();
    std::vector<event_subscriber*> removed; // subscribers whose own key left the network
    for (int read = 0; read < max_reads_per_change && feed.version < version; ++read) {
        auto batch = _db.events_since(network_id, feed.version, events_per_read);
        if (!batch) {
            ++_store_errors;
            return;
        }
        if (batch->snapshot_needed) {
            resync(feed, network_id);
            return;
        }
        if (batch->events.empty()) break;
        for (const auto& event : batch->events) {
            const shared_text text = event_text(event, ula);
            const peer_policy policy_of_peer = event.peer ? parse_policy(event.peer->policy_json) : peer_policy{};
            for (auto& [subscriber, sub] : feed.subscriptions) {
                if (event.kind == event_kind::left && sub->viewer && *sub->viewer == event.public_key) {
                    removed.push_back(subscriber);
                    continue;
                }
                if (!admit(*sub, event, policy_of_peer)) continue;
                sub->version = event.version;
                subscriber->deliver(text);
                ++_delivered;
            }
        }
        feed.version = std::max(feed.version, batch->version);
    }
    for (event_subscriber* subscriber : removed) {
        unsubscribe(subscriber);
        subscriber->close("this node was removed from the network");
    }
}

void event_hub::drop_network(const std::string& network_id, std::string_view reason) {
    auto it = _feeds.find(network_id);
    if (it == _feeds.end()) return;
    auto subscriptions = std::move(it->second.subscriptions);
    _feeds.erase(it);
    for (auto& [subscriber, sub] : subscriptions) {
        _network_of.erase(subscriber);
        --_subscriber_count;
        subscriber->close(reason);
    }
}

} // namespace meshfwd::coord
