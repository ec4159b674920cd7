// The node's UDP sockets and data-plane workers: opened at start, and opened again at run time
// when the UAPI changes what they were built with (listen_port, the private key the workers'
// mac1 check reads, the device MTU the buffers are sized for). Control thread.
//
// A restart stops every worker (each notices `running` within its 50 ms sleep), drains their
// mailboxes, and starts new ones on the same TUN queues: sessions, peers and snapshots live in the
// control thread and the index table, so no session is lost; packets in flight in the rings are.
#include "control/node_state.h"

#include "crypto/transport.h"

#include <spdlog/spdlog.h>

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace meshfwd::control {

result<void> node::state::open_sockets(uint16_t port, std::vector<dataplane::udp_socket>& listen_out,
                                       std::vector<dataplane::udp_socket>& lane_out,
                                       std::vector<uint16_t>& lane_ports_out) {
    const auto n_workers = static_cast<unsigned>(options.cores.size());
    listen_out.clear();
    lane_out.clear();
    lane_ports_out.clear();
    uint32_t next_lane_port = cfg.dataplane.lane_ports ? cfg.dataplane.lane_ports->first : 0;
    for (unsigned i = 0; i < n_workers; ++i) {
        dataplane::udp_socket_options lo;
        // Port 0 (meshfwd-wg before `listen_port` is set, as wireguard-go): the kernel picks one
        // for the first socket and the others join it.
        lo.bind = endpoint(ip_address::v6({}), port);
        lo.reuseport = true;
        auto ls = dataplane::open_udp_socket(lo);
        if (!ls) {
            return make_error("UDP port " + std::to_string(port) + ": " + ls.error_message());
        }
        port = ls->port;
        dual_stack = ls->dual_stack;
        dataplane::udp_socket_options la;
        la.bind = endpoint(ls->local.address(), 0);
        if (const auto& range = cfg.dataplane.lane_ports) {
            // The first port of the range that nothing holds (a lane socket has no SO_REUSEPORT,
            // so the bind itself would refuse a taken one; the probe just lets us go on to the next).
            while (next_lane_port <= range->last &&
                   !dataplane::check_udp_port_free(endpoint(ls->local.address(), static_cast<uint16_t>(next_lane_port)))) {
                ++next_lane_port;
            }
            if (next_lane_port > range->last) {
                return make_error(range->location + ": dataplane.lane_ports: no free port left in " +
                                  std::to_string(range->first) + "-" + std::to_string(range->last) + " for worker " +
                                  std::to_string(i) + " (the others are held by other processes)");
            }
            la.bind = endpoint(ls->local.address(), static_cast<uint16_t>(next_lane_port++));
        }
        auto lane = dataplane::open_udp_socket(la);
        if (!lane) {
            return make_error("lane socket: " + lane.error_message());
        }
        lane_ports_out.push_back(lane->port);
        listen_out.push_back(std::move(*ls));
        lane_out.push_back(std::move(*lane));
    }
    cfg.node.listen_port = port;
    for (auto* list : {&listen_out, &lane_out}) {
        for (const auto& s : *list) {
            apply_fwmark(s.fd);
        }
    }
    return {};
}

void node::state::apply_fwmark(int fd) {
    // SO_MARK 0 clears it; wg-quick's policy routing for 0.0.0.0/0 keys on a non-zero mark.
    if (::setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof(fwmark)) != 0 && fwmark != 0) {
        spdlog::warn("fwmark {}: SO_MARK: {}", fwmark, std::strerror(errno));
    }
}

result<void> node::state::start_workers() {
    running.store(true);
    const dataplane::worker_shared shared{&snap, &sessions, cookies.get(), wake_fd, &running};
    // For tests and comparisons: MESHFWD_NO_PBUF=1 receives into fixed buffers and copies (the
    // fallback for kernels without provided buffer rings); MESHFWD_PBUF_BUFFERS=N sets the
    // buffers per ring (a power of two; a tiny ring runs empty, which is what it is for).
    const char* no_pbuf = std::getenv("MESHFWD_NO_PBUF");
    const bool provided_buffers = no_pbuf == nullptr || *no_pbuf == '\0' || std::string_view(no_pbuf) == "0";
    const char* pbuf_buffers = std::getenv("MESHFWD_PBUF_BUFFERS");
    // MESHFWD_NO_USO=1: UDP written to the device one datagram a write even where it takes USO
    // (to compare, or should a kernel mishandle it).
    const char* no_uso = std::getenv("MESHFWD_NO_USO");
    const bool uso_writes = tun->offloads().uso && (no_uso == nullptr || *no_uso == '\0' || std::string_view(no_uso) == "0");
    const auto n_workers = static_cast<unsigned>(options.cores.size());
    for (unsigned i = 0; i < n_workers; ++i) {
        dataplane::worker_settings ws;
        ws.id = i;
        ws.cpu = options.cores[i];
        ws.tun_fd = tun->queue_fd(i);
        ws.vnet_hdr = tun->vnet_hdr();
        ws.tun_uso = uso_writes;
        ws.listen_fd = listen_sockets[i].fd;
        ws.lane_fd = lane_sockets[i].fd;
        ws.udp_gso = listen_sockets[i].gso && lane_sockets[i].gso;
        ws.mtu = cfg.mesh.device.mtu;
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
    return {};
}

void node::state::stop_workers() {
    running.store(false);
    for (auto& w : workers) {
        w->join();
    }
    // What they posted last still names live objects: handle it before the mailboxes go.
    drain_mailboxes();
    // Drops by reason survive in the control thread's block; per-worker traffic counts restart.
    for (const auto& w : workers) {
        for (unsigned r = 0; r < dataplane::n_drop_reasons; ++r) {
            control_counters.drops[r].add(w->counters().drops[r].get());
        }
    }
    workers.clear();
}

result<void> node::state::restart_workers(std::optional<uint16_t> new_port) {
    std::vector<dataplane::udp_socket> new_listen, new_lanes;
    std::vector<uint16_t> new_lane_ports;
    const uint16_t old_port = cfg.node.listen_port;
    if (new_port) {
        // Open the new sockets while the old ones still serve: a port in use refuses the change
        // and leaves everything as it was.
        if (*new_port != 0 && *new_port != old_port) {
            if (auto r = dataplane::check_udp_port_free(endpoint(ip_address::v6({}), *new_port)); !r) {
                return r;
            }
        }
        if (*new_port == old_port && old_port != 0) {
            new_port.reset();
        } else if (auto r = open_sockets(*new_port, new_listen, new_lanes, new_lane_ports); !r) {
            cfg.node.listen_port = old_port;
            return r;
        }
    }
    stop_workers();
    if (new_port) {
        listen_sockets = std::move(new_listen);
        lane_sockets = std::move(new_lanes);
        lane_ports = std::move(new_lane_ports);
        spdlog::info("listening on UDP port {} (was {})", cfg.node.listen_port, old_port);
    }
    transport_out.resize(crypto::transport_message_size(cfg.mesh.device.mtu, cfg.mesh.device.mtu));
    return start_workers();
}

// The device's current MTU and whether it still exists, asked in the device's own network
// namespace (it may have been moved with `ip link set IFNAME netns NS`; its TUN fd follows it).
node::state::device_status node::state::probe_device() {
    device_status st;
    ifreq ifr{};
    if (::ioctl(tun->queue_fd(0), TUNGETIFF, &ifr) != 0) {
        st.gone = errno == EBADFD || errno == ENODEV;  // `ip link del`: the TUN is detached
        return st;
    }
    const int ns = ::ioctl(tun->queue_fd(0), TUNGETDEVNETNS);
    int fd = -1;
    if (ns >= 0) {
        const int own = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (own >= 0 && ::setns(ns, CLONE_NEWNET) == 0) {
            fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (::setns(own, CLONE_NEWNET) != 0) {
                spdlog::error("setns back to our own network namespace: {}", std::strerror(errno));
            }
        }
        if (own >= 0) {
            ::close(own);
        }
        ::close(ns);
    } else {
        fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    if (fd >= 0) {
        if (::ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0) {
            st.mtu = static_cast<uint32_t>(ifr.ifr_mtu);
        }
        ::close(fd);
    }
    return st;
}

// Each tick: a deleted device ends meshfwd-wg (as wireguard-go); a new link MTU restarts the
// workers with buffers and segmentation sized for it.
bool node::state::watch_device() {
    const device_status st = probe_device();
    if (st.gone) {
        spdlog::info("device {} was deleted; shutting down", tun->name());
        return false;
    }
    if (st.mtu != 0 && st.mtu != device_mtu_seen) {
        device_mtu_seen = st.mtu;
        const uint32_t mtu = std::min<uint32_t>(st.mtu, static_cast<uint32_t>(crypto::limits::max_mtu));
        if (mtu == cfg.mesh.device.mtu) {
            return true;
        }
        spdlog::info("device {}: MTU {} -> {}; restarting the workers", tun->name(), cfg.mesh.device.mtu, mtu);
        cfg.mesh.device.mtu = mtu;
        if (auto r = restart_workers(std::nullopt); !r) {
            spdlog::error("device {}: MTU {}: {}", tun->name(), mtu, r.error_message());
        }
    }
    return true;
}

}  // namespace meshfwd::control
