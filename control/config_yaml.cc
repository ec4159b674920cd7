// mesh.yaml loader: walks the YAML tree section by section against the schema, collecting every
// problem with its location instead of stopping at the first, then runs the checks that span
// sections (keys, overlaps, ports). Main thread, start-up only.
#include "control/config_yaml.h"

#include "control/config_reader.h"
#include "control/config_support.h"
#include "control/config_values.h"
#include "control/key_file.h"
#include "crypto/messages.h"
#include "lib/units.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meshfwd::control {

namespace {

using namespace std::string_view_literals;

// Far above any real config; stops a mistaken path (a disk image, /dev/zero) early.
constexpr off_t max_config_size = 1 << 20;

constexpr uint32_t min_mtu_v4 = 576;
constexpr uint32_t min_mtu_v6 = 1280;
constexpr uint32_t max_mtu = crypto::limits::max_mtu;
constexpr uint32_t max_batch = 256;
constexpr std::chrono::nanoseconds max_spin = std::chrono::milliseconds(10);

constexpr std::array<enum_name<device_type>, 2> device_type_names{{{"tun", device_type::tun}, {"tap", device_type::tap}}};
constexpr std::array<enum_name<poll_mode>, 2> poll_mode_names{{{"adaptive", poll_mode::adaptive}, {"busy", poll_mode::busy}}};
constexpr std::array<enum_name<crypto_backend>, 3> crypto_backend_names{
    {{"auto", crypto_backend::automatic}, {"libsodium", crypto_backend::libsodium}, {"ipsec-mb", crypto_backend::ipsec_mb}}};
constexpr std::array<enum_name<port_type>, 2> port_type_names{{{"uring", port_type::uring}, {"dpdk", port_type::dpdk}}};
constexpr std::array<enum_name<l4_protocol>, 2> l4_protocol_names{{{"tcp", l4_protocol::tcp}, {"udp", l4_protocol::udp}}};

// Known keys per section, for unknown-key errors and "did you mean".
constexpr std::array top_keys{"mesh"sv, "node"sv, "peers"sv, "dataplane"sv, "api"sv, "gateway"sv};
constexpr std::array mesh_keys{"enabled"sv,   "network_id"sv, "network_cidr"sv, "device"sv,  "discovery"sv,
                               "stun"sv,      "turn"sv,       "connection"sv,   "routing"sv};
constexpr std::array device_keys{"type"sv, "name"sv, "mtu"sv, "mac_address"sv};
constexpr std::array discovery_keys{"server"sv,     "server_public_key"sv, "invite"sv,           "token"sv,
                                    "cache_file"sv, "publish_endpoints"sv, "heartbeat_interval"sv};
constexpr std::array servers_keys{"servers"sv};
constexpr std::array turn_server_keys{"url"sv, "username"sv, "password"sv};
constexpr std::array connection_keys{"direct_connect"sv, "relay_enabled"sv, "relay_via_peers"sv, "connect_timeout"sv,
                                     "keepalive_interval"sv};
constexpr std::array routing_keys{"max_hops"sv, "route_timeout"sv, "split_horizon"sv};
constexpr std::array node_keys{"name"sv, "private_key_file"sv, "listen_port"sv, "address"sv};
constexpr std::array peer_keys{"public_key"sv, "name"sv, "endpoint"sv, "allowed_ips"sv, "persistent_keepalive"sv,
                               "preshared_key_file"sv, "meshfwd"sv};
constexpr std::array dataplane_keys{"poll"sv, "spin"sv, "batch"sv, "crypto"sv, "port"sv, "lane_ports"sv};
constexpr std::array port_keys{"type"sv, "dpdk"sv};
constexpr std::array dpdk_keys{"eal_args"sv};
constexpr std::array api_keys{"listen"sv};
constexpr std::array gateway_keys{"forwards"sv, "exit_node"sv};
constexpr std::array forward_keys{"name"sv, "protocol"sv, "listen_port"sv, "backends"sv, "health_check"sv};
constexpr std::array health_check_keys{"interval"sv, "timeout"sv};

// Where things were written, for the checks that run after the walk.
struct peer_marks {
    YAML::Mark public_key;
    bool public_key_ok = false;
    YAML::Mark preshared_key_file;
    struct prefix_mark {
        ip_prefix prefix;
        YAML::Mark mark;
        std::string path;
    };
    std::vector<prefix_mark> allowed_ips;
};

// Records where each document starts; ignores everything else.
class document_starts final : public YAML::EventHandler {
public:
    std::vector<YAML::Mark> marks;

    void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

class loader : public config_reader {
public:
    loader(std::filesystem::path file, const load_options& opts)
        : config_reader(file.string()), _file(std::move(file)), _opts(opts) {
        _base_dir = _file.parent_path();
    }

    result<config> load() {
        config cfg;
        cfg.source = _file;
        auto text = read_text();
        if (!text) {
            return make_error(text.error_message());
        }
        YAML::Node root;
        try {
            if (!single_document(*text)) {
                return finish(std::move(cfg));
            }
            root = YAML::Load(*text);
        } catch (const YAML::Exception& e) {
            // yaml-cpp's message for a tab in the indentation names neither: say what it is.
            if (!tab_indentation(*text)) {
                error_at(e.mark, "", "YAML syntax error: " + e.msg);
            }
            return finish(std::move(cfg));
        }
        if (root.IsNull()) {
            error_at(YAML::Mark(), "",
                     "file is empty; expected a mapping with at least node: {private_key_file, address}");
            return finish(std::move(cfg));
        }
        // Node accessors can throw on odd trees (aliases, merge keys); none may escape.
        try {
            walk(root, cfg);
        } catch (const YAML::Exception& e) {
            error_at(e.mark, "", "cannot read YAML: " + e.msg);
        } catch (const std::exception& e) {
            error_at(YAML::Mark(), "", std::string("cannot read YAML: ") + e.what());
        }
        return finish(std::move(cfg));
    }

private:
    result<config> finish(config cfg) {
        if (!has_errors()) {
            cfg.warnings = format_warnings();
            return cfg;
        }
        return make_error(format_errors());
    }

    std::filesystem::path _file;
    std::filesystem::path _base_dir;
    load_options _opts;

    // Locations kept for the cross-section checks.
    YAML::Mark _lane_ports_mark;
    bool _address_ok = false;
    YAML::Mark _address_mark;
    YAML::Mark _mtu_mark;
    bool _mtu_set = false;
    bool _have_private_key_file = false;
    YAML::Mark _private_key_file_mark;
    YAML::Mark _mesh_mark;
    bool _network_cidr_ok = false;
    YAML::Mark _discovery_mark;
    bool _discovery_server_written = false;
    bool _server_key_written = false;
    std::vector<peer_marks> _peer_marks;
    // Where each accepted forward's listen_port was written, and its key path.
    std::vector<std::pair<YAML::Mark, std::string>> _forward_port_marks;

    result<std::string> read_text() {
        const std::string name = _file.string();
        const int fd = ::open(_file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
            const int err = errno;
            return make_error(name + ": cannot open: " + std::strerror(err));
        }
        std::string text;
        struct stat st {};
        int err = 0;
        if (::fstat(fd, &st) != 0) {
            err = errno;
        } else if (!S_ISREG(st.st_mode)) {
            ::close(fd);
            return make_error(name + ": not a regular file");
        } else if (st.st_size > max_config_size) {
            ::close(fd);
            return make_error(name + ": " + std::to_string(st.st_size) + " bytes is too large for a config file (1 MiB at most)");
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
            return make_error(name + ": cannot read: " + std::strerror(err));
        }
        return text;
    }

    // False (with the error recorded) when the text holds more than one YAML document. Not
    // YAML::LoadAll: in yaml-cpp 0.7 it loops forever, allocating, on a stray flow token such
    // as "," (jbeder/yaml-cpp#1040, fixed upstream by #1319). The parser here is stepped at
    // most twice, and a second "document" starting where the first did is that same bug.
    bool single_document(const std::string& text) {
        std::istringstream in(text);
        YAML::Parser parser(in);
        document_starts starts;
        for (int i = 0; i < 2 && parser.HandleNextDocument(starts); ++i) {
        }
        if (starts.marks.size() < 2) {
            return true;
        }
        const YAML::Mark& second = starts.marks[1];
        if (second.pos == starts.marks[0].pos) {
            const size_t pos = static_cast<size_t>(std::max(second.pos, 0));
            error_at(second, "", "YAML syntax error: unexpected " + quote(text.substr(pos, 1)));
        } else {
            error_at(second, "", "file holds more than one YAML document; expected one (remove '---')");
        }
        return false;
    }

    // After a syntax error: records "a tab character is used for indentation" at the first line
    // whose indentation holds a tab, and returns true; false when there is none. Only then, so
    // a tab inside a block scalar of a valid file is never reported.
    bool tab_indentation(const std::string& text) {
        size_t line_start = 0;
        for (int line = 0; line_start < text.size(); ++line) {
            const size_t end = std::min(text.find('\n', line_start), text.size());
            const size_t first = text.find_first_not_of(" \t", line_start);
            const size_t indent_end = std::min(first, end);
            const size_t tab = text.find('\t', line_start);
            const bool blank = first >= end || text[first] == '#' || text[first] == '\r';
            if (!blank && tab < indent_end) {
                YAML::Mark mark;
                mark.line = line;
                mark.column = static_cast<int>(tab - line_start);
                error_at(mark, "", "a tab character is used for indentation; YAML allows only spaces");
                return true;
            }
            line_start = end + 1;
        }
        return false;
    }

    // ---- sections ----------------------------------------------------------------------

    void walk(const YAML::Node& root, config& cfg) {
        if (!root.IsMap()) {
            error_at(root.Mark(), "",
                     std::string("expected a mapping with node:, peers:, mesh:, ... at the top level, got ") + kind_of(root));
            return;
        }
        auto top = open_map(root, "", top_keys);
        if (!top) {
            return;
        }
        if (auto m = section(*top, "mesh", mesh_keys)) {
            read_mesh(*m, cfg.mesh);
        }
        if (const auto* node = required(*top, "node")) {
            if (auto m = open_map(node->value, "node", node_keys)) {
                read_node(*m, cfg.node);
            }
        }
        if (const auto* peers = present(*top, "peers")) {
            read_peers(peers->value, cfg.peers);
        }
        if (auto m = section(*top, "dataplane", dataplane_keys)) {
            read_dataplane(*m, cfg.dataplane);
        }
        if (auto m = section(*top, "api", api_keys)) {
            read(*m, "listen", cfg.api.listen,
                 [this](const YAML::Node& n, const std::string& p) { return as_endpoint(n, p); });
        }
        if (auto m = section(*top, "gateway", gateway_keys)) {
            read_gateway(*m, cfg.gateway);
        }
        load_keys(cfg);
        check_across(cfg);
        if (!_opts.schema_only) {
            check_supported(cfg, *this);
        }
    }

    void read_mesh(const map_view& m, mesh_config& mesh) {
        _mesh_mark = m.mark;
        read_bool(m, "enabled", mesh.enabled);
        read(m, "network_id", mesh.network_id, [this](const YAML::Node& n, const std::string& p) -> std::optional<std::string> {
            auto text = as_string(n, p);
            if (!text) {
                return std::nullopt;
            }
            if (auto ok = check_identifier(*text, 64); !ok) {
                error_at(n.Mark(), p, ok.error_message());
                return std::nullopt;
            }
            return text;
        });
        read(m, "network_cidr", mesh.network_cidr, [this](const YAML::Node& n, const std::string& p) -> std::optional<ip_prefix> {
            auto prefix = as_prefix(n, p);
            if (!prefix) {
                return std::nullopt;
            }
            if (*prefix != prefix->masked()) {
                error_at(n.Mark(), p, prefix->to_string() + " has host bits set; did you mean " + prefix->masked().to_string() + "?");
                return std::nullopt;
            }
            _network_cidr_ok = true;
            return prefix;
        });

        if (auto dev = section(m, "device", device_keys)) {
            read_enum(*dev, "type", mesh.device.type, device_type_names);
            read(*dev, "name", mesh.device.name, [this](const YAML::Node& n, const std::string& p) -> std::optional<std::string> {
                auto text = as_string(n, p);
                if (!text) {
                    return std::nullopt;
                }
                if (auto ok = check_interface_name(*text); !ok) {
                    error_at(n.Mark(), p, ok.error_message());
                    return std::nullopt;
                }
                return text;
            });
            read(*dev, "mtu", mesh.device.mtu, [this](const YAML::Node& n, const std::string& p) -> std::optional<uint32_t> {
                _mtu_mark = n.Mark();
                _mtu_set = true;
                auto v = as_uint(n, p, min_mtu_v4, max_mtu,
                                 "576 is the smallest packet every IPv4 host must accept (RFC 791), "
                                 "65475 the largest whose WireGuard message (MTU + 32) fits a UDP datagram "
                                 "over IPv4 (65535 - 20 - 8)");
                return v ? std::optional<uint32_t>(static_cast<uint32_t>(*v)) : std::nullopt;
            });
            read(*dev, "mac_address", mesh.device.mac_address,
                 [this](const YAML::Node& n, const std::string& p) -> std::optional<std::optional<std::array<uint8_t, 6>>> {
                     auto text = as_string(n, p);
                     if (!text) {
                         return std::nullopt;
                     }
                     if (text->empty()) {
                         return std::optional<std::array<uint8_t, 6>>();
                     }
                     auto mac = parse_mac_address(*text);
                     if (!mac) {
                         error_at(n.Mark(), p, mac.error_message());
                         return std::nullopt;
                     }
                     return std::optional<std::array<uint8_t, 6>>(*mac);
                 });
        }

        if (auto disc = section(m, "discovery", discovery_keys)) {
            read_discovery(*disc, mesh.discovery);
            read_duration(*disc, "heartbeat_interval", mesh.discovery.heartbeat_interval);
        }

        if (auto stun = section(m, "stun", servers_keys)) {
            if (const auto* servers = present(*stun, "servers")) {
                if (auto list = as_list(servers->value, "mesh.stun.servers")) {
                    for (const auto& it : *list) {
                        auto text = as_string(it.node, it.path);
                        if (!text) {
                            continue;
                        }
                        auto server = parse_stun_url(*text);
                        if (!server) {
                            error_at(it.node.Mark(), it.path, server.error_message());
                            continue;
                        }
                        mesh.stun_servers.push_back(std::move(*server));
                    }
                }
            }
        }

        if (auto turn = section(m, "turn", servers_keys)) {
            if (const auto* servers = present(*turn, "servers")) {
                if (auto list = as_list(servers->value, "mesh.turn.servers")) {
                    for (const auto& it : *list) {
                        read_turn_server(it, mesh.turn_servers);
                    }
                }
            }
        }

        if (auto conn = section(m, "connection", connection_keys)) {
            read_bool(*conn, "direct_connect", mesh.connection.direct_connect);
            read_bool(*conn, "relay_enabled", mesh.connection.relay_enabled);
            read_bool(*conn, "relay_via_peers", mesh.connection.relay_via_peers);
            read_duration(*conn, "connect_timeout", mesh.connection.connect_timeout);
            read_duration(*conn, "keepalive_interval", mesh.connection.keepalive_interval);
        }

        if (auto routing = section(m, "routing", routing_keys)) {
            read(*routing, "max_hops", mesh.routing.max_hops, [this](const YAML::Node& n, const std::string& p) {
                // The hop count travels in a one-byte TTL field of mesh frames.
                auto v = as_uint(n, p, 1, 255, "it travels in a one-byte TTL");
                return v ? std::optional<uint32_t>(static_cast<uint32_t>(*v)) : std::nullopt;
            });
            read_duration(*routing, "route_timeout", mesh.routing.route_timeout);
            read_bool(*routing, "split_horizon", mesh.routing.split_horizon);
        }

        if (mesh.enabled) {
            // A mesh is found and joined through its coordination server; without these there is
            // nothing to join.
            if (mesh.network_id.empty() && present(m, "network_id") == nullptr) {
                error_at(m.mark, "mesh.network_id", "required when mesh.enabled is true");
            }
            if (!mesh.discovery.enabled() && !has_key(m, "discovery", "server")) {
                error_at(m.mark, "mesh.discovery.server", "required when mesh.enabled is true");
            }
        }
    }

    // mesh.discovery (without heartbeat_interval, read by the caller).
    void read_discovery(const map_view& d, discovery_config& disc) {
        _discovery_mark = d.mark;
        if (const auto* e = present(d, "server")) {
            // One server, or a list of replicas of one meshcoord.
            std::vector<std::pair<YAML::Node, std::string>> items;
            if (e->value.IsSequence()) {
                if (auto list = as_list(e->value, "mesh.discovery.server")) {
                    for (const auto& it : *list) {
                        items.emplace_back(it.node, it.path);
                    }
                }
            } else {
                items.emplace_back(e->value, "mesh.discovery.server");
            }
            for (const auto& [n, p] : items) {
                auto text = as_string(n, p);
                if (!text || (text->empty() && !e->value.IsSequence())) {
                    continue;  // "" for one server: none, as an absent key
                }
                auto server = parse_coord_server(*text);
                if (!server) {
                    error_at(n.Mark(), p, server.error_message());
                    continue;
                }
                disc.servers.push_back(std::move(*server));
            }
            _discovery_server_written = !items.empty();
        }
        read(d, "server_public_key", disc.server_public_key,
             [this](const YAML::Node& n, const std::string& p) -> std::optional<std::optional<crypto::public_key>> {
                 auto text = as_string(n, p);
                 if (!text) {
                     return std::nullopt;
                 }
                 auto key = crypto::key_from_base64(*text);
                 if (!key) {
                     error_at(n.Mark(), p, "not 32 bytes of base64 (the key `meshctl join` writes from the invite)");
                     return std::nullopt;
                 }
                 return std::optional<crypto::public_key>(*key);
             });
        _server_key_written = present(d, "server_public_key") != nullptr;
        read_string(d, "invite", disc.invite);
        read_string(d, "token", disc.token);
        read(d, "cache_file", disc.cache_file, [this](const YAML::Node& n, const std::string& p) -> std::optional<std::filesystem::path> {
            auto text = as_string(n, p);
            if (!text) {
                return std::nullopt;
            }
            return text->empty() ? std::filesystem::path() : resolve(*text);
        });
        if (const auto* e = present(d, "publish_endpoints")) {
            if (auto list = as_list(e->value, "mesh.discovery.publish_endpoints")) {
                for (const auto& it : *list) {
                    if (auto ep = as_endpoint(it.node, it.path)) {
                        disc.publish_endpoints.push_back(*ep);
                    }
                }
            }
        }
    }

    // True when m[section][key] is written (even if invalid, which was reported already).
    static bool has_key(const map_view& m, std::string_view section_key, std::string_view key) {
        const auto* s = present(m, section_key);
        if (s == nullptr || !s->value.IsMap()) {
            return false;
        }
        for (auto it = s->value.begin(); it != s->value.end(); ++it) {
            if (it->first.IsScalar() && it->first.Scalar() == key && !it->second.IsNull()) {
                return true;
            }
        }
        return false;
    }

    void read_turn_server(const item& it, std::vector<turn_server>& out) {
        auto m = open_map(it.node, it.path, turn_server_keys);
        if (!m) {
            return;
        }
        std::optional<turn_server> server;
        if (const auto* url = required(*m, "url")) {
            if (auto text = as_string(url->value, join_path(it.path, "url"))) {
                auto parsed = parse_turn_url(*text);
                if (parsed) {
                    server = std::move(*parsed);
                } else {
                    error_at(url->value.Mark(), join_path(it.path, "url"), parsed.error_message());
                }
            }
        }
        // TURN allocations need long-term credentials (RFC 8656 section 9.2).
        std::optional<std::string> username;
        std::optional<std::string> password;
        if (const auto* u = required(*m, "username")) {
            username = as_string(u->value, join_path(it.path, "username"));
        }
        if (const auto* pw = required(*m, "password")) {
            password = as_string(pw->value, join_path(it.path, "password"));
        }
        if (server && username && password) {
            server->username = std::move(*username);
            server->password = std::move(*password);
            out.push_back(std::move(*server));
        }
    }

    void read_node(const map_view& m, node_config& node) {
        read(m, "name", node.name, [this](const YAML::Node& n, const std::string& p) -> std::optional<std::string> {
            auto text = as_string(n, p);
            if (!text) {
                return std::nullopt;
            }
            if (auto ok = check_identifier(*text, 63); !ok) {
                error_at(n.Mark(), p, ok.error_message());
                return std::nullopt;
            }
            return text;
        });
        if (node.name.empty()) {
            std::array<char, 256> host{};
            if (::gethostname(host.data(), host.size() - 1) == 0) {
                node.name = host.data();
            }
        }
        if (const auto* e = required(m, "private_key_file")) {
            _private_key_file_mark = e->value.Mark();
            if (auto text = as_string(e->value, "node.private_key_file")) {
                if (text->empty()) {
                    error_at(e->value.Mark(), "node.private_key_file", "must not be empty");
                } else {
                    _have_private_key_file = true;
                    node.private_key_file = resolve(*text);
                }
            }
        }
        if (const auto* e = present(m, "listen_port")) {
            if (auto port = as_port(e->value, "node.listen_port")) {
                node.listen_port = *port;
            }
        }
        // meshcoord assigns the addresses when discovery is set (read_mesh ran before).
        const auto* address = _discovery_server_written ? present(m, "address") : required(m, "address");
        if (const auto* e = address) {
            _address_mark = e->value.Mark();
            // One prefix, or a list (an IPv4 and an IPv6 address, say); the first is the primary.
            std::vector<std::pair<YAML::Node, std::string>> items;
            if (e->value.IsSequence()) {
                if (auto list = as_list(e->value, "node.address")) {
                    for (const auto& item : *list) {
                        items.emplace_back(item.node, item.path);
                    }
                    if (items.empty()) {
                        error_at(e->value.Mark(), "node.address", "needs at least one address, e.g. 10.100.0.1/16");
                    }
                }
            } else {
                items.emplace_back(e->value, "node.address");
            }
            bool all_ok = !items.empty();
            for (const auto& [item, path] : items) {
                auto prefix = as_prefix(item, path);
                if (!prefix) {
                    all_ok = false;
                    continue;
                }
                const unsigned max_len = prefix->address().is_v4() ? 32 : 128;
                // On a /31 or /127 (RFC 3021) and a /32 or /128 every address is a host address.
                if (prefix->length() + 1u < max_len && *prefix == prefix->masked()) {
                    error_at(item.Mark(), path,
                             prefix->to_string() + " is the network address itself; give this node's own "
                                                   "address with the network's length, e.g. 10.100.0.1/16");
                    all_ok = false;
                } else {
                    node.addresses.push_back(*prefix);
                }
            }
            if (all_ok) {
                node.address = node.addresses.front();
                _address_ok = true;
            }
        }
    }

    std::filesystem::path resolve(const std::string& text) const {
        const std::filesystem::path p(text);
        return p.is_absolute() || _base_dir.empty() ? p : _base_dir / p;
    }

    void read_peers(const YAML::Node& value, std::vector<peer_config>& peers) {
        auto list = as_list(value, "peers");
        if (!list) {
            return;
        }
        std::map<crypto::public_key, size_t> by_key;
        std::map<std::string, size_t> by_name;
        for (const auto& it : *list) {
            peer_config peer;
            peer_marks marks;
            auto m = open_map(it.node, it.path, peer_keys);
            if (!m) {
                peers.push_back(std::move(peer));
                _peer_marks.push_back(std::move(marks));
                continue;
            }
            if (const auto* e = required(*m, "public_key")) {
                const std::string path = join_path(it.path, "public_key");
                if (auto text = as_string(e->value, path)) {
                    marks.public_key = e->value.Mark();
                    if (auto key = crypto::key_from_base64(*text)) {
                        peer.public_key = *key;
                        const auto [pos, fresh] = by_key.emplace(*key, peers.size());
                        if (fresh) {
                            marks.public_key_ok = true;
                        } else {
                            error_at(e->value.Mark(), path,
                                     "same public key as peers[" + std::to_string(pos->second) + "]; each peer once");
                        }
                    } else {
                        error_at(e->value.Mark(), path, "not 32 bytes of base64 (a key as `wg pubkey` prints it)");
                    }
                }
            }
            if (const auto* e = present(*m, "name")) {
                const std::string path = join_path(it.path, "name");
                if (auto text = as_string(e->value, path)) {
                    if (auto ok = check_identifier(*text, 64); !ok) {
                        error_at(e->value.Mark(), path, ok.error_message());
                    } else if (const auto [pos, fresh] = by_name.emplace(*text, peers.size()); !fresh) {
                        error_at(e->value.Mark(), path,
                                 "name " + quote(*text) + " is already used by peers[" + std::to_string(pos->second) + "]");
                    } else {
                        peer.name = *text;
                    }
                }
            }
            read(*m, "endpoint", peer.endpoint_address,
                 [this](const YAML::Node& n, const std::string& p) -> std::optional<std::optional<endpoint>> {
                     auto e = as_endpoint(n, p);
                     return e ? std::optional<std::optional<endpoint>>(*e) : std::nullopt;
                 });
            if (const auto* e = required(*m, "allowed_ips")) {
                if (auto ips = as_list(e->value, join_path(it.path, "allowed_ips"))) {
                    for (const auto& ip : *ips) {
                        if (auto prefix = as_prefix(ip.node, ip.path)) {
                            peer.allowed_ips.push_back(prefix->masked());
                            marks.allowed_ips.push_back({prefix->masked(), ip.node.Mark(), ip.path});
                        }
                    }
                }
            }
            if (const auto* e = present(*m, "persistent_keepalive")) {
                const std::string path = join_path(it.path, "persistent_keepalive");
                if (auto d = as_duration(e->value, path, true)) {
                    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(*d);
                    // WireGuard carries it as a 16-bit count of seconds.
                    if (secs != *d || secs.count() > 65535) {
                        error_at(e->value.Mark(), path,
                                 "must be whole seconds from 1s to 65535s (0s or absent: off), as in WireGuard");
                    } else if (secs.count() > 0) {
                        peer.persistent_keepalive = secs;
                    }
                }
            }
            if (const auto* e = present(*m, "preshared_key_file")) {
                if (auto text = as_string(e->value, join_path(it.path, "preshared_key_file"))) {
                    if (text->empty()) {
                        error_at(e->value.Mark(), join_path(it.path, "preshared_key_file"), "must not be empty");
                    } else {
                        peer.preshared_key_file = resolve(*text);
                        marks.preshared_key_file = e->value.Mark();
                    }
                }
            }
            read_bool(*m, "meshfwd", peer.meshfwd);
            peers.push_back(std::move(peer));
            _peer_marks.push_back(std::move(marks));
        }
    }

    void read_dataplane(const map_view& m, dataplane_config& dp) {
        read(m, "lane_ports", dp.lane_ports, [this](const YAML::Node& n, const std::string& p) -> std::optional<std::optional<port_range>> {
            auto text = as_string(n, p);
            if (!text) {
                return std::nullopt;
            }
            auto range = parse_port_range(*text);
            if (!range) {
                error_at(n.Mark(), p, range.error_message());
                return std::nullopt;
            }
            _lane_ports_mark = n.Mark();
            range->location = _file.string() + ":" + std::to_string(n.Mark().line + 1) + ":" +
                              std::to_string(n.Mark().column + 1);
            return std::optional<port_range>(*range);
        });
        read_enum(m, "poll", dp.poll, poll_mode_names);
        read(m, "spin", dp.spin, [this](const YAML::Node& n, const std::string& p) -> std::optional<std::chrono::nanoseconds> {
            auto d = as_duration(n, p, true);
            if (d && *d > max_spin) {
                error_at(n.Mark(), p, "must be at most " + format_duration(max_spin) + " (use poll: busy to spin always)");
                return std::nullopt;
            }
            return d;
        });
        read(m, "batch", dp.batch, [this](const YAML::Node& n, const std::string& p) {
            auto v = as_uint(n, p, 1, max_batch, "packets per burst; the burst arrays hold 256");
            return v ? std::optional<uint32_t>(static_cast<uint32_t>(*v)) : std::nullopt;
        });
        if (const auto* e = present(m, "crypto")) {
            if (auto backend = as_enum(e->value, "dataplane.crypto", crypto_backend_names)) {
                if (!crypto::aead_backend_available(*backend)) {
                    error_at(e->value.Mark(), "dataplane.crypto",
                             MESHFWD_HAVE_IPSEC_MB == 0
                                 ? "this build has no intel-ipsec-mb backend; use auto or libsodium"
                                 : "intel-ipsec-mb needs a CPU with AVX2, which this one lacks; use auto or libsodium");
                } else {
                    dp.crypto = *backend;
                }
            }
        }
        if (auto port = section(m, "port", port_keys)) {
            if (const auto* e = present(*port, "type")) {
                if (auto type = as_enum(e->value, "dataplane.port.type", port_type_names)) {
                    dp.port.type = *type;  // dpdk is refused by check_supported
                }
            }
            if (auto dpdk = section(*port, "dpdk", dpdk_keys)) {
                if (const auto* e = present(*dpdk, "eal_args")) {
                    if (auto list = as_list(e->value, "dataplane.port.dpdk.eal_args")) {
                        for (const auto& arg : *list) {
                            if (auto text = as_string(arg.node, arg.path)) {
                                dp.port.dpdk.eal_args.push_back(std::move(*text));
                            }
                        }
                    }
                }
            }
        }
    }

    void read_gateway(const map_view& m, gateway_config& gw) {
        read_bool(m, "exit_node", gw.exit_node);
        const auto* e = present(m, "forwards");
        if (e == nullptr) {
            return;
        }
        auto list = as_list(e->value, "gateway.forwards");
        if (!list) {
            return;
        }
        std::map<std::string, size_t> names;
        std::map<std::pair<l4_protocol, uint16_t>, size_t> ports;
        for (size_t index = 0; index < list->size(); ++index) {
            const item& it = (*list)[index];
            auto f = open_map(it.node, it.path, forward_keys);
            if (!f) {
                continue;
            }
            forward_config fwd;
            bool ok = true;
            if (const auto* name = required(*f, "name")) {
                const std::string path = join_path(it.path, "name");
                if (auto text = as_string(name->value, path)) {
                    if (auto valid = check_identifier(*text, 64); !valid) {
                        error_at(name->value.Mark(), path, valid.error_message());
                        ok = false;
                    } else if (const auto [pos, fresh] = names.emplace(*text, index); !fresh) {
                        error_at(name->value.Mark(), path,
                                 "name " + quote(*text) + " is already used by gateway.forwards[" +
                                     std::to_string(pos->second) + "]");
                        ok = false;
                    } else {
                        fwd.name = *text;
                    }
                } else {
                    ok = false;
                }
            } else {
                ok = false;
            }
            read_enum(*f, "protocol", fwd.protocol, l4_protocol_names);
            YAML::Mark port_mark;
            if (const auto* port = required(*f, "listen_port")) {
                port_mark = port->value.Mark();
                if (auto v = as_port(port->value, join_path(it.path, "listen_port"))) {
                    fwd.listen_port = *v;
                    if (const auto [pos, fresh] = ports.emplace(std::pair(fwd.protocol, *v), index); !fresh) {
                        error_at(port->value.Mark(), join_path(it.path, "listen_port"),
                                 std::string(to_string(fwd.protocol)) + " port " + std::to_string(*v) +
                                     " is already forwarded by gateway.forwards[" + std::to_string(pos->second) + "]");
                        ok = false;
                    }
                } else {
                    ok = false;
                }
            } else {
                ok = false;
            }
            if (const auto* backends = required(*f, "backends")) {
                const std::string path = join_path(it.path, "backends");
                if (auto blist = as_list(backends->value, path)) {
                    if (blist->empty()) {
                        error_at(backends->value.Mark(), path, "needs at least one backend address:port");
                        ok = false;
                    }
                    for (const auto& b : *blist) {
                        if (auto ep = as_endpoint(b.node, b.path)) {
                            fwd.backends.push_back(*ep);
                        } else {
                            ok = false;
                        }
                    }
                } else {
                    ok = false;
                }
            } else {
                ok = false;
            }
            if (auto hc = section(*f, "health_check", health_check_keys)) {
                read_duration(*hc, "interval", fwd.health_check.interval);
                read_duration(*hc, "timeout", fwd.health_check.timeout);
                if (fwd.health_check.timeout >= fwd.health_check.interval) {
                    const auto* t = present(*hc, "timeout");
                    error_at(t != nullptr ? t->value.Mark() : hc->mark, join_path(hc->path, "timeout"),
                             format_duration(fwd.health_check.timeout) + " must be shorter than the interval (" +
                                 format_duration(fwd.health_check.interval) + ")");
                    ok = false;
                }
            }
            if (ok) {
                _forward_port_marks.emplace_back(port_mark, join_path(it.path, "listen_port"));
                gw.forwards.push_back(std::move(fwd));
            }
        }
    }

    // ---- keys and cross-section checks -------------------------------------------------

    // Shown in messages: the path as written, joined to the config's directory.
    std::string shown_key_path(const std::string& text) const { return resolve(text).string(); }

    void load_keys(config& cfg) {
        if (!crypto::crypto_init()) {
            error_at(YAML::Mark(), "", "cannot initialise libsodium");
            return;
        }
        bool have_private_key = false;
        if (_have_private_key_file) {
            const auto& path = cfg.node.private_key_file;
            struct stat st {};
            // lstat: a dangling symlink is not "missing"; creating through it is refused (O_NOFOLLOW).
            const bool missing = ::lstat(path.c_str(), &st) != 0 && errno == ENOENT;
            if (missing) {
                if (!_opts.init_key) {
                    error_at(_private_key_file_mark, "node.private_key_file",
                             "key file " + path.string() + " does not exist; pass --init-key to create it");
                } else if (!has_errors()) {
                    // Only for an otherwise valid config: a typo elsewhere should not leave keys behind.
                    auto key = create_private_key_file(path);
                    if (key) {
                        cfg.node.private_key = std::move(*key);
                        have_private_key = true;
                    } else {
                        error_at(_private_key_file_mark, "node.private_key_file", key.error_message());
                    }
                }
            } else {
                auto key = read_key_file(path);
                if (key) {
                    cfg.node.private_key = std::move(*key);
                    have_private_key = true;
                } else {
                    error_at(_private_key_file_mark, "node.private_key_file", key.error_message());
                }
            }
        }
        if (have_private_key) {
            cfg.node.public_key = crypto::derive_public_key(cfg.node.private_key);
        }
        for (size_t i = 0; i < cfg.peers.size() && i < _peer_marks.size(); ++i) {
            auto& peer = cfg.peers[i];
            const auto& marks = _peer_marks[i];
            if (have_private_key && marks.public_key_ok && peer.public_key == cfg.node.public_key) {
                error_at(marks.public_key, index_path("peers", i) + ".public_key",
                         "is this node's own public key (from node.private_key_file); a node is not its own peer");
            }
            if (peer.preshared_key_file) {
                // Never created: a preshared key must be the same on both ends, so a fresh one
                // here would only make the handshake fail.
                auto key = read_key_file(*peer.preshared_key_file);
                if (key) {
                    peer.preshared_key = std::move(*key);
                } else {
                    error_at(marks.preshared_key_file, index_path("peers", i) + ".preshared_key_file", key.error_message());
                }
            }
        }
    }

    void check_across(config& cfg) {
        if (_address_ok && cfg.mesh.network_cidr && _network_cidr_ok &&
            !(cfg.mesh.network_cidr->contains(cfg.node.address->address()) &&
              cfg.node.address->length() >= cfg.mesh.network_cidr->length())) {
            error_at(_address_mark, "node.address",
                     cfg.node.address->to_string() + " is outside mesh.network_cidr " + cfg.mesh.network_cidr->to_string());
        }
        auto& disc = cfg.mesh.discovery;
        if (disc.enabled()) {
            // The API is per network, and every request is signed with a key derived from the
            // server's: without either there is nothing to talk to.
            if (cfg.mesh.network_id.empty()) {
                error_at(_mesh_mark, "mesh.network_id", "required with mesh.discovery.server (the network to join)");
            }
            if (!disc.server_public_key && !_server_key_written) {
                error_at(_discovery_mark, "mesh.discovery.server_public_key",
                         "required with mesh.discovery.server (meshctl join writes it from the invite)");
            }
            if (disc.cache_file.empty() && !cfg.node.private_key_file.empty()) {
                const auto& key = cfg.node.private_key_file;
                disc.cache_file = key.parent_path() / (key.stem().string() + ".peers.json");
            }
        }
        // The TUN/TAP MTU is the overlay's: an overlay carrying IPv6 needs 1280 on every link (RFC 8200).
        bool overlay_v6 = false;
        for (const auto& a : cfg.node.addresses) {
            overlay_v6 = overlay_v6 || a.address().is_v6();
        }
        for (const auto& peer : cfg.peers) {
            for (const auto& p : peer.allowed_ips) {
                overlay_v6 = overlay_v6 || p.address().is_v6();
            }
        }
        if (overlay_v6 && cfg.mesh.device.mtu < min_mtu_v6) {
            error_at(_mtu_set ? _mtu_mark : _mesh_mark, "mesh.device.mtu",
                     std::to_string(cfg.mesh.device.mtu) + " is below 1280, the minimum link MTU for IPv6 (RFC 8200), "
                                                           "and this overlay carries IPv6");
        }
        check_overlaps();
        if (cfg.dataplane.lane_ports && cfg.dataplane.lane_ports->first <= cfg.node.listen_port &&
            cfg.node.listen_port <= cfg.dataplane.lane_ports->last) {
            error_at(_lane_ports_mark, "dataplane.lane_ports",
                     "contains node.listen_port " + std::to_string(cfg.node.listen_port) +
                         "; the lanes need ports of their own");
        }
        for (size_t i = 0; i < cfg.gateway.forwards.size(); ++i) {
            const auto& f = cfg.gateway.forwards[i];
            if (f.protocol == l4_protocol::udp && f.listen_port == cfg.node.listen_port) {
                error_at(_forward_port_marks[i].first, _forward_port_marks[i].second,
                         "UDP port " + std::to_string(f.listen_port) + " is node.listen_port, the WireGuard socket");
            }
        }
    }

    // Two peers claiming overlapping allowed IPs: WireGuard accepts it and the more specific
    // (or, for equal prefixes, the last) wins, which in a static file is almost always a copy
    // and paste slip, so it is refused. Sorting by (address, length) puts every prefix right
    // after the prefixes containing it; a stack of the enclosing prefixes then finds each
    // overlap in O(n log n).
    void check_overlaps() {
        struct entry {
            ip_prefix prefix;
            size_t peer;
            const peer_marks::prefix_mark* mark;
        };
        std::vector<entry> all;
        for (size_t i = 0; i < _peer_marks.size(); ++i) {
            for (const auto& pm : _peer_marks[i].allowed_ips) {
                all.push_back({pm.prefix, i, &pm});
            }
        }
        std::stable_sort(all.begin(), all.end(), [](const entry& a, const entry& b) {
            return std::pair(a.prefix.address(), a.prefix.length()) < std::pair(b.prefix.address(), b.prefix.length());
        });
        std::vector<const entry*> enclosing;
        for (const auto& cur : all) {
            while (!enclosing.empty() && !enclosing.back()->prefix.contains(cur.prefix.address())) {
                enclosing.pop_back();
            }
            for (auto it = enclosing.rbegin(); it != enclosing.rend(); ++it) {
                const entry& other = **it;
                if (other.peer == cur.peer) {
                    continue;
                }
                // Report at the one written later, naming the earlier.
                const entry& later = other.peer > cur.peer ? other : cur;
                const entry& earlier = other.peer > cur.peer ? cur : other;
                error_at(later.mark->mark, later.mark->path,
                         later.prefix.to_string() + " overlaps " + earlier.prefix.to_string() + " of peers[" +
                             std::to_string(earlier.peer) + "] (line " + std::to_string(earlier.mark->mark.line + 1) +
                             "); each address must belong to one peer");
                break;
            }
            enclosing.push_back(&cur);
        }
    }
};

} // namespace

result<config> load_config(const std::filesystem::path& file, const load_options& opts) {
    loader l(file, opts);
    return l.load();
}

} // namespace meshfwd::control
