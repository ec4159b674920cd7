// Collects node heartbeats and records them in batches (one store transaction, so one fsync, per
// batch): a heartbeat is answered once its batch has committed. A batch is handed to the writer
// max_delay after its first beat or when it holds max_batch beats, whichever comes first.
//
// The writer is a thread of its own with its own store connection, so the server thread goes on
// accepting, authenticating and collecting the next batch while one commits (the commit's fsync
// used to stall every connection). At most one batch is being written at a time; a batch that is
// due while the writer is busy keeps collecting (up to max_batch) and is written the moment the
// writer is free: under load the batches grow, and one fsync covers more beats.
//
// Threads: record() and the destructor on the server's io_context thread only; the writer thread
// touches only the store given as `writer_db` (which nothing else may use) and the hand-over slot.
#pragma once

#include <utility> // before Boost 1.74's asio/awaitable.hpp, which uses std::exchange without it
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "coord/store.h"
#include "lib/result.h"

namespace meshfwd::coord {

class heartbeat_batcher {
public:
    heartbeat_batcher(boost::asio::io_context& io, store& writer_db,
                      std::chrono::milliseconds max_delay = std::chrono::milliseconds(5),
                      std::size_t max_batch = 1024);
    // Stops the writer after the batch it is writing (its waiters are not answered: the server
    // is stopping).
    ~heartbeat_batcher();
    heartbeat_batcher(const heartbeat_batcher&) = delete;
    heartbeat_batcher& operator=(const heartbeat_batcher&) = delete;

    boost::asio::awaitable<result<heartbeat_status>> record(heartbeat beat);

    uint64_t batches_written() const noexcept { return _batches; }

private:
    struct batch {
        explicit batch(boost::asio::io_context& io) : done(io) {}
        std::vector<heartbeat> beats;
        std::vector<heartbeat_status> statuses;
        std::string error;          // set when the store failed the whole batch
        boost::asio::steady_timer done; // cancelled when written: wakes every waiter
    };
    // io thread: hands the open batch to the writer if it is free, else marks it due.
    void flush();
    // io thread: a batch came back from the writer.
    void written(std::shared_ptr<batch> b);
    void writer_loop();

    boost::asio::io_context& _io;
    store& _writer_db;
    std::chrono::milliseconds _max_delay;
    std::size_t _max_batch;
    std::shared_ptr<batch> _open;
    bool _open_due = false;     // io thread: the open batch waits only for the writer
    bool _writing = false;      // io thread: a batch is with the writer
    // io thread: full batches closed while the writer was busy, oldest first. Bounded by the
    // connections waiting for an answer (each holds one beat).
    std::deque<std::shared_ptr<batch>> _queued;
    boost::asio::steady_timer _deadline;
    uint64_t _batches = 0;

    // The hand-over slot between the io thread and the writer.
    std::mutex _mutex;
    std::condition_variable _wake;
    std::shared_ptr<batch> _handed; // guarded by _mutex
    bool _stopping = false;         // guarded by _mutex
    std::thread _writer;
};

} // namespace meshfwd::coord
