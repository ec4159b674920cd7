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

json view_json(const coord::peer_view& p) {
    return {{"id", p.id},
            {"public_key", p.public_key},
            {"virtual_ip", p.virtual_ip},
            {"ipv6", p.ipv6},
            {"endpoints", p.endpoints},
            {"endpoint", p.endpoint},
            {"hostname", p.hostname},
            {"os", p.os},
            {"allowed_ips", p.allowed_ips},
            {"exit_node", p.exit_node},
            {"online", p.online},
            {"approved", p.approved},
            {"last_heartbeat", p.last_heartbeat}};
}

coord::peer_view parse_view(const json& j) {
    coord::peer_view p;
    p.id = j.at("id").get<std::string>();
    p.public_key = j.at("public_key").get<std::string>();
    p.virtual_ip = j.at("virtual_ip").get<std::string>();
    p.ipv6 = j.at("ipv6").get<std::string>();
    p.endpoints = j.at("endpoints").get<std::vector<std::string>>();
    p.endpoint = j.at("endpoint").get<std::string>();
    p.hostname = j.at("hostname").get<std::string>();
    p.os = j.at("os").get<std::string>();
    p.allowed_ips = j.at("allowed_ips").get<std::vector<std::string>>();
    p.exit_node = j.at("exit_node").get<bool>();
    p.online = j.at("online").get<bool>();
    p.approved = j.at("approved").get<bool>();
    p.last_heartbeat = j.at("last_heartbeat").get<std::string>();
    return p;
}

json registration_json(const coord::register_response& r) {
    json j = {{"peer_id", r.peer_id},
              {"assigned_ip", r.assigned_ip},
              {"ipv6", r.ipv6},
              {"network_cidr", r.network_cidr},
              {"ula_prefix", r.ula_prefix},
              {"server_public_key", r.server_public_key},
              {"approved", r.approved},
              {"heartbeat_interval_s", r.heartbeat_interval_s},
              {"version", r.version}};
    if (r.mtu) {
        j["mtu"] = *r.mtu;
    }
    return j;
}

coord::register_response parse_registration(const json& j) {
    coord::register_response r;
    r.peer_id = j.at("peer_id").get<std::string>();
    r.assigned_ip = j.at("assigned_ip").get<std::string>();
    r.ipv6 = j.at("ipv6").get<std::string>();
    r.network_cidr = j.at("network_cidr").get<std::string>();
    r.ula_prefix = j.at("ula_prefix").get<std::string>();
    r.server_public_key = j.at("server_public_key").get<std::string>();
    r.approved = j.at("approved").get<bool>();
    r.heartbeat_interval_s = j.at("heartbeat_interval_s").get<uint32_t>();
    r.version = j.at("version").get<int64_t>();
    if (j.contains("mtu")) {
        r.mtu = j.at("mtu").get<uint32_t>();
    }
    return r;
}

} // namespace

std::string coord_cache_json(const coord_cache& cache) {
    json peers = json::array();
    for (const auto& [key, view] : cache.peers.peers) {
        peers.push_back(view_json(view));
    }
    json j = {{"format", cache_format},
              {"network_id", cache.network_id},
              {"public_key", cache.public_key},
              {"server", cache.server},
              {"version", cache.peers.version},
              {"peers", peers}};
    j["registration"] = cache.registration ? registration_json(*cache.registration) : json(nullptr);
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
        for (const auto& p : j.at("peers")) {
            auto view = parse_view(p);
            c.peers.peers[view.public_key] = std::move(view);
        }
        if (!j.at("registration").is_null()) {
            c.registration = parse_registration(j.at("registration"));
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
