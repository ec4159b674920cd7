// The queue between the meshcoord session's thread and the control thread (see coord_client.h).
#include "control/coord_client.h"

#include <unistd.h>

#include <cstdint>

namespace meshfwd::control {

result<std::unique_ptr<coord_client>> coord_client::start(coord_settings settings, int wake_fd) {
    std::unique_ptr<coord_client> client(new coord_client(wake_fd));
    auto session = start_coord_session(std::move(settings), *client);
    if (!session) {
        return make_error(session.error_message());
    }
    client->_session = std::move(*session);
    return client;
}

coord_client::~coord_client() {
    _session.reset();  // stops and joins the thread before the queue goes away
}

std::vector<coord_update> coord_client::take() {
    std::vector<coord_update> out;
    if (!_pending.load(std::memory_order_acquire)) {
        return out;
    }
    std::lock_guard lock(_mutex);
    _pending.store(false, std::memory_order_relaxed);
    out.assign(std::make_move_iterator(_queue.begin()), std::make_move_iterator(_queue.end()));
    _queue.clear();
    return out;
}

void coord_client::post(coord_update update) {
    {
        std::lock_guard lock(_mutex);
        _queue.push_back(std::move(update));
        _pending.store(true, std::memory_order_release);
    }
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(_wake_fd, &one, sizeof(one));
}

} // namespace meshfwd::control
