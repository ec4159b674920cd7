// The PostgreSQL store's change listener thread: LISTENs on its own connection and calls the
// listener for each NOTIFY on notify_channel ("<version>:<network>"). After a lost connection
// it reconnects with backoff and calls the listener once per network with its current version,
// since notifications sent meanwhile are gone.
// Threads: constructed and destroyed by the store's thread; the listener runs on this thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace meshfwd::coord::detail {

inline constexpr const char* notify_channel = "meshcoord_changes";

using listener_fn = std::function<void(const std::string&, int64_t)>;

class change_listener_thread {
public:
    change_listener_thread(std::string url, listener_fn fn);
    ~change_listener_thread(); // stops within ~200 ms and joins
    change_listener_thread(const change_listener_thread&) = delete;
    change_listener_thread& operator=(const change_listener_thread&) = delete;

    // Waits (bounded) until LISTEN is active, so every commit after this returns is notified.
    bool wait_listening(std::chrono::milliseconds limit);

    // A notification's payload; malformed ones (not ours) are ignored.
    void deliver(const std::string& payload);

private:
    void run();

    std::string _url;
    listener_fn _fn;
    std::atomic<bool> _stop{false};
    std::mutex _mutex;
    std::condition_variable _cv;
    bool _listening = false;
    std::thread _thread;
};

} // namespace meshfwd::coord::detail
