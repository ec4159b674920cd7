// The meshcoord client's cache file (see coord_cache.h). Control thread and tests.
#include "control/coord_cache.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace meshfwd::control {

namespace {

using json = nlohmann::json;

constexpr int cache_format = 1;
// Far above any real network's list (10,000 peers of ~400 bytes); stops a wrong path early.
constexpr off_t max_cache_size = 64 << 20;

} // namespace

std::string coord_cache_json(const coord_cache& cache) {
    // The peers and the registration in the wire protocol's own JSON (coord/protocol.h), so the
    // cache is read back by the same strict parsers as meshcoord's answers.
    std::vector<coord::peer_view> views;
    views.reserve(cache.peers.peers.size());
    for (const auto& [key, view] : cache.peers.peers) {
        views.push_back(view);
    }
    json j = {{"format", cache_format},
              {"network_id", cache.network_id},
              {"public_key", cache.public_key},
              {"server", cache.server},
              {"version", cache.peers.version},
              {"peers", json::parse(coord::peer_list_json(views)).at("peers")}};
    j["registration"] = cache.registration ? json::parse(coord::to_json(*cache.registration)) : json(nullptr);
    return j.dump(1) + "\n";
}

result<coord_cache> parse_coord_cache(std::string_view text) {
    const json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return make_error("not a JSON object");
    }
    try {
        if (j.at("format").get<int>() != cache_format) {
            return make_error("format " + j.at("format").dump() + " is not " + std::to_string(cache_format));
        }
        coord_cache c;
        c.network_id = j.at("network_id").get<std::string>();
        c.public_key = j.at("public_key").get<std::string>();
        c.server = j.at("server").get<std::string>();
        c.peers.version = j.at("version").get<int64_t>();
        auto views = coord::parse_peer_list(json{{"peers", j.at("peers")}}.dump());
        if (!views) {
            return make_error("peers: " + views.error_message());
        }
        for (auto& view : *views) {
            const std::string key = view.public_key;
            c.peers.peers[key] = std::move(view);
        }
        if (!j.at("registration").is_null()) {
            auto reg = coord::parse_register_response(j.at("registration").dump());
            if (!reg) {
                return make_error("registration: " + reg.error_message());
            }
            c.registration = std::move(*reg);
        }
        return c;
    } catch (const json::exception& e) {
        // nlohmann names the key ("key 'peers' not found") or the type mismatch.
        return make_error(e.what());
    }
}

result<void> save_coord_cache(const std::filesystem::path& file, const coord_cache& cache) {
    const std::string text = coord_cache_json(cache);
    const std::string tmp = file.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return make_error(tmp + ": cannot create: " + std::strerror(errno));
    }
    // O_CREAT's mode only applies to a new file: a leftover temporary keeps its own.
    int err = ::fchmod(fd, 0600) == 0 ? 0 : errno;
    size_t done = 0;
    while (err == 0 && done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            err = n < 0 ? errno : EIO;
            break;
        }
        done += static_cast<size_t>(n);
    }
    if (err == 0 && ::fsync(fd) != 0) {
        err = errno;
    }
    ::close(fd);
    if (err == 0 && ::rename(tmp.c_str(), file.c_str()) != 0) {
        err = errno;
    }
    if (err != 0) {
        ::unlink(tmp.c_str());
        return make_error(file.string() + ": cannot write: " + std::strerror(err));
    }
    return {};
}

result<std::optional<coord_cache>> load_coord_cache(const std::filesystem::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT) {
            return std::optional<coord_cache>();
        }
        return make_error(file.string() + ": cannot open: " + std::strerror(errno));
    }
    struct stat st {};
    std::string text;
    int err = 0;
    if (::fstat(fd, &st) != 0) {
        err = errno;
    } else if (!S_ISREG(st.st_mode) || st.st_size > max_cache_size) {
        ::close(fd);
        return make_error(file.string() + ": not a regular file of at most 64 MiB");
    } else {
        text.resize(static_cast<size_t>(st.st_size));
        size_t used = 0;
        while (used < text.size()) {
            const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                err = n < 0 ? errno : 0;
                break;
            }
            used += static_cast<size_t>(n);
        }
        text.resize(used);
    }
    ::close(fd);
    if (err != 0) {
        return make_error(file.string() + ": cannot read: " + std::strerror(err));
    }
    auto cache = parse_coord_cache(text);
    if (!cache) {
        return make_error(file.string() + ": " + cache.error_message());
    }
    return std::optional<coord_cache>(std::move(*cache));
}

} // namespace meshfwd::control
