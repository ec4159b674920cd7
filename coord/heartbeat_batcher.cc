// Heartbeat batching (see heartbeat_batcher.h). record(), flush() and written() on the server's
// io_context thread; writer_loop() on the writer thread.
#include "coord/heartbeat_batcher.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace meshfwd::coord {

namespace asio = boost::asio;

heartbeat_batcher::heartbeat_batcher(asio::io_context& io, store& writer_db, std::chrono::milliseconds max_delay,
                                     std::size_t max_batch)
    : _io(io), _writer_db(writer_db), _max_delay(max_delay), _max_batch(max_batch), _deadline(io) {
    _writer = std::thread([this] { writer_loop(); });
}

heartbeat_batcher::~heartbeat_batcher() {
    {
        std::lock_guard lock(_mutex);
        _stopping = true;
    }
    _wake.notify_one();
    _writer.join();
}

asio::awaitable<result<heartbeat_status>> heartbeat_batcher::record(heartbeat beat) {
    if (!_open) {
        _open = std::make_shared<batch>(_io);
        _open->done.expires_at(asio::steady_timer::time_point::max());
        _open_due = false;
        _deadline.expires_after(_max_delay);
        _deadline.async_wait([this](boost::system::error_code ec) {
            if (!ec) flush();
        });
    }
    auto mine = _open;
    const std::size_t index = mine->beats.size();
    mine->beats.push_back(std::move(beat));
    // A full batch goes at once; while the writer is busy it is closed here (the next beat opens
    // another), so no transaction ever holds more than max_batch.
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
    if (_writing) {
        // The writer is busy: this batch goes next. Not full, it goes on collecting until the
        // writer is free; full, it is closed and queued (the next beat opens another).
        _open_due = true;
        if (_open->beats.size() < _max_batch) return;
        _queued.push_back(std::move(_open));
        _open.reset();
        _open_due = false;
        _deadline.cancel();
        return;
    }
    auto handed = std::move(_open);
    _open.reset();
    _open_due = false;
    _deadline.cancel();
    _writing = true;
    {
        std::lock_guard lock(_mutex);
        _handed = std::move(handed);
    }
    _wake.notify_one();
}

void heartbeat_batcher::written(std::shared_ptr<batch> b) {
    ++_batches;
    _writing = false;
    b->done.cancel();
    if (!_queued.empty()) {
        // Full batches closed while the writer was busy go first, in order.
        auto next = std::move(_queued.front());
        _queued.pop_front();
        _writing = true;
        {
            std::lock_guard lock(_mutex);
            _handed = std::move(next);
        }
        _wake.notify_one();
        return;
    }
    if (_open && _open_due) flush();
}

void heartbeat_batcher::writer_loop() {
    for (;;) {
        std::shared_ptr<batch> b;
        {
            std::unique_lock lock(_mutex);
            _wake.wait(lock, [this] { return _stopping || _handed; });
            if (_stopping) return;
            b = std::move(_handed);
            _handed.reset();
        }
        const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        auto statuses = _writer_db.record_heartbeats(b->beats, now_ms);
        std::string failure;
        std::vector<heartbeat_status> answered;
        if (!statuses) {
            failure = "store: " + statuses.error_message();
        } else if (statuses->size() != b->beats.size()) {
            failure = "store: heartbeat batch answered with the wrong count";
        } else {
            answered = std::move(*statuses);
        }
        // The results are handed back on the io thread, which alone reads them.
        asio::post(_io, [this, b, failure = std::move(failure), answered = std::move(answered)]() mutable {
            b->error = std::move(failure);
            b->statuses = std::move(answered);
            written(std::move(b));
        });
    }
}

} // namespace meshfwd::coord
