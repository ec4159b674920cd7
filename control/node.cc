// The node and its control loop (see node.h). Control thread only, except where noted.
#include "control/node.h"

#include "control/api_server.h"
#include "control/config_yaml.h"
#include "control/handshake_limiter.h"
#include "control/peer_timers.h"
#include "crypto/cookie.h"
#include "crypto/noise.h"
#include "crypto/transport.h"
#include "dataplane/index_table.h"
#include "dataplane/pipeline.h"
#include "dataplane/snapshot.h"
#include "dataplane/tun_device.h"
#include "dataplane/udp_socket.h"
#include "dataplane/worker.h"
#include "lib/log.h"
#include "lib/rcu.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sodium.h>

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace meshfwd::control {
namespace {

using crypto::mono_clock;
using crypto::mono_time;
using dataplane::peer_runtime;
using dataplane::session;
namespace spec = crypto::spec;

using namespace std::chrono_literals;

// Packets held per peer while its handshake runs (the kernel's MAX_QUEUED_PACKETS is 1024;
// a smaller queue keeps memory bounded with many peers and is plenty for a first flight).
constexpr std::size_t max_staged_packets = 256;
// Handshake messages in one drain that put us "under load" (cookies required) for a second.
constexpr unsigned under_load_threshold = 64;
constexpr auto under_load_hold = 1s;
constexpr auto tick = 100ms;

int64_t to_ns(mono_time t) { return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count(); }

#define MESHFWD_HANDSHAKE_COUNTERS(X) \
    X(initiations_sent) X(initiations_received) X(responses_sent) X(responses_received) \
    X(cookie_replies_sent) X(cookie_replies_received) X(sessions_established)

struct handshake_counters {
#define X(name) uint64_t name = 0;
    MESHFWD_HANDSHAKE_COUNTERS(X)
#undef X
    std::map<std::string, uint64_t> rejected;
};

std::string prefixes_to_string(const std::vector<ip_prefix>& v) {
    std::string s;
    for (const auto& p : v) {
        s += (s.empty() ? "" : ", ") + p.to_string();
    }
    return s;
}

bool same_prefixes(std::vector<ip_prefix> a, std::vector<ip_prefix> b) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    return a == b;
}

}  // namespace

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
    int64_t new_handshake_trigger_ns = 0;  // last_tx_data that already triggered one
    std::unique_ptr<dataplane::peer_endpoint> endpoint_owner;  // what rt->endpoint points to
    std::vector<uint16_t> lanes;  // the peer's announced lane ports
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
    std::unique_ptr<api_server> api;
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
    void handle_endpoint_changed(peer_state& ps, const dataplane::socket_address& source);
    void handle_confirmed(peer_state& ps, session* s, mono_time now);
    void handle_mesh_frame(peer_state& ps, std::span<const uint8_t> frame, mono_time now);
    void on_timers(mono_time now);
    void reap();
    void reload();

    // --- actions
    peer_state* find(const peer_runtime* rt);
    void send_initiation(peer_state& ps, mono_time now, bool retry);
    void give_up_handshake(peer_state& ps);
    void session_ready(peer_state& ps, mono_time now);
    bool send_transport(peer_state& ps, std::span<const uint8_t> payload, mono_time now);
    void send_keepalive(peer_state& ps, mono_time now);
    void send_lanes(peer_state& ps, mono_time now, bool ask_for_theirs = false);
    void send_raw(std::span<const uint8_t> bytes, const dataplane::socket_address& to, unsigned worker,
                  dataplane::socket_role role);
    void set_endpoint(peer_state& ps, const std::optional<dataplane::socket_address>& address);
    void retire(std::unique_ptr<session>& s);
    void reject(std::string_view reason) { ++hs_counters.rejected[std::string(reason)]; }

    // --- API
    nlohmann::json status_json();
    nlohmann::json peers_json();
};

node::state::~state() {
    running.store(false);
    for (auto& w : workers) {
        w->join();
    }
    workers.clear();
    for (auto& [key, ps] : peers) {
        for (auto* s : {ps->current.get(), ps->previous.get(), ps->next.get()}) {
            if (s != nullptr) {
                s->keypair.wipe();
            }
        }
    }
    if (wake_fd >= 0) {
        ::close(wake_fd);
    }
    if (signal_fd >= 0) {
        ::close(signal_fd);
    }
}

// ------------------------------------------------------------------------------------------
// Set-up

result<void> node::state::start() {
    if (options.cores.empty()) {
        return make_error("no cores given");
    }
    if (options.cores.size() > dataplane::max_lanes) {
        return make_error("--cores names " + std::to_string(options.cores.size()) + " CPUs; at most " +
                          std::to_string(dataplane::max_lanes) + " workers are supported");
    }
    if (cfg.dataplane.port.type != port_type::uring) {
        return make_error(cfg.source.string() + ": dataplane.port.type: dpdk ports are not built into the data plane "
                          "yet; use uring");
    }
    if (cfg.mesh.device.type != device_type::tun) {
        return make_error(cfg.source.string() + ": mesh.device.type: tap is not supported by the data plane yet; use tun");
    }
    const uint32_t mtu = cfg.mesh.device.mtu;
    if (mtu > dataplane::packet_data_capacity - 32) {
        return make_error(cfg.source.string() + ": mesh.device.mtu: " + std::to_string(mtu) +
                          " is above the largest this build carries (" +
                          std::to_string(dataplane::packet_data_capacity - 32) + ")");
    }
    if (!identity.set_private_key(cfg.node.private_key)) {
        return make_error("node.private_key_file: the private key is all zeros");
    }
    cookies = std::make_unique<crypto::cookie_checker>(identity, mono_clock::now());
    const auto n_workers = static_cast<unsigned>(options.cores.size());

    auto tun_dev = dataplane::tun_device::create(
        {.name = cfg.mesh.device.name, .mtu = mtu, .queues = n_workers, .vnet_hdr = true});
    if (!tun_dev) {
        return make_error("device " + cfg.mesh.device.name + ": " + tun_dev.error_message());
    }
    tun.emplace(std::move(*tun_dev));
    for (const auto& a : cfg.node.addresses) {
        if (auto r = tun->add_address(a); !r) {
            return make_error("device " + tun->name() + ": address " + a.to_string() + ": " + r.error_message());
        }
    }
    if (auto r = tun->set_mtu_and_up(mtu); !r) {
        return make_error("device " + tun->name() + ": " + r.error_message());
    }

    for (unsigned i = 0; i < n_workers; ++i) {
        dataplane::udp_socket_options lo;
        lo.bind = endpoint(ip_address::v6({}), cfg.node.listen_port);
        lo.reuseport = true;
        auto ls = dataplane::open_udp_socket(lo);
        if (!ls) {
            return make_error("UDP port " + std::to_string(cfg.node.listen_port) + ": " + ls.error_message());
        }
        dual_stack = ls->dual_stack;
        dataplane::udp_socket_options la;
        la.bind = endpoint(ls->local.address(), 0);
        auto lane = dataplane::open_udp_socket(la);
        if (!lane) {
            return make_error("lane socket: " + lane.error_message());
        }
        lane_ports.push_back(lane->port);
        listen_sockets.push_back(std::move(*ls));
        lane_sockets.push_back(std::move(*lane));
    }

    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) {
        return make_error(std::string("eventfd: ") + std::strerror(errno));
    }
    for (const auto& pc : cfg.peers) {
        if (auto r = add_peer(pc); !r) {
            return r;
        }
    }
    publish_snapshot();
    sync_device_routes();

    running.store(true);
    const dataplane::worker_shared shared{&snap, &sessions, cookies.get(), wake_fd, &running};
    // For tests and comparisons: MESHFWD_NO_PBUF=1 receives into fixed buffers and copies (the
    // fallback for kernels without provided buffer rings); MESHFWD_PBUF_BUFFERS=N sets the
    // buffers per ring (a power of two; a tiny ring runs empty, which is what it is for).
    const char* no_pbuf = std::getenv("MESHFWD_NO_PBUF");
    const bool provided_buffers = no_pbuf == nullptr || *no_pbuf == '\0' || std::string_view(no_pbuf) == "0";
    const char* pbuf_buffers = std::getenv("MESHFWD_PBUF_BUFFERS");
    for (unsigned i = 0; i < n_workers; ++i) {
        dataplane::worker_settings ws;
        ws.id = i;
        ws.cpu = options.cores[i];
        ws.tun_fd = tun->queue_fd(i);
        ws.vnet_hdr = tun->vnet_hdr();
        ws.listen_fd = listen_sockets[i].fd;
        ws.lane_fd = lane_sockets[i].fd;
        ws.udp_gso = listen_sockets[i].gso && lane_sockets[i].gso;
        ws.mtu = mtu;
        ws.batch = cfg.dataplane.batch;
        ws.busy_poll = cfg.dataplane.poll == poll_mode::busy;
        ws.spin_budget = std::chrono::duration_cast<std::chrono::microseconds>(cfg.dataplane.spin);
        ws.crypto = cfg.dataplane.crypto;
        ws.provided_buffers = provided_buffers;
        if (pbuf_buffers != nullptr) {
            ws.ring_buffers = static_cast<uint32_t>(std::strtoul(pbuf_buffers, nullptr, 10));
        }
        workers.push_back(std::make_unique<dataplane::worker>(ws, shared));
    }
    // Peer counter blocks were sized for the workers plus the control thread before this; the
    // workers exist now, so the index of the control thread's block is valid.
    for (auto& w : workers) {
        if (auto r = w->start(); !r) {
            running.store(false);
            return r;
        }
    }
    aead_name = workers.front()->aead_name();
    spdlog::info("receive buffers: {}", workers.front()->receive_buffers());
    for (const auto& w : workers) {
        if (w->receive_buffers() != workers.front()->receive_buffers()) {
            spdlog::warn("worker {}: receive buffers: {}", w->settings().id, w->receive_buffers());
        }
    }

    api_server::providers providers{[this] { return status_json(); }, [this] { return peers_json(); }};
    auto server = api_server::start(cfg.api.listen, std::move(providers));
    if (!server) {
        return make_error("api.listen " + cfg.api.listen.to_string() + ": " + server.error_message());
    }
    api = std::move(*server);

    spdlog::info("meshfwd {} up: device {} (MTU {}, offloads: tso4 {} tso6 {} uso {}), UDP port {} + lanes, {} worker(s) "
                 "on CPUs {}, crypto {}, {} peer(s), API on {}",
                 MESHFWD_VERSION, tun->name(), mtu, tun->offloads().tso4, tun->offloads().tso6, tun->offloads().uso,
                 cfg.node.listen_port, n_workers, [&] {
                     std::string s;
                     for (unsigned c : options.cores) s += (s.empty() ? "" : ",") + std::to_string(c);
                     return s;
                 }(),
                 aead_name, peers.size(), cfg.api.listen.to_string());
    // Peers with a persistent keepalive (like wg) handshake at once.
    const auto now = mono_clock::now();
    for (auto& [key, ps] : peers) {
        if (ps->cfg.persistent_keepalive && ps->rt->endpoint.load()) {
            send_initiation(*ps, now, false);
        }
    }
    return {};
}

result<void> node::state::add_peer(const control::peer_config& pc) {
    auto ps = std::make_unique<peer_state>();
    ps->cfg.public_key = pc.public_key;
    ps->cfg.endpoint_address = pc.endpoint_address;
    ps->cfg.allowed_ips = pc.allowed_ips;
    ps->cfg.persistent_keepalive = pc.persistent_keepalive;
    ps->cfg.preshared_key_file = pc.preshared_key_file;
    if (pc.preshared_key) {
        ps->cfg.preshared_key = pc.preshared_key->clone();
    }
    ps->cfg.meshfwd = pc.meshfwd;
    if (!ps->noise.init(identity, pc.public_key, pc.preshared_key ? &*pc.preshared_key : nullptr)) {
        return make_error("peer " + crypto::key_to_base64(pc.public_key) +
                          ": its public key is a low-order point; no handshake can succeed");
    }
    uint32_t slot;
    if (!free_slots.empty()) {
        slot = free_slots.back();
        free_slots.pop_back();
    } else {
        slot = static_cast<uint32_t>(slots.size());
        slots.push_back(nullptr);
    }
    // One counter block per worker plus one for the control thread.
    const unsigned blocks = static_cast<unsigned>(options.cores.size()) + 1;
    ps->rt = std::make_unique<peer_runtime>(slot, pc.public_key, pc.meshfwd, blocks);
    ps->hs = std::make_unique<crypto::handshake>(identity, ps->noise);
    ps->cookie = std::make_unique<crypto::cookie_maker>(ps->noise);
    slots[slot] = ps->rt.get();
    live.insert(ps->rt.get());
    if (pc.endpoint_address) {
        set_endpoint(*ps, dataplane::socket_address::from(*pc.endpoint_address, dual_stack));
    }
    peers.emplace(pc.public_key, std::move(ps));
    return {};
}

void node::state::retire(std::unique_ptr<session>& s) {
    if (!s) {
        return;
    }
    sessions.erase(s->keypair.local_index);
    retired_sessions.push_back(std::move(s));
}

void node::state::remove_peer(peer_state& ps) {
    retire(ps.current);
    retire(ps.previous);
    retire(ps.next);
    ps.rt->current.store(nullptr, std::memory_order_release);
    if (ps.pending_index) {
        sessions.erase(*ps.pending_index);
        pending.erase(*ps.pending_index);
    }
    slots[ps.rt->slot] = nullptr;
    free_slots.push_back(ps.rt->slot);
    live.erase(ps.rt.get());
    if (ps.endpoint_owner) {
        retired_endpoints.push_back(std::move(ps.endpoint_owner));
    }
    retired_peers.push_back(std::move(ps.rt));
}

void node::state::publish_snapshot() {
    auto s = std::make_unique<dataplane::snapshot>();
    s->peers = slots;
    std::vector<dataplane::allowed_ips::entry> entries;
    for (const auto& [key, ps] : peers) {
        for (const auto& p : ps->cfg.allowed_ips) {
            entries.push_back({p, ps->rt->slot});
        }
    }
    s->routes = dataplane::allowed_ips::build(entries);
    s->generation = ++generation;
    snap.publish(std::unique_ptr<const dataplane::snapshot>(s.release()));
}

// Routes to allowed IPs outside the device's own prefixes (as wg-quick adds them).
void node::state::sync_device_routes() {
    std::vector<ip_prefix> wanted;
    for (const auto& [key, ps] : peers) {
        for (const auto& p : ps->cfg.allowed_ips) {
            bool covered = false;
            for (const auto& a : cfg.node.addresses) {
                const ip_prefix net = a.masked();
                covered = covered || (net.address().family() == p.address().family() && net.length() <= p.length() &&
                                      net.contains(p.address()));
            }
            if (!covered && std::find(wanted.begin(), wanted.end(), p) == wanted.end()) {
                wanted.push_back(p);
            }
        }
    }
    for (const auto& p : device_routes) {
        if (std::find(wanted.begin(), wanted.end(), p) == wanted.end()) {
            if (auto r = tun->remove_route(p); !r) {
                spdlog::warn("route {} via {}: {}", p.to_string(), tun->name(), r.error_message());
            }
        }
    }
    for (const auto& p : wanted) {
        if (std::find(device_routes.begin(), device_routes.end(), p) == device_routes.end()) {
            if (auto r = tun->add_route(p); !r) {
                spdlog::warn("route {} via {}: {}", p.to_string(), tun->name(), r.error_message());
            }
        }
    }
    device_routes = std::move(wanted);
}

void node::state::set_endpoint(peer_state& ps, const std::optional<dataplane::socket_address>& address) {
    std::unique_ptr<dataplane::peer_endpoint> ep;
    if (address) {
        ep = std::make_unique<dataplane::peer_endpoint>();
        ep->address = *address;
        // Lanes belong to the peer's host: keep them while it stays on the same address.
        if (ps.endpoint_owner && ps.endpoint_owner->address.same_host(*address)) {
            ep->lanes = ps.endpoint_owner->lanes;
            ep->lane_count = ps.endpoint_owner->lane_count;
        }
    }
    ps.rt->endpoint.store(ep.get(), std::memory_order_release);
    if (ps.endpoint_owner) {
        retired_endpoints.push_back(std::move(ps.endpoint_owner));
    }
    ps.endpoint_owner = std::move(ep);
}

peer_state* node::state::find(const peer_runtime* rt) {
    if (rt == nullptr || !live.contains(rt)) {
        return nullptr;
    }
    auto it = peers.find(rt->public_key);
    return it != peers.end() && it->second->rt.get() == rt ? it->second.get() : nullptr;
}

// ------------------------------------------------------------------------------------------
// Sending from the control thread (handshakes, keepalives, staged packets, mesh frames): plain
// sendto on a worker's socket, which the kernel allows concurrently with the worker's io_uring.

void node::state::send_raw(std::span<const uint8_t> bytes, const dataplane::socket_address& to, unsigned worker,
                           dataplane::socket_role role) {
    const unsigned w = worker < listen_sockets.size() ? worker : 0;
    const int fd = role == dataplane::socket_role::lane ? lane_sockets[w].fd : listen_sockets[w].fd;
    if (::sendto(fd, bytes.data(), bytes.size(), MSG_DONTWAIT, to.get(), to.length) < 0) {
        control_counters.drop(dataplane::drop_reason::tx_error);
    }
}

bool node::state::send_transport(peer_state& ps, std::span<const uint8_t> payload, mono_time now) {
    session* s = ps.current.get();
    const dataplane::peer_endpoint* ep = ps.endpoint_owner.get();
    if (s == nullptr || ep == nullptr) {
        return false;
    }
    std::array<uint8_t, 2048> out{};
    const auto r = crypto::encapsulate(s->keypair, payload, out, now, cfg.mesh.device.mtu);
    if (r.reason != crypto::transport_reason::ok) {
        if (r.reason == crypto::transport_reason::expired || r.reason == crypto::transport_reason::counter_exhausted) {
            ps.rt->rekey_wanted.store(true);
        }
        return false;
    }
    send_raw({out.data(), r.size}, ep->address, 0, dataplane::socket_role::listen);
    auto& pc = ps.rt->counters[control_block()];
    pc.tx_packets.add(1);
    pc.tx_bytes.add(r.size);
    pc.touch(pc.last_tx_ns, to_ns(now));
    if (!payload.empty()) {
        pc.touch(pc.last_tx_data_ns, to_ns(now));
    }
    return true;
}

void node::state::send_keepalive(peer_state& ps, mono_time now) {
    if (ps.current) {
        send_transport(ps, {}, now);
    } else {
        // No session: a keepalive is what starts one (the kernel stages it the same way).
        handle_staged(ps, {}, now);
    }
}

void node::state::send_lanes(peer_state& ps, mono_time now, bool ask_for_theirs) {
    if (!ps.cfg.meshfwd || lane_ports.empty()) {
        return;
    }
    std::vector<uint8_t> frame{dataplane::mesh_frame_lanes, 1, static_cast<uint8_t>(lane_ports.size()),
                               static_cast<uint8_t>(ask_for_theirs ? dataplane::lanes_flag_request : 0)};
    for (uint16_t port : lane_ports) {
        frame.push_back(static_cast<uint8_t>(port >> 8));
        frame.push_back(static_cast<uint8_t>(port));
    }
    send_transport(ps, frame, now);
}

// ------------------------------------------------------------------------------------------
// Handshakes

void node::state::send_initiation(peer_state& ps, mono_time now, bool retry) {
    const dataplane::peer_endpoint* ep = ps.endpoint_owner.get();
    if (ep == nullptr) {
        return;  // nowhere to send; the peer must reach us first
    }
    if (!retry) {
        // The kernel sends at most one initiation per REKEY_TIMEOUT unless retransmitting.
        if (ps.handshaking || (ps.last_initiation != mono_time{} && now - ps.last_initiation < spec::rekey_timeout)) {
            return;
        }
        ps.attempts = 0;
    } else {
        ++ps.attempts;  // the timers give up past max_handshake_retries
    }
    if (ps.pending_index) {
        sessions.erase(*ps.pending_index);
        pending.erase(*ps.pending_index);
        ps.pending_index.reset();
    }
    auto index = sessions.insert(nullptr);
    if (!index) {
        reject("index_table_full");
        return;
    }
    crypto::message_initiation msg;
    if (const auto r = ps.hs->create_initiation(msg, *index); r != crypto::handshake_reason::ok) {
        sessions.erase(*index);
        reject(crypto::to_string(r));
        return;
    }
    ps.cookie->add_macs(msg, now);
    send_raw(crypto::as_bytes(msg), ep->address, 0, dataplane::socket_role::listen);
    ps.pending_index = *index;
    pending[*index] = &ps;
    ps.handshaking = true;
    ps.last_initiation = now;
    // REKEY_TIMEOUT plus up to a third of a second of jitter, as the kernel does.
    ps.retransmit_at = now + spec::rekey_timeout + std::chrono::milliseconds(randombytes_uniform(334));
    ++hs_counters.initiations_sent;
    spdlog::debug("peer {}: handshake initiation sent to {}{}", crypto::key_to_base64(ps.cfg.public_key),
                  ep->address.to_endpoint().to_string(), retry ? " (retry)" : "");
}

void node::state::give_up_handshake(peer_state& ps) {
    spdlog::info("peer {}: no handshake after {} initiations; dropping {} staged packet(s)",
                 crypto::key_to_base64(ps.cfg.public_key), ps.attempts + 1, ps.staged.size());
    control_counters.drop(dataplane::drop_reason::no_session_queue_full, ps.staged.size());
    ps.staged.clear();
    ps.hs->clear();  // its ephemeral key is of no more use: a late response finds no pending index
    ps.handshaking = false;
    ps.attempts = 0;
    if (ps.pending_index) {
        sessions.erase(*ps.pending_index);
        pending.erase(*ps.pending_index);
        ps.pending_index.reset();
    }
}

// A session became usable for sending: flush what waited for it, or confirm it with a keepalive.
void node::state::session_ready(peer_state& ps, mono_time now) {
    bool sent_any = false;
    while (!ps.staged.empty()) {
        sent_any = send_transport(ps, ps.staged.front(), now) || sent_any;
        ps.staged.pop_front();
    }
    send_lanes(ps, now);
    if (!sent_any && ps.current && ps.current->keypair.is_initiator) {
        send_transport(ps, {}, now);  // key confirmation for the responder
    }
}

void node::state::handle_handshake(const dataplane::mailbox_message& m, mono_time now) {
    const std::span<const uint8_t> bytes(m.payload, m.length);
    const endpoint source_ep = m.source.to_endpoint();
    const auto source = crypto::cookie_source::from(source_ep.address().bytes(), source_ep.port());
    const uint32_t type = crypto::load_le32(m.payload);

    if (type == spec::message_cookie_reply_type) {
        crypto::message_cookie_reply reply;
        if (crypto::parse_cookie_reply(bytes, reply) != crypto::message_reason::ok) {
            reject("bad_cookie_reply");
            return;
        }
        auto it = pending.find(reply.receiver_index.get());
        if (it == pending.end()) {
            reject("cookie_reply_unknown_index");
            return;
        }
        const auto r = it->second->cookie->consume_cookie_reply(reply, now);
        if (r == crypto::cookie_reason::ok) {
            ++hs_counters.cookie_replies_received;
        } else {
            reject(crypto::to_string(r));
        }
        return;
    }

    // Under load, only sources that prove their address with a cookie (mac2) get work done,
    // and each source address is rate limited.
    if (now < under_load_until) {
        const auto r = cookies->check_macs(bytes, source, now);
        if (r == crypto::cookie_reason::no_cookie) {
            crypto::message_cookie_reply reply;
            const uint32_t sender = crypto::load_le32(m.payload + 4);
            if (cookies->create_cookie_reply(reply, bytes, sender, source, now)) {
                send_raw(crypto::as_bytes(reply), m.source, m.worker, m.role);
                ++hs_counters.cookie_replies_sent;
            }
            return;
        }
        if (r != crypto::cookie_reason::ok) {
            reject(crypto::to_string(r));
            return;
        }
        if (!limiter.allow(source_ep.address(), now)) {
            control_counters.drop(dataplane::drop_reason::rate_limited);
            return;
        }
    }

    if (type == spec::message_initiation_type) {
        crypto::message_initiation msg;
        if (crypto::parse_initiation(bytes, msg) != crypto::message_reason::ok) {
            reject("bad_initiation");
            return;
        }
        ++hs_counters.initiations_received;
        const auto result = crypto::consume_initiation(
            identity, msg,
            [this](const crypto::public_key& key) -> crypto::handshake* {
                auto it = peers.find(key);
                return it == peers.end() ? nullptr : it->second->hs.get();
            },
            now);
        if (result.reason != crypto::handshake_reason::ok) {
            reject(crypto::to_string(result.reason));
            static log_rate_limiter limit(5);
            if (limit.allow()) {
                spdlog::debug("handshake initiation from {} refused: {}", source_ep.to_string(),
                              crypto::describe(result.reason));
            }
            return;
        }
        auto it = peers.find(result.peer->peer().remote_static);
        if (it == peers.end()) {
            return;
        }
        peer_state& ps = *it->second;
        auto index = sessions.insert(nullptr);
        if (!index) {
            reject("index_table_full");
            ps.hs->clear();
            return;
        }
        crypto::message_response response;
        if (const auto r = ps.hs->create_response(response, *index); r != crypto::handshake_reason::ok) {
            sessions.erase(*index);
            reject(crypto::to_string(r));
            return;
        }
        ps.cookie->add_macs(response, now);
        auto s = std::make_unique<session>();
        s->peer = ps.rt.get();
        if (!ps.hs->begin_session(s->keypair, now)) {
            sessions.erase(*index);
            reject("begin_session");
            return;
        }
        // Endpoint first: the response goes where the initiation came from.
        if (!ps.endpoint_owner || !(ps.endpoint_owner->address == m.source)) {
            set_endpoint(ps, m.source);
        }
        // Responder: the new keypair waits in "next" until the initiator uses it. It must be in
        // the index table before the response leaves: the initiator sends data at once.
        s->awaiting_confirmation.store(true, std::memory_order_relaxed);
        retire(ps.previous);
        retire(ps.next);
        ps.next = std::move(s);
        sessions.assign(*index, ps.next.get());
        send_raw(crypto::as_bytes(response), m.source, m.worker, m.role);
        ++hs_counters.responses_sent;
        spdlog::debug("peer {}: handshake response sent to {}", crypto::key_to_base64(ps.cfg.public_key),
                      source_ep.to_string());
        return;
    }

    if (type == spec::message_response_type) {
        crypto::message_response msg;
        if (crypto::parse_response(bytes, msg) != crypto::message_reason::ok) {
            reject("bad_response");
            return;
        }
        auto it = pending.find(msg.receiver_index.get());
        if (it == pending.end()) {
            reject("wrong_index");
            return;
        }
        peer_state& ps = *it->second;
        if (const auto r = ps.hs->consume_response(msg); r != crypto::handshake_reason::ok) {
            reject(crypto::to_string(r));
            return;
        }
        ++hs_counters.responses_received;
        auto s = std::make_unique<session>();
        s->peer = ps.rt.get();
        if (!ps.hs->begin_session(s->keypair, now)) {
            reject("begin_session");
            return;
        }
        const uint32_t index = *ps.pending_index;
        pending.erase(index);
        ps.pending_index.reset();
        ps.handshaking = false;
        ps.attempts = 0;
        if (!ps.endpoint_owner || !ps.endpoint_owner->matches(m.source)) {
            set_endpoint(ps, m.source);
        }
        // Initiator: the new keypair is current at once (kernel begin_session).
        if (ps.next) {
            retire(ps.previous);
            ps.previous = std::move(ps.next);
            retire(ps.current);
        } else {
            retire(ps.previous);
            ps.previous = std::move(ps.current);
        }
        ps.current = std::move(s);
        sessions.assign(index, ps.current.get());
        ps.rt->current.store(ps.current.get(), std::memory_order_release);
        ps.rt->rekey_wanted.store(false, std::memory_order_relaxed);
        ++ps.handshakes;
        ++hs_counters.sessions_established;
        ps.latest_handshake_unix = std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch()).count();
        spdlog::info("peer {}: session established (we initiated) with {}", crypto::key_to_base64(ps.cfg.public_key),
                     source_ep.to_string());
        session_ready(ps, now);
        return;
    }
}

void node::state::handle_confirmed(peer_state& ps, session* s, mono_time now) {
    if (ps.next.get() != s) {
        return;  // superseded meanwhile
    }
    s->awaiting_confirmation.store(false, std::memory_order_relaxed);
    retire(ps.previous);
    ps.previous = std::move(ps.current);
    ps.current = std::move(ps.next);
    ps.rt->current.store(ps.current.get(), std::memory_order_release);
    ps.rt->rekey_wanted.store(false, std::memory_order_relaxed);
    ++ps.handshakes;
    ++hs_counters.sessions_established;
    ps.latest_handshake_unix =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    spdlog::info("peer {}: session established (peer initiated)", crypto::key_to_base64(ps.cfg.public_key));
    session_ready(ps, now);
}

void node::state::handle_staged(peer_state& ps, std::span<const uint8_t> packet, mono_time now) {
    if (ps.current && !ps.current->keypair.expired(now)) {
        // A session appeared while the packet was on its way here.
        send_transport(ps, packet, now);
        return;
    }
    if (ps.staged.size() >= max_staged_packets) {
        ps.staged.pop_front();
        control_counters.drop(dataplane::drop_reason::no_session_queue_full);
    }
    ps.staged.emplace_back(packet.begin(), packet.end());
    if (!ps.handshaking) {
        send_initiation(ps, now, false);
    }
}

void node::state::handle_endpoint_changed(peer_state& ps, const dataplane::socket_address& source) {
    if (ps.endpoint_owner && ps.endpoint_owner->matches(source)) {
        return;
    }
    spdlog::info("peer {}: endpoint {} -> {}", crypto::key_to_base64(ps.cfg.public_key),
                 ps.endpoint_owner ? ps.endpoint_owner->address.to_endpoint().to_string() : std::string("(none)"),
                 source.to_endpoint().to_string());
    // A meshfwd peer that moved to a new address without port translation keeps its ports: its
    // packets come from one of its lanes (or its main port), so keep both and only move the host.
    const dataplane::peer_endpoint* old = ps.endpoint_owner.get();
    // A meshfwd peer sending from another port of the same host: those are its lanes, and its
    // announcement did not reach us (lost, or it raced the session). Ask for it, at most once a second.
    if (ps.cfg.meshfwd && old != nullptr && old->lane_count == 0 && old->address.same_host(source)) {
        const mono_time now = mono_clock::now();
        if (now - ps.lanes_asked >= 1s) {
            ps.lanes_asked = now;
            send_lanes(ps, now, true);
        }
    }
    if (old != nullptr && old->lane_count > 0) {
        dataplane::peer_endpoint probe = *old;
        probe.address = source;
        probe.address.set_port(old->address.port());
        if (probe.matches(source)) {
            auto ep = std::make_unique<dataplane::peer_endpoint>(probe);
            ps.rt->endpoint.store(ep.get(), std::memory_order_release);
            retired_endpoints.push_back(std::move(ps.endpoint_owner));
            ps.endpoint_owner = std::move(ep);
            return;
        }
    }
    set_endpoint(ps, source);
}

void node::state::handle_mesh_frame(peer_state& ps, std::span<const uint8_t> frame, mono_time now) {
    if (frame.size() >= 4 && frame[0] == dataplane::mesh_frame_lanes && frame[1] == 1) {
        const std::size_t count = std::min<std::size_t>(frame[2], dataplane::max_lanes);
        if (frame.size() < 4 + 2 * count || !ps.endpoint_owner) {
            reject("bad_lanes_frame");
            return;
        }
        auto ep = std::make_unique<dataplane::peer_endpoint>(*ps.endpoint_owner);
        ep->lane_count = 0;
        for (std::size_t i = 0; i < count; ++i) {
            const uint16_t port = static_cast<uint16_t>((frame[4 + 2 * i] << 8) | frame[5 + 2 * i]);
            if (port != 0) {
                ep->lanes[ep->lane_count++] = port;
            }
        }
        ps.lanes.assign(ep->lanes.begin(), ep->lanes.begin() + ep->lane_count);
        ps.rt->endpoint.store(ep.get(), std::memory_order_release);
        retired_endpoints.push_back(std::move(ps.endpoint_owner));
        ps.endpoint_owner = std::move(ep);
        spdlog::debug("peer {}: {} lane(s) announced", crypto::key_to_base64(ps.cfg.public_key), ps.lanes.size());
        if ((frame[3] & dataplane::lanes_flag_request) != 0) {
            send_lanes(ps, now);
        }
        return;
    }
    reject("unknown_mesh_frame");
}

void node::state::handle(dataplane::mailbox_message& m) {
    const mono_time now = mono_clock::now();
    if (m.kind == dataplane::mailbox_kind::handshake) {
        handle_handshake(m, now);
        return;
    }
    peer_state* ps = find(m.peer);
    if (ps == nullptr) {
        return;  // removed meanwhile
    }
    switch (m.kind) {
    case dataplane::mailbox_kind::staged_packet: handle_staged(*ps, {m.payload, m.length}, now); break;
    case dataplane::mailbox_kind::endpoint_changed: handle_endpoint_changed(*ps, m.source); break;
    case dataplane::mailbox_kind::session_confirmed: handle_confirmed(*ps, m.sess, now); break;
    case dataplane::mailbox_kind::mesh_frame: handle_mesh_frame(*ps, {m.payload, m.length}, now); break;
    case dataplane::mailbox_kind::handshake: break;
    }
}

void node::state::drain_mailboxes() {
    unsigned handshakes = 0;
    for (auto& w : workers) {
        auto& box = w->box();
        // Bounded per call so one flooding worker cannot starve timers and the API.
        for (unsigned i = 0; i < dataplane::mailbox::capacity; ++i) {
            dataplane::mailbox_message* m = box.receive();
            if (m == nullptr) {
                break;
            }
            if (m->kind == dataplane::mailbox_kind::handshake) {
                ++handshakes;
                if (handshakes >= under_load_threshold) {
                    under_load_until = mono_clock::now() + under_load_hold;
                }
            }
            handle(*m);
            box.release(m);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Timers: the kernel's per-peer timers, evaluated every tick from the workers' timestamps.

void node::state::on_timers(mono_time now) {
    for (auto& [key, psp] : peers) {
        peer_state& ps = *psp;
        peer_timer_state t;
        t.now = now;
        for (unsigned b = 0; b < ps.rt->counter_block_count; ++b) {
            const auto& c = ps.rt->counters[b];
            t.last_rx_ns = std::max(t.last_rx_ns, c.last_rx_ns.load(std::memory_order_relaxed));
            t.last_rx_data_ns = std::max(t.last_rx_data_ns, c.last_rx_data_ns.load(std::memory_order_relaxed));
            t.last_tx_ns = std::max(t.last_tx_ns, c.last_tx_ns.load(std::memory_order_relaxed));
            t.last_tx_data_ns = std::max(t.last_tx_data_ns, c.last_tx_data_ns.load(std::memory_order_relaxed));
        }
        t.handshaking = ps.handshaking;
        t.retransmit_at = ps.retransmit_at;
        t.retries = ps.attempts;
        t.rekey_wanted = ps.rt->rekey_wanted.exchange(false, std::memory_order_relaxed);
        const auto birth = [](const std::unique_ptr<session>& s) -> std::optional<mono_time> {
            return s ? std::optional(s->keypair.birth) : std::nullopt;
        };
        t.current_birth = birth(ps.current);
        t.previous_birth = birth(ps.previous);
        t.next_birth = birth(ps.next);
        t.persistent_keepalive = ps.cfg.persistent_keepalive;
        t.has_endpoint = ps.endpoint_owner != nullptr;
        t.new_handshake_trigger_ns = ps.new_handshake_trigger_ns;

        const peer_timer_actions due = due_timers(t);
        if (due.give_up_handshake) {
            give_up_handshake(ps);
        }
        if (due.retransmit_initiation) {
            send_initiation(ps, now, true);
        }
        if (due.initiate_rekey) {
            send_initiation(ps, now, false);
        }
        if (due.passive_keepalive) {
            send_keepalive(ps, now);
        }
        if (due.new_handshake) {
            ps.new_handshake_trigger_ns = t.last_tx_data_ns;
            spdlog::debug("peer {}: no reply for {} s after data; new handshake",
                          crypto::key_to_base64(ps.cfg.public_key),
                          (spec::keepalive_timeout + spec::rekey_timeout).count());
            send_initiation(ps, now, false);
        }
        if (due.persistent_keepalive) {
            send_keepalive(ps, now);
        }
        if (due.retire_previous) {
            retire(ps.previous);
        }
        if (due.retire_next) {
            retire(ps.next);
        }
        if (due.zero_current) {
            spdlog::debug("peer {}: no new session for {} s; zeroing keys", crypto::key_to_base64(ps.cfg.public_key),
                          (3 * spec::reject_after_time).count());
            ps.rt->current.store(nullptr, std::memory_order_release);
            retire(ps.current);
            if (!ps.handshaking) {
                ps.hs->clear();  // and any half-done handshake's secrets, as the kernel does
            }
        }
    }
}

// Frees what was retired, once no worker can still hold it.
void node::state::reap() {
    if (retired_sessions.empty() && retired_endpoints.empty() && retired_peers.empty()) {
        return;
    }
    rcu_synchronize();
    // Messages posted before the grace period may still name retired objects: handle them
    // while those objects still exist (find() refuses dead peers).
    drain_mailboxes();
    for (auto& s : retired_sessions) {
        s->keypair.wipe();
    }
    retired_sessions.clear();
    retired_endpoints.clear();
    retired_peers.clear();
}

// ------------------------------------------------------------------------------------------
// Reload (SIGHUP)

void node::state::reload() {
    spdlog::info("SIGHUP: reloading {}", cfg.source.string());
    auto fresh = load_config(cfg.source, load_options{});
    if (!fresh) {
        spdlog::error("reload refused, still running the previous configuration: {}", fresh.error_message());
        return;
    }
    config& n = *fresh;
    const auto warn_restart = [](const char* what) {
        spdlog::warn("reload: {} changed; restart meshfwd to apply it (kept the running value)", what);
    };
    if (!(n.node.public_key == cfg.node.public_key)) warn_restart("node.private_key_file (the node's key)");
    if (n.node.listen_port != cfg.node.listen_port) warn_restart("node.listen_port");
    if (!same_prefixes(n.node.addresses, cfg.node.addresses)) warn_restart("node.address");
    if (n.mesh.device.name != cfg.mesh.device.name || n.mesh.device.mtu != cfg.mesh.device.mtu) warn_restart("mesh.device");
    if (!(n.api.listen == cfg.api.listen)) warn_restart("api.listen");

    unsigned added = 0, removed = 0, changed = 0;
    const mono_time now = mono_clock::now();
    // Removed peers.
    for (auto it = peers.begin(); it != peers.end();) {
        const bool keep = std::any_of(n.peers.begin(), n.peers.end(),
                                      [&](const control::peer_config& p) { return p.public_key == it->first; });
        if (keep) {
            ++it;
            continue;
        }
        spdlog::info("reload: peer {} removed", crypto::key_to_base64(it->first));
        remove_peer(*it->second);
        it = peers.erase(it);
        ++removed;
    }
    // Added and changed peers.
    for (const auto& p : n.peers) {
        auto it = peers.find(p.public_key);
        if (it == peers.end()) {
            if (auto r = add_peer(p); !r) {
                spdlog::error("reload: {}", r.error_message());
                continue;
            }
            spdlog::info("reload: peer {} added ({})", crypto::key_to_base64(p.public_key),
                         prefixes_to_string(p.allowed_ips));
            ++added;
            continue;
        }
        peer_state& ps = *it->second;
        bool diff = false;
        if (!same_prefixes(ps.cfg.allowed_ips, p.allowed_ips)) {
            ps.cfg.allowed_ips = p.allowed_ips;
            diff = true;
        }
        if (p.endpoint_address != ps.cfg.endpoint_address) {
            ps.cfg.endpoint_address = p.endpoint_address;
            if (p.endpoint_address) {
                set_endpoint(ps, dataplane::socket_address::from(*p.endpoint_address, dual_stack));
            }
            diff = true;
        }
        if (p.persistent_keepalive != ps.cfg.persistent_keepalive) {
            ps.cfg.persistent_keepalive = p.persistent_keepalive;
            diff = true;
        }
        if (p.meshfwd != ps.cfg.meshfwd) {
            ps.cfg.meshfwd = p.meshfwd;
            ps.rt->meshfwd.store(p.meshfwd);
            diff = true;
        }
        const bool psk_changed = p.preshared_key.has_value() != ps.cfg.preshared_key.has_value() ||
                                 (p.preshared_key && !(*p.preshared_key == *ps.cfg.preshared_key));
        if (psk_changed) {
            // Takes effect at the next handshake; the running session is kept, as wg does.
            ps.cfg.preshared_key.reset();
            if (p.preshared_key) {
                ps.cfg.preshared_key = p.preshared_key->clone();
            }
            if (!ps.noise.init(identity, p.public_key, p.preshared_key ? &*p.preshared_key : nullptr)) {
                spdlog::error("reload: peer {}: low-order key", crypto::key_to_base64(p.public_key));
            }
            diff = true;
        }
        if (diff) {
            ++changed;
            spdlog::info("reload: peer {} changed", crypto::key_to_base64(p.public_key));
        }
    }
    cfg.peers = std::move(n.peers);
    publish_snapshot();
    sync_device_routes();
    for (auto& [key, ps] : peers) {
        if (ps->cfg.persistent_keepalive && ps->endpoint_owner && !ps->current && !ps->handshaking) {
            send_initiation(*ps, now, false);
        }
    }
    spdlog::info("reload done: {} peer(s) added, {} removed, {} changed; {} peer(s) now", added, removed, changed,
                 peers.size());
}

// ------------------------------------------------------------------------------------------
// The loop

int node::state::run() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    signal_fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd < 0) {
        spdlog::error("signalfd: {}", std::strerror(errno));
        return 1;
    }
    auto next_tick = mono_clock::now();
    for (;;) {
        std::array<pollfd, 3> fds{{{signal_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}, {api->wake_fd(), POLLIN, 0}}};
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - mono_clock::now());
        const int rc = ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 1000)));
        if (rc < 0 && errno != EINTR) {
            spdlog::error("poll: {}", std::strerror(errno));
            return 1;
        }
        if (fds[0].revents & POLLIN) {
            signalfd_siginfo info{};
            while (::read(signal_fd, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
                if (info.ssi_signo == SIGHUP) {
                    reload();
                } else {
                    spdlog::info("{}: shutting down", info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
                    return 0;
                }
            }
        }
        if (fds[1].revents & POLLIN) {
            uint64_t value = 0;
            [[maybe_unused]] const ssize_t n = ::read(wake_fd, &value, sizeof(value));
        }
        drain_mailboxes();
        if (fds[2].revents & POLLIN) {
            api->poll();
        }
        const auto now = mono_clock::now();
        if (now >= next_tick) {
            on_timers(now);
            next_tick = now + tick;
        }
        reap();
    }
}

// ------------------------------------------------------------------------------------------
// API

nlohmann::json node::state::status_json() {
    using nlohmann::json;
    json drops_total = json::object();
    json workers_json = json::array();
    uint64_t rx_p = 0, rx_b = 0, tx_p = 0, tx_b = 0;
    std::vector<uint64_t> totals(dataplane::n_drop_reasons, 0);
    const auto reason_name = [](unsigned r) {
        return std::string(dataplane::to_string(static_cast<dataplane::drop_reason>(r)));
    };
    const auto drops_json = [&](const dataplane::worker_counters& c) {
        json d = json::object();
        for (unsigned r = 0; r < dataplane::n_drop_reasons; ++r) {
            d[reason_name(r)] = c.drops[r].get();
        }
        return d;
    };
    const auto add_drops = [&](const dataplane::worker_counters& c) {
        for (unsigned r = 0; r < dataplane::n_drop_reasons; ++r) {
            totals[r] += c.drops[r].get();
        }
    };
    for (const auto& w : workers) {
        const auto& c = w->counters();
        rx_p += c.rx_packets.get();
        rx_b += c.rx_bytes.get();
        tx_p += c.tx_packets.get();
        tx_b += c.tx_bytes.get();
        workers_json.push_back({{"id", w->settings().id},
                                {"cpu", w->settings().cpu},
                                {"rx_packets", c.rx_packets.get()},
                                {"rx_bytes", c.rx_bytes.get()},
                                {"tx_packets", c.tx_packets.get()},
                                {"tx_bytes", c.tx_bytes.get()},
                                {"handshake_messages", c.handshake_messages.get()},
                                {"drops", drops_json(c)}});
        add_drops(c);
    }
    add_drops(control_counters);  // what the control thread dropped (staging overflow, rate limit, sends)
    for (const auto& [key, ps] : peers) {
        const auto& c = ps->rt->counters[control_block()];
        tx_p += c.tx_packets.get();
        tx_b += c.tx_bytes.get();
    }
    for (unsigned r = 0; r < dataplane::n_drop_reasons; ++r) {
        drops_total[reason_name(r)] = totals[r];
    }
    json rejected = json::object();
    for (const auto& [reason, n] : hs_counters.rejected) {
        rejected[reason] = n;
    }
    json handshakes = {{"rejected", rejected}};
#define X(name) handshakes[#name] = hs_counters.name;
    MESHFWD_HANDSHAKE_COUNTERS(X)
#undef X
    json addresses = json::array();
    for (const auto& a : cfg.node.addresses) {
        addresses.push_back(a.to_string());
    }
    const auto off = tun->offloads();
    const double uptime = std::chrono::duration<double>(mono_clock::now() - started).count();
    return {{"node",
             {{"name", cfg.node.name},
              {"public_key", crypto::key_to_base64(cfg.node.public_key)},
              {"listen_port", cfg.node.listen_port},
              {"lane_ports", lane_ports},
              {"address", cfg.node.address.to_string()},
              {"addresses", addresses},
              {"device", tun->name()},
              {"mtu", cfg.mesh.device.mtu},
              {"workers", workers.size()},
              {"cores", options.cores},
              {"crypto", aead_name},
              {"poll", to_string(cfg.dataplane.poll)},
              {"offloads",
               {{"tso", off.tso4 && off.tso6},
                {"uso", off.uso},
                {"udp_gso", !listen_sockets.empty() && listen_sockets[0].gso},
                {"udp_gro", !listen_sockets.empty() && listen_sockets[0].gro}}},
              {"uptime_seconds", uptime},
              {"version", MESHFWD_VERSION}}},
            {"totals", {{"rx_packets", rx_p}, {"rx_bytes", rx_b}, {"tx_packets", tx_p}, {"tx_bytes", tx_b}, {"drops", drops_total}}},
            {"workers", workers_json},
            {"handshakes", handshakes},
            {"peers", peers.size()}};
}

nlohmann::json node::state::peers_json() {
    using nlohmann::json;
    const mono_time now = mono_clock::now();
    json list = json::array();
    for (const auto& [key, ps] : peers) {
        uint64_t rx_p = 0, rx_b = 0, tx_p = 0, tx_b = 0;
        json per_worker = json::array();
        for (unsigned b = 0; b < ps->rt->counter_block_count; ++b) {
            const auto& c = ps->rt->counters[b];
            rx_p += c.rx_packets.get();
            rx_b += c.rx_bytes.get();
            tx_p += c.tx_packets.get();
            tx_b += c.tx_bytes.get();
            if (b < workers.size()) {
                per_worker.push_back({{"id", b},
                                      {"rx_packets", c.rx_packets.get()},
                                      {"tx_packets", c.tx_packets.get()},
                                      {"rx_bytes", c.rx_bytes.get()},
                                      {"tx_bytes", c.tx_bytes.get()}});
            }
        }
        json allowed = json::array();
        for (const auto& p : ps->cfg.allowed_ips) {
            allowed.push_back(p.to_string());
        }
        // A current keypair past REJECT_AFTER_TIME neither sends nor receives: say so rather
        // than "established" (it stays current until replaced, or zeroed at 3x that age).
        const bool usable = ps->current && !ps->current->keypair.expired(now);
        const char* session_state = usable                          ? "established"
                                    : ps->handshaking || ps->next   ? "handshaking"
                                    : ps->current                   ? "expired"
                                                                    : "none";
        list.push_back({{"public_key", crypto::key_to_base64(key)},
                        {"endpoint", ps->endpoint_owner ? json(ps->endpoint_owner->address.to_endpoint().to_string()) : json(nullptr)},
                        {"allowed_ips", allowed},
                        {"latest_handshake_unix", ps->latest_handshake_unix},
                        {"rx_bytes", rx_b},
                        {"tx_bytes", tx_b},
                        {"rx_packets", rx_p},
                        {"tx_packets", tx_p},
                        {"persistent_keepalive_seconds",
                         ps->cfg.persistent_keepalive ? ps->cfg.persistent_keepalive->count() : 0},
                        {"meshfwd", ps->cfg.meshfwd},
                        {"lanes", ps->lanes.size()},
                        {"session", session_state},
                        {"handshakes", ps->handshakes},
                        {"staged_packets", ps->staged.size()},
                        {"workers", per_worker}});
    }
    return {{"peers", list}};
}

// ------------------------------------------------------------------------------------------

node::node(config cfg, node_options options) : _state(std::make_unique<state>(std::move(cfg), std::move(options))) {}
node::~node() = default;
result<void> node::start() { return _state->start(); }
int node::run() { return _state->run(); }

}  // namespace meshfwd::control
