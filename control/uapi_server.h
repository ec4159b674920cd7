// The UAPI socket: /var/run/wireguard/IFNAME.sock, as wireguard-go serves it, so `wg`, `wg-quick`
// and wgctrl drive the node (control/uapi_protocol.h has the protocol).
//
// Threads: one server thread accepts connections one at a time, reads each request (bounded in
// size and, per read, in time), parses it there, and hands the parsed request to the control
// thread (queue + eventfd, like api_server.h), which answers in poll() through its handler; the
// server thread writes the answer and reads the next request on the same connection until the
// client closes it. start(), wake_fd(), poll() and the destructor belong to the control thread.
//
// Files: the directory is created mode 0700 when missing (an existing one, e.g. wireguard-go's,
// is left as it is); the socket is mode 0600. A socket file that nothing answers on is stale and
// replaced; one that a live process answers on is refused ("in use"). The destructor removes the
// socket file (only if it is still ours: same inode).
#pragma once

#include "control/uapi_protocol.h"
#include "lib/result.h"

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace meshfwd::control {

class uapi_server {
public:
    // Called on the control thread for each request; returns the whole reply text.
    using handler = std::function<std::string(uapi::request&)>;

    static constexpr const char* default_directory = "/var/run/wireguard";

    // Serves `directory`/`interface`.sock. Errors name the path and the cause.
    static result<std::unique_ptr<uapi_server>> start(const std::string& interface, handler h,
                                                      const std::filesystem::path& directory = default_directory);
    ~uapi_server();
    uapi_server(const uapi_server&) = delete;
    uapi_server& operator=(const uapi_server&) = delete;

    const std::filesystem::path& path() const noexcept { return _path; }
    // Readable while requests wait for the control thread; poll() drains it.
    int wake_fd() const noexcept { return _wake_fd; }
    // Answers every waiting request. Control thread only.
    void poll();

private:
    struct pending {
        uapi::request req;
        std::string reply;
        bool answered = false;
    };

    uapi_server(handler h, int listen_fd, int wake_fd, int stop_fd, std::filesystem::path path);
    void serve() noexcept;           // server thread
    void serve_connection(int fd);   // server thread
    std::string handoff(uapi::request req);  // server thread: waits for the control thread

    handler _handler;
    int _listen_fd = -1;
    int _wake_fd = -1;
    int _stop_fd = -1;  // eventfd: the server thread's poll wakes on it at shutdown
    std::filesystem::path _path;
    unsigned long _inode = 0;
    std::thread _thread;

    std::mutex _mutex;
    std::condition_variable _answered;
    std::deque<std::shared_ptr<pending>> _queue;
    bool _stopping = false;
};

}  // namespace meshfwd::control
