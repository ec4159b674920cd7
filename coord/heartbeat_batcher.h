// Collects node heartbeats and records them in batches (one store transaction, so one fsync, per
// batch): a heartbeat is answered once its batch has committed. A batch is written when it holds
// max_batch beats or max_delay after its first one, whichever comes first.
//
// Threads: the server's io_context thread only.
#pragma once

#include <utility> // before Boost 1.74's asio/awaitable.hpp, which uses std::exchange without it
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "coord/store.h"
#include "lib/result.h"

namespace meshfwd::coord {

class heartbeat_batcher {
public:
    heartbeat_batcher(boost::asio::io_context& io, store& db,
                      std::chrono::milliseconds max_delay = std::chrono::milliseconds(5),
                      std::size_t max_batch = 1024);

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
    void flush();

    boost::asio::io_context& _io;
    store& _db;
    std::chrono::milliseconds _max_delay;
    std::size_t _max_batch;
    std::shared_ptr<batch> _open;
    boost::asio::steady_timer _deadline;
    uint64_t _batches = 0;
};

} // namespace meshfwd::coord
