// The node (see node.h): set-up, sending from the control thread, timers, reaping and the loop.
// Handshakes, worker messages, reload and the API JSON are in the other node_*.cc files.
// Control thread only, except where noted.
#include "control/node_state.h"

#include "control/peer_timers.h"
#include "crypto/transport.h"
#include "dataplane/pipeline.h"

#include <spdlog/spdlog.h>

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace meshfwd::control {

result<void> prepare_node_process() {
    if (!crypto::crypto_init()) {
        return make_error("libsodium failed to initialise");
    }
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    return {};
}

namespace {

constexpr auto tick = 100ms;  // how often the timers run

}  // namespace

node::state::~state() {
    coord.reset();  // its thread first: it writes to wake_fd
    if (coord_dirty) {
        coord_save_cache();  // what arrived in the last second
    }
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
    // Device type, port type and the MTU limit are checked by the loader (config_support.cc), so
    // --check refuses exactly what start-up would.
    const uint32_t mtu = cfg.mesh.device.mtu;
    // The config reader refuses these already (with the line); this covers configs built in code.
    if (mtu > crypto::limits::max_mtu) {
        return make_error(cfg.source.string() + ": mesh.device.mtu: " + std::to_string(mtu) + " is above " +
                          std::to_string(crypto::limits::max_mtu) +
                          ", the largest whose WireGuard message (MTU + 32) fits a UDP datagram over IPv4");
    }
    transport_out.resize(crypto::transport_message_size(mtu, mtu));
    // meshfwd-wg starts without a key, as wireguard-go does; `wg set private-key` gives it one.
    if (!identity.set_private_key(cfg.node.private_key) && !options.wg_mode) {
        return make_error("node.private_key_file: the private key is all zeros");
    }
    cookies = std::make_unique<crypto::cookie_checker>(identity, mono_clock::now());
    const auto n_workers = static_cast<unsigned>(options.cores.size());

    // SO_REUSEPORT would let a second node on this port join our group silently and take part of
    // the traffic (and us of its): refuse a port that something else holds, before the device
    // exists.
    if (cfg.node.listen_port != 0) {
        if (auto r = dataplane::check_udp_port_free(endpoint(ip_address::v6({}), cfg.node.listen_port)); !r) {
            return make_error("node.listen_port: " + r.error_message());
        }
    }
    auto tun_dev = dataplane::tun_device::create(
        {.name = cfg.mesh.device.name, .mtu = mtu, .queues = n_workers, .vnet_hdr = true});
    if (!tun_dev) {
        return make_error("device " + cfg.mesh.device.name + ": " + tun_dev.error_message());
    }
    tun.emplace(std::move(*tun_dev));
    // meshcoord's last registration and peers (the cache file), so a node started while
    // meshcoord is down comes up with them.
    coord_load_cache();
    for (const auto& a : cfg.node.addresses) {
        if (auto r = tun->add_address(a); !r) {
            return make_error("device " + tun->name() + ": address " + a.to_string() + ": " + r.error_message());
        }
    }
    // meshfwd-wg leaves the link down and unconfigured, as the kernel module does: wg-quick or
    // the operator sets addresses, MTU and up.
    if (!options.wg_mode) {
        if (auto r = tun->set_mtu_and_up(mtu); !r) {
            return make_error("device " + tun->name() + ": " + r.error_message());
        }
    }
    if (coord_registration) {
        coord_apply_registration(*coord_registration);
    }

    if (auto r = open_sockets(cfg.node.listen_port, listen_sockets, lane_sockets, lane_ports); !r) {
        return r;
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
    // meshcoord's cached peers beside the static ones (a bad one is logged, not fatal: the
    // server's list is not the operator's file).
    if (cfg.mesh.discovery.enabled()) {
        for (const auto& pc : desired_peers(cfg.peers)) {
            if (!peers.contains(pc.public_key)) {
                if (auto r = add_peer(pc); !r) {
                    spdlog::error("meshcoord cache: {}", r.error_message());
                }
            }
        }
    }
    publish_snapshot();
    sync_device_routes();

    if (auto r = start_workers(); !r) {
        return r;
    }
    aead_name = workers.front()->aead_name();
    spdlog::info("receive buffers: {}", workers.front()->receive_buffers());
    for (const auto& w : workers) {
        if (w->receive_buffers() != workers.front()->receive_buffers()) {
            spdlog::warn("worker {}: receive buffers: {}", w->settings().id, w->receive_buffers());
        }
    }

    if (!options.wg_mode) {
        api_server::providers providers{[this] { return status_json(); }, [this] { return peers_json(); }};
        auto server = api_server::start(cfg.api.listen, std::move(providers));
        if (!server) {
            return make_error("api.listen " + cfg.api.listen.to_string() + ": " + server.error_message());
        }
        api = std::move(*server);
    }
    if (options.serve_uapi) {
        auto server = uapi_server::start(tun->name(), [this](uapi::request& r) { return uapi_answer(r); });
        if (server) {
            uapi = std::move(*server);
        } else if (options.wg_mode) {
            return make_error(server.error_message());
        } else {
            spdlog::warn("{}; `wg` cannot reach this node", server.error_message());
        }
    }
    device_mtu_seen = mtu;
    if (auto r = coord_start(); !r) {
        return r;
    }

    spdlog::info("meshfwd {} up: device {} (MTU {}, offloads: tso4 {} tso6 {} uso {}), UDP port {} + lanes, {} worker(s) "
                 "on CPUs {}, crypto {}, {} peer(s), API on {}",
                 MESHFWD_VERSION, tun->name(), mtu, tun->offloads().tso4, tun->offloads().tso6, tun->offloads().uso,
                 cfg.node.listen_port, n_workers, [&] {
                     std::string s;
                     for (unsigned c : options.cores) s += (s.empty() ? "" : ",") + std::to_string(c);
                     return s;
                 }(),
                 aead_name, peers.size(), api ? cfg.api.listen.to_string() : std::string("off"));
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
    ps->cfg.name = pc.name;
    ps->cfg.endpoint_address = pc.endpoint_address;
    ps->cfg.allowed_ips = pc.allowed_ips;
    ps->cfg.persistent_keepalive = pc.persistent_keepalive;
    ps->cfg.preshared_key_file = pc.preshared_key_file;
    if (pc.preshared_key) {
        ps->cfg.preshared_key = pc.preshared_key->clone();
    }
    ps->cfg.meshfwd = pc.meshfwd;
    ps->cfg.coordinated = pc.coordinated;
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
    control_counters.drop(dataplane::drop_reason::peer_removed, ps.staged.size());
    ps.staged.clear();
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
    if (options.wg_mode) {
        return;  // wg-quick (or the operator) routes, as with wireguard-go
    }
    std::vector<ip_prefix> wanted;
    for (const auto& [key, ps] : peers) {
        for (const auto& p : ps->cfg.allowed_ips) {
            bool covered = false;
            for (const auto* list : {&cfg.node.addresses, &coord_addresses}) for (const auto& a : *list) {
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

void node::state::set_endpoint(peer_state& ps, const std::optional<dataplane::socket_address>& address,
                               const dataplane::local_address& local) {
    std::unique_ptr<dataplane::peer_endpoint> ep;
    if (address) {
        ep = std::make_unique<dataplane::peer_endpoint>();
        ep->address = *address;
        ep->local = local;
        // Lanes belong to the peer's host: keep them while it stays on the same address.
        if (ps.endpoint_owner && ps.endpoint_owner->address.same_host(*address)) {
            ep->lanes = ps.endpoint_owner->lanes;
            ep->lane_count = ps.endpoint_owner->lane_count;
        }
    }
    publish_endpoint(ps, std::move(ep));
}

void node::state::publish_endpoint(peer_state& ps, std::unique_ptr<dataplane::peer_endpoint> ep) {
    ps.rt->endpoint.store(ep.get(), std::memory_order_release);
    if (ps.endpoint_owner) {
        retired_endpoints.push_back(std::move(ps.endpoint_owner));
    }
    ps.endpoint_owner = std::move(ep);
}

void node::state::forget_lanes(peer_state& ps) {
    ps.lanes.clear();
    if (!ps.endpoint_owner || ps.endpoint_owner->lane_count == 0) {
        return;
    }
    auto ep = std::make_unique<dataplane::peer_endpoint>();
    ep->address = ps.endpoint_owner->address;
    ep->local = ps.endpoint_owner->local;
    publish_endpoint(ps, std::move(ep));
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
                           dataplane::socket_role role, const dataplane::local_address& from) {
    const unsigned w = worker < listen_sockets.size() ? worker : 0;
    const int fd = role == dataplane::socket_role::lane ? lane_sockets[w].fd : listen_sockets[w].fd;
    iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_name = const_cast<sockaddr*>(to.get());
    msg.msg_namelen = to.length;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) std::array<std::byte, dataplane::send_cmsg_space> control{};
    dataplane::write_send_cmsgs(msg, 0, from, control);
    if (::sendmsg(fd, &msg, MSG_DONTWAIT) >= 0) {
        return;
    }
    if (!from.empty() && dataplane::stale_source_is(errno)) {
        forget_local_source(from);
        dataplane::write_send_cmsgs(msg, 0, {}, control);
        if (::sendmsg(fd, &msg, MSG_DONTWAIT) >= 0) {
            return;
        }
    }
    control_counters.drop(dataplane::drop_reason::control_send_error);
}

bool node::state::send_transport(peer_state& ps, std::span<const uint8_t> payload, mono_time now) {
    session* s = ps.current.get();
    const dataplane::peer_endpoint* ep = ps.endpoint_owner.get();
    // A payload that cannot go is a lost packet or frame (a keepalive that cannot go is none).
    const auto lost = [&](dataplane::drop_reason why) {
        if (!payload.empty()) {
            control_counters.drop(why);
        }
        return false;
    };
    if (ep == nullptr) {
        return lost(dataplane::drop_reason::no_endpoint);
    }
    if (s == nullptr) {
        return lost(dataplane::drop_reason::expired_keypair);
    }
    const auto r = crypto::encapsulate(s->keypair, payload, transport_out, now, cfg.mesh.device.mtu);
    if (r.reason != crypto::transport_reason::ok) {
        if (r.reason == crypto::transport_reason::expired || r.reason == crypto::transport_reason::counter_exhausted) {
            ps.rt->rekey_wanted.store(true);
            return lost(dataplane::drop_reason::expired_keypair);
        }
        return lost(dataplane::drop_reason::too_big);
    }
    const std::span<const uint8_t> out(transport_out);
    send_raw({out.data(), r.size}, ep->address, 0, dataplane::socket_role::listen, ep->local);
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
        std::array<pollfd, 4> fds{{{signal_fd, POLLIN, 0},
                                   {wake_fd, POLLIN, 0},
                                   {api ? api->wake_fd() : -1, POLLIN, 0},
                                   {uapi ? uapi->wake_fd() : -1, POLLIN, 0}}};
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
                    if (options.wg_mode) {
                        spdlog::info("SIGHUP ignored: meshfwd-wg is configured through its UAPI socket");
                    } else {
                        reload();
                    }
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
        coord_poll();
        if (api && (fds[2].revents & POLLIN)) {
            api->poll();
        }
        if (uapi && (fds[3].revents & POLLIN)) {
            uapi->poll();
        }
        const auto now = mono_clock::now();
        if (now >= next_tick) {
            on_timers(now);
            next_tick = now + tick;
            if (!watch_device()) {
                return 0;
            }
        }
        reap();
    }
}

// ------------------------------------------------------------------------------------------

node::node(config cfg, node_options options) : _state(std::make_unique<state>(std::move(cfg), std::move(options))) {}
node::~node() = default;
result<void> node::start() { return _state->start(); }
int node::run() { return _state->run(); }

}  // namespace meshfwd::control
