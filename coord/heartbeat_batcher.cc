// Heartbeat batching (see heartbeat_batcher.h). Server io_context thread only.
#include "coord/heartbeat_batcher.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace meshfwd::coord {

namespace asio = boost::asio;

heartbeat_batcher::heartbeat_batcher(asio::io_context& io, store& db, std::chrono::milliseconds max_delay,
                                     std::size_t max_batch)
    : _io(io), _db(db), _max_delay(max_delay), _max_batch(max_batch), _deadline(io) {}

asio::awaitable<result<heartbeat_status>> heartbeat_batcher::record(heartbeat beat) {
    if (!_open) {
        _open = std::make_shared<batch>(_io);
        _open->done.expires_at(asio::steady_timer::time_point::max());
        _deadline.expires_after(_max_delay);
        _deadline.async_wait([this](boost::system::error_code ec) {
            if (!ec) flush();
        });
    }
    auto mine = _open;
    const std::size_t index = mine->beats.size();
    mine->beats.push_back(std::move(beat));
    if (mine->beats.size() >= _max_batch) flush();

    boost::system::error_code ec;
    while (mine->statuses.empty() && mine->error.empty()) {
        co_await mine->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!mine->error.empty()) co_return error{mine->error};
    co_return mine->statuses[index];
}

void heartbeat_batcher::flush() {
    if (!_open) return;
    auto written = std::move(_open);
    _open.reset();
    _deadline.cancel();
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    auto statuses = _db.record_heartbeats(written->beats, now_ms);
    if (!statuses) {
        written->error = "store: " + statuses.error_message();
    } else if (statuses->size() != written->beats.size()) {
        written->error = "store: heartbeat batch answered with the wrong count";
    } else {
        written->statuses = std::move(*statuses);
    }
    ++_batches;
    written->done.cancel();
}

} // namespace meshfwd::coord
