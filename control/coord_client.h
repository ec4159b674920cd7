// meshfwd's meshcoord client, as the control thread sees it: a session on its own thread
// (coord_session.cc: registration, heartbeats, the event stream, reconnection) posts what it
// learns into a queue and wakes the control loop through its eventfd; the control thread takes
// the updates and applies them (node_coord.cc: addresses, peers, cache, status). Nothing the
// session does can block the control loop.
//
// Threads: start(), take() and the destructor on the control thread; post() on the session's
// thread.
#pragma once

#include "control/config.h"
#include "coord/protocol.h"
#include "crypto/secret.h"
#include "lib/result.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace meshfwd::control {

// What the session needs, copied from the config (and the cache) when it starts.
struct coord_settings {
    std::vector<coord_server> servers;
    std::string network_id;
    crypto::public_key node_public{};
    crypto::secret32 node_secret;
    crypto::public_key server_public{};
    std::string invite;
    std::string token;
    std::string hostname;
    // Empty: the host's addresses with listen_port, found at each heartbeat.
    std::vector<endpoint> publish_endpoints;
    uint16_t listen_port = 0;
    std::string device_name;  // never published: it is the overlay
    std::chrono::nanoseconds heartbeat_interval = std::chrono::seconds(30);
    // From the cache: the version to resume the event stream from (0: a snapshot), and whether
    // meshcoord knows this key already (then the one-time invite or token is not sent again).
    int64_t since_version = 0;
    bool registered_before = false;
};

// One thing the session learnt. Any combination of the fields may be set.
struct coord_update {
    std::optional<coord::register_response> registration;
    std::optional<coord::event_message> event;
    // Connection state changes: the server in use, whether the event stream is up, and the
    // last error (empty: none since the last success).
    bool state_changed = false;
    std::string server;
    bool connected = false;
    std::string error;
};

struct coord_session;
struct coord_session_deleter {
    void operator()(coord_session* s) const noexcept;
};

class coord_client {
public:
    // Starts the session thread. wake_fd: an eventfd the control loop polls.
    static result<std::unique_ptr<coord_client>> start(coord_settings settings, int wake_fd);
    ~coord_client();
    coord_client(const coord_client&) = delete;
    coord_client& operator=(const coord_client&) = delete;

    // Control thread: everything posted since the last call, oldest first. Cheap when empty
    // (one atomic load), so the loop calls it at every wake-up.
    std::vector<coord_update> take();

    // Session thread.
    void post(coord_update update);

private:
    explicit coord_client(int wake_fd) : _wake_fd(wake_fd) {}

    int _wake_fd;
    std::atomic<bool> _pending{false};
    std::mutex _mutex;
    std::deque<coord_update> _queue;  // guarded by _mutex
    std::unique_ptr<coord_session, coord_session_deleter> _session;
};

// Implemented by coord_session.cc (the Beast client). The session posts to `sink` until the
// deleter has stopped and joined its thread.
result<std::unique_ptr<coord_session, coord_session_deleter>> start_coord_session(coord_settings settings,
                                                                                  coord_client& sink);

} // namespace meshfwd::control
