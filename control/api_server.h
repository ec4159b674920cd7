// The local HTTP API: GET /v1/status and GET /v1/peers (JSON) and GET /metrics (Prometheus text).
//
// Threads: cpp-httplib's listener and its small worker pool run on their own threads and never
// touch control state. Each request is queued (mutex + eventfd; fine here, this is not the packet
// path) and waits up to 2 s for the control thread, which calls poll() when wake_fd() is readable
// and answers every waiting request from its providers. start(), port(), wake_fd(), poll() and the
// destructor belong to the control thread.
//
// Answers: 200 with the provider's JSON; 404 {"error": ...} for other paths; 405 for methods other
// than GET; 503 when the control thread did not answer within 2 s or the server is shutting down;
// 500 when a provider threw. Error bodies are JSON objects {"error": "<text>"}.
//
// The providers must produce exactly this (meshctl and metrics_text read it):
// GET /v1/status:
//   { "node": {"name", "public_key" (base64), "listen_port", "lane_ports": [..], "address" (CIDR),
//              "device", "mtu", "workers", "cores": [..], "crypto", "poll",
//              "offloads": {"tso", "uso", "udp_gso", "udp_gro"} (bools), "uptime_seconds" (float),
//              "version"},
//     "totals": {"rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "drops": {"<reason>": n}},
//     "workers": [{"id", "cpu", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
//                  "drops": {"<reason>": n}}],
//     "handshakes": {"initiations_sent", "initiations_received", "responses_sent",
//                    "responses_received", "cookie_replies_sent", "cookie_replies_received",
//                    "sessions_established", "rejected": {"<reason>": n}},
//     "peers": n }
// GET /v1/peers:
//   { "peers": [{"public_key", "endpoint" ("ip:port" or null), "allowed_ips": ["cidr"],
//                "latest_handshake_unix" (0 = never), "rx_bytes", "tx_bytes", "rx_packets",
//                "tx_packets", "persistent_keepalive_seconds" (0 = off), "meshfwd" (bool), "lanes",
//                "source" ("config": mesh.yaml or `wg set`; "meshcoord": learned from discovery),
//                "session" ("established" | "handshaking" | "expired" | "none"), "handshakes",
//                "workers": [{"id", "rx_packets", "tx_packets", "rx_bytes", "tx_bytes"}]}] }
// rx = received from the underlay and decrypted, tx = encrypted and sent; bytes are WireGuard
// message bytes as `wg show` counts them. Drop and rejection reasons are open-ended identifiers.
#pragma once

#include "lib/ip_address.h"
#include "lib/result.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace httplib {
class Server;
}

namespace meshfwd::control {

class api_server {
public:
    struct providers {
        // Both called on the control thread, inside poll(). May throw (the request gets 500).
        std::function<nlohmann::json()> status; // GET /v1/status
        std::function<nlohmann::json()> peers;  // GET /v1/peers
    };

    // How long a request waits for the control thread before it is answered 503.
    static constexpr std::chrono::milliseconds answer_timeout{2000};

    // Binds `listen` (port 0: an ephemeral port, see port()) and starts the server thread. Errors
    // name the address and the cause ("address already in use", a non-local address, ...).
    static result<std::unique_ptr<api_server>> start(const endpoint& listen, providers p);

    // Stops the server: waiting requests get 503 at once; returns once the server threads have
    // exited (at most ~2 s, the read timeout, with a client that stalls mid-request).
    ~api_server();

    api_server(const api_server&) = delete;
    api_server& operator=(const api_server&) = delete;

    uint16_t port() const noexcept { return _port; }
    // An eventfd, readable while requests are waiting; poll() drains it.
    int wake_fd() const noexcept { return _wake_fd; }
    // Answers every waiting request. Control thread only.
    void poll();

private:
    enum class route : uint8_t { status, peers, metrics };
    // One request handed from a server thread to the control thread; guarded by _mutex.
    struct request {
        route what;
        bool answered = false;
        bool abandoned = false; // its server thread gave up waiting: do not compute an answer
        int http_status = 0;
        std::string content_type;
        std::string body;
    };

    api_server(providers p, int wake_fd);
    // Server thread: queue the request, wake the control thread, wait for the answer.
    void handoff(route what, int& http_status, std::string& content_type, std::string& body);
    // Control thread: compute one answer (outside the lock: providers may take a while).
    void answer(request& req) const;

    providers _providers;
    int _wake_fd = -1;
    uint16_t _port = 0;
    std::unique_ptr<httplib::Server> _server;
    std::thread _thread;
    std::atomic<bool> _listen_exited{false}; // set by _thread when httplib's listen loop returns

    std::mutex _mutex;
    std::condition_variable _answered; // signalled when a request is answered or on shutdown
    std::deque<std::shared_ptr<request>> _queue;
    bool _stopping = false;
};

} // namespace meshfwd::control
