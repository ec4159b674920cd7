// See store_postgres_listener.h. The listener thread only.
#include "coord/store_postgres_listener.h"

#include <pqxx/pqxx>

namespace meshfwd::coord::detail {
namespace {

class receiver final : public pqxx::notification_receiver {
public:
    receiver(pqxx::connection_base& c, change_listener_thread& owner)
        : pqxx::notification_receiver(c, notify_channel), _owner(owner) {}
    void operator()(const std::string& payload, int) override { _owner.deliver(payload); }

private:
    change_listener_thread& _owner;
};

} // namespace

change_listener_thread::change_listener_thread(std::string url, listener_fn fn)
    : _url(std::move(url)), _fn(std::move(fn)) {
    _thread = std::thread([this] { run(); });
}

change_listener_thread::~change_listener_thread() {
    _stop = true;
    _thread.join();
}

bool change_listener_thread::wait_listening(std::chrono::milliseconds limit) {
    std::unique_lock lock(_mutex);
    return _cv.wait_for(lock, limit, [this] { return _listening; });
}

void change_listener_thread::deliver(const std::string& payload) {
    auto colon = payload.find(':');
    if (colon == std::string::npos) {
        return;
    }
    int64_t version = 0;
    try {
        version = std::stoll(payload.substr(0, colon));
    } catch (const std::exception&) {
        return;
    }
    _fn(payload.substr(colon + 1), version);
}

void change_listener_thread::run() {
    bool reconnected = false;
    auto backoff = std::chrono::milliseconds(100);
    while (!_stop) {
        try {
            pqxx::connection c(_url);
            receiver r(c, *this);
            // LISTEN is sent when the receiver registers; a round trip makes sure it is active.
            pqxx::nontransaction(c).exec("SELECT 1");
            {
                std::lock_guard lock(_mutex);
                _listening = true;
            }
            _cv.notify_all();
            if (reconnected) {
                auto rows = pqxx::nontransaction(c).exec("SELECT id, version FROM networks");
                for (const auto& row : rows) {
                    _fn(row[0].c_str(), row[1].as<int64_t>());
                }
            }
            backoff = std::chrono::milliseconds(100);
            while (!_stop) {
                c.await_notification(0, 200'000); // wakes every 200 ms to see _stop
            }
            return;
        } catch (const std::exception&) {
            reconnected = true;
        }
        for (auto waited = std::chrono::milliseconds(0); waited < backoff && !_stop;
             waited += std::chrono::milliseconds(50)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
}

} // namespace meshfwd::coord::detail
