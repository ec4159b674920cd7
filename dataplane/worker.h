// A data-plane worker: one thread pinned to one CPU, with its own io_uring, its own TUN queue and
// its own two UDP sockets (the SO_REUSEPORT listen socket and its lane socket). It moves bursts
// device → encapsulate → UDP and UDP → decapsulate → device (pipeline.h) and hands everything
// else to the control thread through its mailbox.
//
// Threads: constructed, started and joined by the control (main) thread; run() is the worker
// thread itself. It reads the snapshot and the index table lock-free (RCU QSBR: one quiescent
// state per loop iteration; offline while it sleeps in adaptive mode).
#pragma once
#include "crypto/aead_burst.h"
#include "crypto/cookie.h"
#include "dataplane/counters.h"
#include "dataplane/index_table.h"
#include "dataplane/mailbox.h"
#include "dataplane/peer.h"
#include "dataplane/snapshot.h"
#include "lib/rcu.h"
#include "lib/result.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>

namespace meshfwd::dataplane {

struct worker_settings {
    unsigned id = 0;
    unsigned cpu = 0;
    int tun_fd = -1;
    bool vnet_hdr = false;
    // The device took TUN_F_USO4|USO6 (Linux 6.2+), so it also takes UDP_L4 super-packets:
    // consecutive datagrams of one flow are written as one (gro.h). Needs vnet_hdr.
    bool tun_uso = false;
    int listen_fd = -1;
    int lane_fd = -1;
    bool udp_gso = false;
    uint32_t mtu = 1420;
    uint32_t batch = 64;
    bool busy_poll = false;
    // Adaptive polling: spin this long without work before sleeping.
    std::chrono::microseconds spin_budget{50};
    crypto::aead_backend crypto = crypto::aead_backend::automatic;
    // Reads land in io_uring provided buffer rings and packets are processed there, in place.
    // false, or a kernel without them (< 5.19): fixed buffers, each packet copied into the pool.
    bool provided_buffers = true;
    // Buffers (64 KiB) per ring, a power of two. A buffer stays out of its ring until the last
    // packet in it is freed, so a device read of one packet or a small datagram holds a whole
    // buffer until it is sent or written: several times the 16 reads a source has per round.
    uint32_t ring_buffers = 64;
};

// State the workers share, owned by the control thread and outliving every worker.
struct worker_shared {
    const rcu_pointer<snapshot>* snap = nullptr;
    const index_table<session>* sessions = nullptr;
    const crypto::cookie_checker* cookies = nullptr;
    int wake_fd = -1;                      // eventfd the control thread polls
    const std::atomic<bool>* running = nullptr;
};

class worker {
public:
    worker(const worker_settings& settings, const worker_shared& shared);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    // Sets up the io_uring and buffers (errors here are reported, not thrown) and starts the thread.
    result<void> start();
    void join();

    [[nodiscard]] mailbox& box() noexcept { return _box; }
    [[nodiscard]] const worker_counters& counters() const noexcept { return _counters; }
    [[nodiscard]] const worker_settings& settings() const noexcept { return _settings; }
    [[nodiscard]] std::string aead_name() const;
    // Where reads land (provided buffer rings or fixed buffers), for the start-up log; valid
    // once start() succeeded.
    [[nodiscard]] std::string receive_buffers() const;

    struct io;  // the io_uring machinery (worker.cc)

private:
    void run(std::promise<std::string>& ready) noexcept;
    std::string setup_ring() noexcept;
    std::string setup_receive_buffers() noexcept;

    worker_settings _settings;
    worker_shared _shared;
    mailbox _box;
    worker_counters _counters;
    std::unique_ptr<io> _io;
    std::thread _thread;
};

}  // namespace meshfwd::dataplane
