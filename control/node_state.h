// The control thread's state, shared by the files that make up the node (node.cc: set-up, sending,
// timers, the loop; node_handshake.cc; node_mailbox.cc; node_reload.cc; node_api.cc). Private to
// them: nothing else includes it. Control thread only, like everything it describes.
#pragma once

#include "control/api_server.h"
#include "control/uapi_server.h"
#include "control/config.h"
#include "control/coord_client.h"
#include "control/coord_peers.h"
#include "control/handshake_limiter.h"
#include "control/node.h"
#include "crypto/cookie.h"
#include "crypto/noise.h"
#include "dataplane/counters.h"
#include "dataplane/index_table.h"
#include "dataplane/mailbox.h"
#include "dataplane/snapshot.h"
#include "dataplane/tun_device.h"
#include "dataplane/udp_socket.h"
#include "dataplane/worker.h"
#include "lib/rcu.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace meshfwd::control {

using crypto::mono_clock;
using crypto::mono_time;
using dataplane::peer_runtime;
using dataplane::session;
namespace spec = crypto::spec;

using namespace std::chrono_literals;

// Packets held per peer while its handshake runs (the kernel's MAX_QUEUED_PACKETS is 1024;
// a smaller queue keeps memory bounded with many peers and is plenty for a first flight).
inline constexpr std::size_t max_staged_packets = 256;
// Handshake messages in one drain that put us "under load" (cookies required) for a second.
inline constexpr unsigned under_load_threshold = 64;
inline constexpr auto under_load_hold = 1s;

inline int64_t to_ns(mono_time t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

#define MESHFWD_HANDSHAKE_COUNTERS(X) \
    X(initiations_sent) X(initiations_received) X(responses_sent) X(responses_received) \
    X(cookie_replies_sent) X(cookie_replies_received) X(sessions_established)

struct handshake_counters {
#define X(name) uint64_t name = 0;
    MESHFWD_HANDSHAKE_COUNTERS(X)
#undef X
    std::map<std::string, uint64_t> rejected;
};

// Everything the control thread knows about one peer.
struct peer_state {
    control::peer_config cfg;
    std::unique_ptr<peer_runtime> rt;
    crypto::peer_config noise;
    std::unique_ptr<crypto::handshake> hs;
    std::unique_ptr<crypto::cookie_maker> cookie;
    std::unique_ptr<session> current, previous, next;
    // The handshake we initiated and are waiting on (its index is reserved in the table).
    std::optional<uint32_t> pending_index;
    bool handshaking = false;
    unsigned attempts = 0;
    mono_time last_initiation{};
    mono_time retransmit_at{};
    std::deque<std::vector<uint8_t>> staged;
    uint64_t handshakes = 0;
    int64_t latest_handshake_unix = 0;
    int64_t latest_handshake_unix_nsec = 0;  // the sub-second part, for the UAPI's last_handshake_time_nsec
    int64_t new_handshake_trigger_ns = 0;  // last_tx_data that already triggered one
    std::unique_ptr<dataplane::peer_endpoint> endpoint_owner;  // what rt->endpoint points to
    // The peer's lane ports, as it announced them in the current session: cleared at every new
    // session and when the peer stops being a meshfwd peer, so a peer that restarts as a plain
    // WireGuard (same key, no lanes) is never sent to ports it no longer has.
    std::vector<uint16_t> lanes;
    mono_time lanes_asked{};      // when we last asked for them
};

struct node::state {
    config cfg;
    node_options options;
    crypto::static_identity identity;
    std::unique_ptr<crypto::cookie_checker> cookies;
    dataplane::index_table<session> sessions{20};
    rcu_pointer<dataplane::snapshot> snap;
    uint64_t generation = 0;
    std::optional<dataplane::tun_device> tun;
    std::vector<dataplane::udp_socket> listen_sockets;
    std::vector<dataplane::udp_socket> lane_sockets;
    std::vector<uint16_t> lane_ports;
    bool dual_stack = false;
    std::vector<std::unique_ptr<dataplane::worker>> workers;
    std::atomic<bool> running{false};
    int wake_fd = -1;
    int signal_fd = -1;
    std::unique_ptr<api_server> api;         // null in meshfwd-wg (no HTTP API)
    std::unique_ptr<uapi_server> uapi;       // /var/run/wireguard/IFNAME.sock; null if it could not be served
    uint32_t fwmark = 0;                     // SO_MARK on every UDP socket (UAPI fwmark)
    uint32_t device_mtu_seen = 0;            // the link MTU last read by watch_device()
    std::map<crypto::public_key, std::unique_ptr<peer_state>> peers;
    std::unordered_map<uint32_t, peer_state*> pending;  // our initiation index -> peer
    std::unordered_set<const peer_runtime*> live;
    std::vector<peer_runtime*> slots;  // by slot
    std::vector<uint32_t> free_slots;
    // Freed after the next grace period (and mailbox drain).
    std::vector<std::unique_ptr<session>> retired_sessions;
    std::vector<std::unique_ptr<dataplane::peer_endpoint>> retired_endpoints;
    std::vector<std::unique_ptr<peer_runtime>> retired_peers;
    handshake_counters hs_counters;
    handshake_limiter limiter;
    mono_time under_load_until{};
    mono_time started = mono_clock::now();
    dataplane::worker_counters control_counters;  // drops the control thread counts
    std::string aead_name;
    std::vector<ip_prefix> device_routes;
    // send_transport's output: one transport message of a packet up to the device MTU.
    std::vector<uint8_t> transport_out;

    // --- meshcoord (node_coord.cc); unused without mesh.discovery.server
    std::unique_ptr<coord_client> coord;
    coord_peer_set coord_peers;  // what meshcoord shows us (cached, then live)
    std::optional<coord::register_response> coord_registration;
    std::vector<ip_prefix> coord_addresses;  // put on the device from the registration
    std::string coord_server;                // in use (or the cache's, before the first answer)
    bool coord_connected = false;
    std::string coord_error;                 // the last one; empty after a success
    bool coord_from_cache = false;           // what we run on came from the cache file
    bool coord_dirty = false;                // the cache file is behind
    mono_time coord_saved{};

    state(config c, node_options o) : cfg(std::move(c)), options(std::move(o)) {}
    ~state();

    unsigned control_block() const { return static_cast<unsigned>(workers.size()); }

    // --- set-up
    result<void> start();
    result<void> add_peer(const control::peer_config& pc);
    void remove_peer(peer_state& ps);
    void publish_snapshot();
    void sync_device_routes();

    // --- loop
    int run();
    void drain_mailboxes();
    void handle(dataplane::mailbox_message& m);
    void handle_handshake(const dataplane::mailbox_message& m, mono_time now);
    void handle_staged(peer_state& ps, std::span<const uint8_t> packet, mono_time now);
    void handle_endpoint_changed(peer_state& ps, const dataplane::socket_address& source,
                                 const dataplane::local_address& local);
    // A send from `gone` failed (the address was removed): no peer's replies leave from it now.
    void forget_local_source(const dataplane::local_address& gone);
    void handle_confirmed(peer_state& ps, session* s, mono_time now);
    void handle_mesh_frame(peer_state& ps, std::span<const uint8_t> frame, mono_time now);
    void on_timers(mono_time now);
    void reap();
    void reload();
    // The running peers made to match `desired` (static + coordinated): added, removed and changed
    // one by one; unchanged peers keep their sessions. Then the snapshot and routes. `why` prefixes
    // the log lines ("reload", "meshcoord").
    void apply_peers(const std::vector<control::peer_config>& desired, const char* why);

    // --- meshcoord (node_coord.cc)
    // Before the peers are added: the cache file's registration and peers, if any.
    void coord_load_cache();
    // After the workers run: the session thread.
    result<void> coord_start();
    void coord_poll();
    void coord_apply_registration(const coord::register_response& reg);
    void coord_apply_mtu(uint32_t mtu);
    // The static peers plus meshcoord's, as apply_peers wants them.
    std::vector<control::peer_config> desired_peers(const std::vector<control::peer_config>& static_peers);
    void coord_save_cache();
    nlohmann::json coord_json();

    // --- actions
    peer_state* find(const peer_runtime* rt);
    void send_initiation(peer_state& ps, mono_time now, bool retry);
    void give_up_handshake(peer_state& ps);
    void session_ready(peer_state& ps, mono_time now);
    bool send_transport(peer_state& ps, std::span<const uint8_t> payload, mono_time now);
    void send_keepalive(peer_state& ps, mono_time now);
    void send_lanes(peer_state& ps, mono_time now, bool ask_for_theirs = false);
    // From `from` when it is set (source-address stickiness, dataplane/local_address.h); when
    // that address is gone, forgets it and sends from the routing table's choice.
    void send_raw(std::span<const uint8_t> bytes, const dataplane::socket_address& to, unsigned worker,
                  dataplane::socket_role role, const dataplane::local_address& from);
    // `local`: our address the peer reached us on (empty for one set by the operator or config).
    void set_endpoint(peer_state& ps, const std::optional<dataplane::socket_address>& address,
                      const dataplane::local_address& local = {});
    void forget_lanes(peer_state& ps);
    // Makes `ep` (may be null) the peer's endpoint for the workers and retires the old one.
    void publish_endpoint(peer_state& ps, std::unique_ptr<dataplane::peer_endpoint> ep);
    void retire(std::unique_ptr<session>& s);
    void reject(std::string_view reason) { ++hs_counters.rejected[std::string(reason)]; }

    // --- sockets and workers (node_dataplane.cc)
    result<void> open_sockets(uint16_t port, std::vector<dataplane::udp_socket>& listen_out,
                              std::vector<dataplane::udp_socket>& lane_out, std::vector<uint16_t>& lane_ports_out);
    void apply_fwmark(int fd);
    result<void> start_workers();
    void stop_workers();
    // Stops the workers, swaps in sockets on new_port (when given), starts them again.
    result<void> restart_workers(std::optional<uint16_t> new_port);
    struct device_status {
        bool gone = false;
        uint32_t mtu = 0;  // 0: unknown
    };
    device_status probe_device();
    bool watch_device();  // false: the device was deleted

    // --- UAPI (node_uapi.cc)
    std::string uapi_answer(uapi::request& req);
    std::string uapi_get();
    std::pair<int, std::string> uapi_set(uapi::set_request& req);

    // --- API
    nlohmann::json status_json();
    nlohmann::json peers_json();
};


}  // namespace meshfwd::control
