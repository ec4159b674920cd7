// meshcoord.yaml and the admin token (see server_config.h). Main thread only.
#include "coord/server_config.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>

#include "lib/units.h"

namespace meshfwd::coord {

namespace {

std::string where(const std::string& path, const YAML::Node& node, const std::string& key) {
    return path + ":" + std::to_string(node.Mark().line + 1) + ": " + key;
}

} // namespace

result<server_config> load_server_config(const std::string& path) {
    server_config config;
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
        return error{path + ": cannot read the file"};
    } catch (const YAML::Exception& e) {
        return error{path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg};
    }
    if (root.IsNull()) return config;
    if (!root.IsMap()) return error{path + ": expected a mapping of settings"};
    const YAML::Node& settings = root; // const iteration: GCC 12 misreads the mutable iterators
    for (auto it = settings.begin(); it != settings.end(); ++it) {
        const std::string key = it->first.as<std::string>("");
        const YAML::Node& value = it->second;
        auto text = [&](std::string& out) -> result<void> {
            if (!value.IsScalar()) return error{where(path, value, key) + ": expected a string"};
            out = value.as<std::string>();
            return {};
        };
        auto duration = [&](std::chrono::seconds& out) -> result<void> {
            if (!value.IsScalar()) return error{where(path, value, key) + ": expected a duration like 2m"};
            auto parsed = parse_duration(value.as<std::string>());
            if (!parsed || *parsed < std::chrono::seconds(1))
                return error{where(path, value, key) + ": expected a duration of at least 1s, like 2m"};
            out = std::chrono::duration_cast<std::chrono::seconds>(*parsed);
            return {};
        };
        result<void> done{};
        if (key == "listen") done = text(config.listen);
        else if (key == "db") done = text(config.db);
        else if (key == "stun_listen") done = text(config.stun_listen);
        else if (key == "tls_cert") done = text(config.tls_cert);
        else if (key == "tls_key") done = text(config.tls_key);
        else if (key == "admin_token_file") done = text(config.admin_token_file);
        else if (key == "legacy_network") done = text(config.legacy_network);
        else if (key == "offline_after") done = duration(config.offline_after);
        else if (key == "sweep_interval") done = duration(config.sweep_interval);
        else if (key == "public_urls") {
            if (!value.IsSequence()) {
                done = error{where(path, value, key) + ": expected a list of URLs"};
            } else {
                for (const auto& url : value) {
                    if (!url.IsScalar()) {
                        done = error{where(path, url, key) + ": expected a URL string"};
                        break;
                    }
                    config.public_urls.push_back(url.as<std::string>());
                }
            }
        } else {
            done = error{where(path, it->first, key) + ": unknown setting"};
        }
        if (!done) return error{done.error_message()};
    }
    return config;
}

result<std::string> load_admin_token(const std::string& file) {
    std::string token;
    if (!file.empty()) {
        struct stat info{};
        if (::stat(file.c_str(), &info) != 0) return error{"admin token file " + file + ": cannot read it"};
        if ((info.st_mode & 077) != 0)
            return error{"admin token file " + file + ": readable by others (chmod 600 it)"};
        std::ifstream in(file);
        std::getline(in, token);
    } else if (const char* env = std::getenv("MESHCOORD_ADMIN_TOKEN")) {
        token = env;
    }
    while (!token.empty() && (token.back() == ' ' || token.back() == '\r' || token.back() == '\t')) token.pop_back();
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.erase(0, 1);
    if (!token.empty() && token.size() < 16)
        return error{"the admin token is shorter than 16 characters; use a long random one (meshctl genkey makes one)"};
    return token;
}

} // namespace meshfwd::coord
