// Fans the store's versioned changes out to the nodes subscribed over WebSocket. One change
// costs O(1) work and bytes per subscriber: the event is read from the store once, serialized
// once, and the same bytes are queued on every subscriber allowed to see it (only subscribers
// with a whitelist or max_peers keep per-subscriber state). Nodes that reconnect say the version
// they saw and get only what changed since, or a snapshot when that is too old.
//
// Threads: the server's io_context thread only. The store's change listener may fire on another
// thread; the server posts it here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "coord/node_token.h"
#include "coord/store.h"
#include "lib/result.h"

namespace meshfwd::coord {

using shared_text = std::shared_ptr<const std::string>;

class event_subscriber {
public:
    virtual ~event_subscriber() = default;
    virtual void deliver(const shared_text& message) = 0;
    // The hub drops this subscriber (network deleted, own key removed); the transport closes.
    virtual void close(std::string_view reason) = 0;
};

// Whether `viewer` may learn `peer`: both must be approved, each one's whitelist must allow the
// other, and a node never learns itself.
bool may_see(const node_key& viewer, const peer_policy& viewer_policy, const peer_record& peer,
             const peer_policy& peer_policy);

class event_hub {
public:
    explicit event_hub(store& db);

    // Registers a subscriber on a network, as `viewer` (unset: the admin, who sees everything)
    // and returns what it must be sent first: the deltas since `since`, or a snapshot.
    result<std::vector<shared_text>> subscribe(event_subscriber* subscriber, const std::string& network_id,
                                               const std::optional<node_key>& viewer, int64_t since);
    void unsubscribe(event_subscriber* subscriber);

    // A change committed (by this replica or another): deliver what is new.
    void on_change(const std::string& network_id, int64_t version);
    void drop_network(const std::string& network_id, std::string_view reason);

    std::size_t subscribers() const noexcept { return _subscriber_count; }
    uint64_t messages_delivered() const noexcept { return _delivered; }
    uint64_t store_errors() const noexcept { return _store_errors; }

private:
    struct subscription {
        event_subscriber* subscriber = nullptr;
        std::optional<node_key> viewer;
        peer_policy policy;                      // the viewer's own whitelist and limits
        bool restricted = false;                 // policy has allowed_peers or max_peers
        std::unordered_set<std::string> visible; // restricted only: keys it currently sees
        int64_t version = 0;                     // the newest version it has been sent
    };
    struct network_feed {
        int64_t version = 0;                     // newest version delivered to this network
        std::unordered_map<event_subscriber*, std::unique_ptr<subscription>> subscriptions;
    };

    result<shared_text> snapshot_for(subscription& sub, const std::string& network_id, int64_t version);
    bool admit(subscription& sub, const event_record& event, const peer_policy& peer_policy);
    void resync(network_feed& feed, const std::string& network_id);

    store& _db;
    std::unordered_map<std::string, network_feed> _feeds;
    std::unordered_map<event_subscriber*, std::string> _network_of;
    std::size_t _subscriber_count = 0;
    uint64_t _delivered = 0;
    uint64_t _store_errors = 0;
};

} // namespace meshfwd::coord
