// The running node: owns the device, the sockets, the workers and all mutable state, and runs
// the control thread's loop (handshakes, timers, roaming, lanes, snapshots, reload, local API).
//
// Threads: everything here runs on the control thread (the process's main thread) except the
// workers it starts (dataplane/worker.h) and the API server's own thread (api_server.h), which
// reach it only through mailboxes and the API request queue.
//
//   main ── node::start ── creates TUN (one queue per worker), UDP sockets (listen + lane per
//                          worker), publishes the first snapshot, starts the workers and the API
//        └─ node::run ──── poll(signalfd, worker eventfd, API eventfd, 100 ms tick):
//                            mailboxes → handshakes / staged packets / roaming / confirmations / lanes
//                            timers    → retransmit, rekey, keepalives, key zeroing, expiry
//                            SIGHUP    → reload peers; SIGINT/SIGTERM → stop workers, return
#pragma once
#include "control/config.h"
#include "lib/result.h"

#include <memory>
#include <string>
#include <vector>

namespace meshfwd::control {

struct node_options {
    std::vector<unsigned> cores;
    // meshfwd-wg (tools/meshfwd_wg_main.cc), wireguard-go's behaviour: the device is created down
    // and unconfigured, no routes are managed (wg-quick adds them), no HTTP API, the key may be
    // unset, listen_port 0 picks one, and the node exits when its device is deleted.
    bool wg_mode = false;
    // Serve /var/run/wireguard/<device>.sock. meshfwd: a failure is logged and the node runs on;
    // meshfwd-wg: a failure stops start().
    bool serve_uapi = true;
};

// Process set-up every binary that runs a node does first, on the main thread before any other
// thread exists: libsodium, SIGHUP/SIGINT/SIGTERM blocked (they go to the control thread's
// signalfd, and every thread inherits the mask) and SIGPIPE ignored. Error: libsodium failed.
result<void> prepare_node_process();

class node {
public:
    node(config cfg, node_options options);
    ~node();
    node(const node&) = delete;
    node& operator=(const node&) = delete;

    // Creates the device, sockets and workers. The error names what failed and why.
    result<void> start();
    // The control loop; returns the exit status when SIGINT/SIGTERM arrives (0: clean).
    int run();

    struct state;  // node.cc

private:
    std::unique_ptr<state> _state;
};

}  // namespace meshfwd::control
