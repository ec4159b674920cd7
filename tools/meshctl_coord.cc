// meshctl's meshcoord commands (see meshctl_coord.h). Main thread; blocking HTTP through
// Boost.Beast (TLS by OpenSSL for https://).
#include "tools/meshctl_coord.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility> // before Boost 1.74's asio headers (std::exchange)
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "control/key_file.h"
#include "coord/invite.h"
#include "coord/protocol.h"
#include "crypto/x25519.h"

namespace meshfwd::meshctl {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

struct parsed_url {
    bool tls = false;
    std::string host;
    std::string port;
    std::string base; // path prefix without trailing '/'
};

result<parsed_url> parse_url(std::string text) {
    parsed_url url;
    if (text.starts_with("https://")) {
        url.tls = true;
        text.erase(0, 8);
    } else if (text.starts_with("http://")) {
        text.erase(0, 7);
    } else {
        return error{"'" + text + "' is not an http:// or https:// URL"};
    }
    const auto slash = text.find('/');
    std::string authority = text.substr(0, slash);
    if (slash != std::string::npos) url.base = text.substr(slash);
    while (!url.base.empty() && url.base.back() == '/') url.base.pop_back();
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string::npos) return error{"'" + authority + "': unclosed ["};
        url.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':') url.port = authority.substr(close + 2);
    } else {
        const auto colon = authority.rfind(':');
        url.host = authority.substr(0, colon);
        if (colon != std::string::npos) url.port = authority.substr(colon + 1);
    }
    if (url.host.empty()) return error{"URL without a host"};
    if (url.port.empty()) url.port = url.tls ? "443" : "80";
    return url;
}

struct http_answer {
    unsigned status = 0;
    std::string body;
};

template <class Stream>
result<http_answer> exchange(Stream& stream, http::request<http::string_body>& request) {
    beast::error_code ec;
    http::write(stream, request, ec);
    if (ec) return error{"sending the request: " + ec.message()};
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(stream, buffer, parser, ec);
    if (ec) return error{"reading the answer: " + ec.message()};
    return http_answer{parser.get().result_int(), parser.get().body()};
}

result<http_answer> call(const coord_options& opts, const std::string& method, const std::string& path,
                         const std::string& body, bool admin) {
    std::string base_url = opts.url;
    if (base_url.empty()) {
        const char* env = std::getenv("MESHCOORD_URL");
        base_url = env ? env : "http://127.0.0.1:7080";
    }
    auto url = parse_url(base_url);
    if (!url) return error{"--coord: " + url.error_message()};
    std::string token;
    if (admin) {
        if (!opts.token_file.empty()) {
            std::ifstream in(opts.token_file);
            if (!in) return error{"--token-file " + opts.token_file + ": cannot read it"};
            std::getline(in, token);
        } else if (const char* env = std::getenv("MESHCOORD_ADMIN_TOKEN")) {
            token = env;
        }
        while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
        if (token.empty()) return error{"no admin token: give --token-file FILE or set MESHCOORD_ADMIN_TOKEN"};
    }

    http::request<http::string_body> request{http::string_to_verb(method), url->base + path, 11};
    request.set(http::field::host, url->host);
    request.set(http::field::user_agent, "meshctl/" MESHFWD_VERSION);
    if (!token.empty()) request.set(http::field::authorization, "Bearer " + token);
    if (!body.empty()) {
        request.set(http::field::content_type, "application/json");
        request.body() = body;
    }
    request.prepare_payload();

    asio::io_context io;
    beast::error_code ec;
    tcp::resolver resolver(io);
    auto addresses = resolver.resolve(url->host, url->port, ec);
    if (ec) return error{"cannot resolve " + url->host + ": " + ec.message()};
    const std::string where = "meshcoord at " + base_url;
    if (!url->tls) {
        beast::tcp_stream stream(io);
        stream.expires_after(std::chrono::seconds(10));
        stream.connect(addresses, ec);
        if (ec) return error{"cannot reach " + where + ": " + ec.message()};
        auto answer = exchange(stream, request);
        if (!answer) return error{where + ": " + answer.error_message()};
        return answer;
    }
    asio::ssl::context tls(asio::ssl::context::tls_client);
    if (opts.ca_file.empty()) {
        tls.set_default_verify_paths(ec);
    } else {
        tls.load_verify_file(opts.ca_file, ec);
    }
    if (ec) return error{"TLS trust store: " + ec.message()};
    tls.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(io, tls);
    SSL_set_tlsext_host_name(stream.native_handle(), url->host.c_str());
    SSL_set1_host(stream.native_handle(), url->host.c_str());
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    beast::get_lowest_layer(stream).connect(addresses, ec);
    if (ec) return error{"cannot reach " + where + ": " + ec.message()};
    stream.handshake(asio::ssl::stream_base::client, ec);
    if (ec) return error{where + ": TLS handshake: " + ec.message()};
    auto answer = exchange(stream, request);
    if (!answer) return error{where + ": " + answer.error_message()};
    return answer;
}

// Prints the answer's error (or the transport error) and returns the exit status.
int report_failure(const result<http_answer>& answer) {
    if (!answer) {
        std::fprintf(stderr, "meshctl: %s\n", answer.error_message().c_str());
        return exit_failed;
    }
    auto body = nlohmann::json::parse(answer->body, nullptr, false);
    std::string message = answer->body;
    if (body.is_object() && body.contains("error") && body["error"].is_object() &&
        body["error"].value("message", "").size() > 0)
        message = body["error"]["message"].get<std::string>();
    std::fprintf(stderr, "meshctl: meshcoord answered %u: %s\n", answer->status, message.c_str());
    return exit_failed;
}

bool ok(const result<http_answer>& answer) { return answer && answer->status >= 200 && answer->status < 300; }

std::string read_file(const std::string& path, bool& good) {
    std::ifstream in(path);
    good = static_cast<bool>(in);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string url_segment(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') {
            out.push_back(c);
        } else {
            char hex[4];
            std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
            out += hex;
        }
    }
    return out;
}

} // namespace

void add_coord_options(CLI::App& cmd, coord_options& opts) {
    cmd.add_option("--coord", opts.url, "meshcoord's URL (default: $MESHCOORD_URL, else http://127.0.0.1:7080)");
    cmd.add_option("--token-file", opts.token_file, "file with the admin token (default: $MESHCOORD_ADMIN_TOKEN)");
    cmd.add_option("--ca-file", opts.ca_file, "CA certificate to trust for https:// (default: the system's)");
    cmd.add_flag("--json", opts.json, "print meshcoord's JSON answer");
}

int run_networks_create(const coord_options& coord, const network_create_options& opts) {
    coord::create_network_request request;
    request.id = opts.id;
    request.name = opts.name;
    request.cidr = opts.cidr;
    request.options.require_admission = !opts.open;
    request.options.auto_approve = !opts.manual_approval;
    request.options.max_peers = opts.max_peers;
    if (!opts.jwt_hs256_secret_file.empty()) {
        bool good = false;
        request.options.jwt.hs256_secret = read_file(opts.jwt_hs256_secret_file, good);
        while (!request.options.jwt.hs256_secret.empty() && std::isspace(static_cast<unsigned char>(request.options.jwt.hs256_secret.back())))
            request.options.jwt.hs256_secret.pop_back();
        if (!good) {
            std::fprintf(stderr, "meshctl: --jwt-hs256-secret-file %s: cannot read it\n", opts.jwt_hs256_secret_file.c_str());
            return exit_usage;
        }
    }
    if (!opts.jwt_rs256_public_key_file.empty()) {
        bool good = false;
        request.options.jwt.rs256_public_key_pem = read_file(opts.jwt_rs256_public_key_file, good);
        if (!good) {
            std::fprintf(stderr, "meshctl: --jwt-rs256-public-key %s: cannot read it\n", opts.jwt_rs256_public_key_file.c_str());
            return exit_usage;
        }
    }
    auto answer = call(coord, "POST", "/api/v1/mesh/networks", coord::to_json(request), true);
    if (!ok(answer)) return report_failure(answer);
    auto view = coord::parse_network_view(answer->body);
    if (coord.json || !view) {
        std::printf("%s\n", answer->body.c_str());
        return 0;
    }
    std::printf("network %s (%s): %s, IPv6 %s\n", view->id.c_str(), view->name.c_str(), view->cidr.c_str(),
                view->ula_prefix.c_str());
    return 0;
}

int run_networks_list(const coord_options& coord) {
    auto answer = call(coord, "GET", "/api/v1/mesh/networks", "", true);
    if (!ok(answer)) return report_failure(answer);
    auto body = nlohmann::json::parse(answer->body, nullptr, false);
    if (coord.json || !body.is_object() || !body.contains("networks") || !body["networks"].is_array()) {
        std::printf("%s\n", answer->body.c_str());
        return 0;
    }
    std::printf("%-24s %-20s %-18s %s\n", "ID", "NAME", "CIDR", "IPV6");
    for (const auto& network : body["networks"]) {
        auto view = coord::parse_network_view(network.dump());
        if (!view) continue;
        std::printf("%-24s %-20s %-18s %s\n", view->id.c_str(), view->name.c_str(), view->cidr.c_str(),
                    view->ula_prefix.c_str());
    }
    return 0;
}

int run_networks_delete(const coord_options& coord, const std::string& id) {
    auto answer = call(coord, "DELETE", "/api/v1/mesh/networks/" + url_segment(id), "", true);
    if (!ok(answer)) return report_failure(answer);
    std::printf("deleted network %s\n", id.c_str());
    return 0;
}

int run_invite(const coord_options& coord, const std::string& network, unsigned hours) {
    auto answer = call(coord, "POST",
                       "/api/v1/mesh/networks/" + url_segment(network) + "/invites?hours=" + std::to_string(hours), "",
                       true);
    if (!ok(answer)) return report_failure(answer);
    auto body = nlohmann::json::parse(answer->body, nullptr, false);
    if (coord.json || !body.is_object() || !body.contains("code") || !body["code"].is_string()) {
        std::printf("%s\n", answer->body.c_str());
        return 0;
    }
    std::printf("%s\n", body["code"].get<std::string>().c_str());
    if (body.contains("expires") && body["expires"].is_string())
        std::fprintf(stderr, "meshctl: single use, expires %s; join with: meshctl join '<code>'\n",
                     body["expires"].get<std::string>().c_str());
    return 0;
}

int run_approve(const coord_options& coord, const std::string& network, const std::string& peer) {
    auto answer = call(coord, "POST",
                       "/api/v1/mesh/networks/" + url_segment(network) + "/peers/" + url_segment(peer) + "/approve", "",
                       true);
    if (!ok(answer)) return report_failure(answer);
    std::printf("approved %s\n", peer.c_str());
    return 0;
}

int run_coord_peers(const coord_options& coord, const std::string& network) {
    auto answer = call(coord, "GET", "/api/v1/mesh/networks/" + url_segment(network) + "/peers", "", true);
    if (!ok(answer)) return report_failure(answer);
    auto peers = coord::parse_peer_list(answer->body);
    if (coord.json || !peers) {
        std::printf("%s\n", answer->body.c_str());
        return 0;
    }
    std::printf("%-18s %-44s %-15s %-24s %-8s %-8s %s\n", "ID", "PUBLIC KEY", "IPV4", "HOSTNAME", "ONLINE", "APPROVED",
                "ENDPOINT");
    for (const auto& peer : *peers) {
        std::printf("%-18s %-44s %-15s %-24s %-8s %-8s %s\n", peer.id.c_str(), peer.public_key.c_str(),
                    peer.virtual_ip.c_str(), peer.hostname.c_str(), peer.online ? "yes" : "no",
                    peer.approved ? "yes" : "pending", peer.endpoint.empty() ? "-" : peer.endpoint.c_str());
    }
    return 0;
}

std::string join_config_text(const join_options& opts, const std::string& network_id,
                             const std::vector<std::string>& servers, const std::string& server_public_key,
                             const std::string& key_file) {
    std::string text;
    text += "# Written by `meshctl join`: this node joins meshcoord's network '" + network_id + "'.\n";
    text += "# The invite below is used once, at the first registration; meshcoord then knows the key.\n";
    text += "node:\n";
    text += "  name: " + opts.name + "\n";
    text += "  private_key_file: " + key_file + "\n";
    text += "  listen_port: " + std::to_string(opts.listen_port) + "\n";
    text += "mesh:\n";
    text += "  enabled: true\n";
    text += "  network_id: " + network_id + "\n";
    text += "  device: {type: tun, name: " + opts.device + "}\n";
    text += "  discovery:\n";
    text += "    server:\n";
    for (const auto& server : servers) text += "      - \"" + server + "\"\n";
    text += "    server_public_key: \"" + server_public_key + "\"\n";
    text += "    invite: \"" + opts.code + "\"\n";
    text += "api:\n";
    text += "  listen: " + opts.api_listen + "\n";
    return text;
}

int run_join(const join_options& input) {
    join_options opts = input;
    auto code = coord::decode_invite(opts.code);
    if (!code) {
        std::fprintf(stderr, "meshctl: invite: %s\n", code.error_message().c_str());
        return exit_failed;
    }
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    if (code->expires_unix < now) {
        std::fprintf(stderr, "meshctl: invite: expired (ask for a new one: meshctl invite %s)\n",
                     code->network_id.c_str());
        return exit_failed;
    }
    if (opts.name.empty()) {
        char host[256] = {};
        if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "node");
        opts.name = host;
        for (char& c : opts.name) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '-';
        }
    }
    namespace fs = std::filesystem;
    const fs::path config_path = opts.config_file;
    const fs::path directory = config_path.has_parent_path() ? config_path.parent_path() : fs::path(".");
    const std::string key_name = opts.key_file.empty() ? opts.name + ".key" : opts.key_file;
    const fs::path key_path = fs::path(key_name).is_absolute() ? fs::path(key_name) : directory / key_name;
    std::error_code ec;
    if (fs::exists(config_path, ec)) {
        std::fprintf(stderr, "meshctl: %s exists; refusing to overwrite it (remove it or give -o)\n",
                     config_path.c_str());
        return exit_failed;
    }
    if (fs::exists(key_path, ec)) {
        std::fprintf(stderr, "meshctl: %s exists; refusing to overwrite a key (remove it or give --key)\n",
                     key_path.c_str());
        return exit_failed;
    }
    auto key = control::create_private_key_file(key_path);
    if (!key) {
        std::fprintf(stderr, "meshctl: %s\n", key.error_message().c_str());
        return exit_failed;
    }
    const std::string text = join_config_text(opts, code->network_id, code->server_urls,
                                              crypto::key_to_base64(code->server_public_key), key_name);
    // O_EXCL: a file created meanwhile is not overwritten; 0600, since the invite is a credential.
    const int fd = ::open(config_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) || ::fsync(fd) != 0) {
        std::fprintf(stderr, "meshctl: cannot write %s: %s\n", config_path.c_str(), std::strerror(errno));
        if (fd >= 0) ::close(fd);
        return exit_failed;
    }
    ::close(fd);
    const auto pub = crypto::derive_public_key(*key);
    std::printf("wrote %s and %s (public key %s) for network %s; start the node with:\n  meshfwd -c %s\n",
                config_path.c_str(), key_path.c_str(), crypto::key_to_base64(pub).c_str(), code->network_id.c_str(),
                config_path.c_str());
    return 0;
}

} // namespace meshfwd::meshctl
