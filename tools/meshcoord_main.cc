// meshcoord: the coordination service. Parses the command line and meshcoord.yaml, opens the
// store, and runs the HTTP/WebSocket API, the offline sweeper and the STUN responder on one
// io_context thread (the main thread); heartbeat batches commit on the batcher's writer thread
// through a second store object. The store's change listener may fire on its own thread
// (PostgreSQL) or the writer thread (SQLite) and only posts to the io_context.
//
// Exit codes: 0 clean stop (SIGINT/SIGTERM), 1 cannot start (bad config, store, address),
// 2 usage error.
#include <utility> // before Boost 1.74's asio/awaitable.hpp (std::exchange)
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <cstdio>
#include <string>
#include <vector>

#include "coord/api.h"
#include "coord/api_support.h"
#include "coord/event_hub.h"
#include "coord/heartbeat_batcher.h"
#include "coord/http_server.h"
#include "coord/server_config.h"
#include "coord/store.h"
#include "coord/stun_responder.h"
#include "crypto/x25519.h"
#include "lib/log.h"

namespace {

using namespace meshfwd;
namespace asio = boost::asio;

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

int fail(const std::string& message) {
    std::fprintf(stderr, "meshcoord: error: %s\n", message.c_str());
    return exit_failure;
}

asio::awaitable<void> sweep_offline(asio::io_context& io, coord::store& db, std::chrono::seconds offline_after,
                                    std::chrono::seconds interval) {
    asio::steady_timer timer(io);
    for (;;) {
        timer.expires_after(interval);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        auto flipped = db.mark_offline(coord::unix_ms() - std::chrono::milliseconds(offline_after).count());
        if (!flipped) {
            spdlog::warn("offline sweep: {}", flipped.error_message());
        } else if (!flipped->empty()) {
            spdlog::info("{} peer(s) offline: no heartbeat for {} s", flipped->size(), offline_after.count());
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"meshcoord: meshfwd's coordination service (networks, enrolment, IPAM, peer sync, STUN)"};
    app.footer("Exit codes: 0 clean stop; 1 cannot start; 2 usage error.\n"
               "The admin token comes from --admin-token-file or MESHCOORD_ADMIN_TOKEN, never the command line.\n"
               "Example: meshcoord --listen 127.0.0.1:7080 --db sqlite:/var/lib/meshcoord/db.sqlite");
    std::string config_file, listen, db, stun_listen, tls_cert, tls_key, token_file, legacy_network, log_level = "info";
    std::vector<std::string> public_urls;
    app.add_option("-c,--config", config_file, "meshcoord.yaml (settings below override it)");
    app.add_option("--listen", listen, "ADDR:PORT for the HTTP API (default 127.0.0.1:7080)");
    app.add_option("--db", db, "sqlite:FILE (default sqlite:meshcoord.db) or postgresql://...");
    app.add_option("--stun-listen", stun_listen, "ADDR:PORT for a STUN binding responder (RFC 8489)");
    app.add_option("--tls-cert", tls_cert, "PEM certificate chain: serve HTTPS/WSS");
    app.add_option("--tls-key", tls_key, "PEM private key for --tls-cert");
    app.add_option("--admin-token-file", token_file, "file holding the admin bearer token (mode 0600)");
    app.add_option("--public-url", public_urls, "URL nodes reach this server at, put in invites (repeat for replicas)");
    app.add_option("--legacy-network", legacy_network, "serve seed 003's /register, /heartbeat, /peers on this open network");
    std::string ready_file;
    unsigned request_timeout_s = 10;
    app.add_option("--request-timeout", request_timeout_s,
                   "seconds a client has to send a whole request (slow clients are closed)")
        ->capture_default_str()->check(CLI::Range(1, 600));
    app.add_option("--ready-file", ready_file,
                   "once listening, write the HTTP port (and the STUN port) to this file: for scripts using port 0");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? exit_ok : exit_usage;
    }
    if (auto logging = setup_logging(log_level); !logging) {
        std::fprintf(stderr, "meshcoord: %s\n", logging.error_message().c_str());
        return exit_usage;
    }
    if (!crypto::crypto_init()) return fail("libsodium failed to initialise");
    {
        // One descriptor per subscribed node: take the hard limit, not the 1,024 default.
        rlimit files{};
        if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
            files.rlim_cur = files.rlim_max;
            setrlimit(RLIMIT_NOFILE, &files);
        }
    }

    coord::server_config config;
    if (!config_file.empty()) {
        auto loaded = coord::load_server_config(config_file);
        if (!loaded) return fail(loaded.error_message());
        config = std::move(*loaded);
    }
    if (!listen.empty()) config.listen = listen;
    if (!db.empty()) config.db = db;
    if (!stun_listen.empty()) config.stun_listen = stun_listen;
    if (!tls_cert.empty()) config.tls_cert = tls_cert;
    if (!tls_key.empty()) config.tls_key = tls_key;
    if (!token_file.empty()) config.admin_token_file = token_file;
    if (!public_urls.empty()) config.public_urls = public_urls;
    if (!legacy_network.empty()) config.legacy_network = legacy_network;
    if (config.db.empty()) config.db = "sqlite:meshcoord.db";

    auto token = coord::load_admin_token(config.admin_token_file);
    if (!token) return fail(token.error_message());
    auto listen_endpoint = coord::parse_listen_address(config.listen);
    if (!listen_endpoint) return fail("listen " + listen_endpoint.error_message());
    if (config.public_urls.empty() && !listen_endpoint->address().is_unspecified()) {
        const std::string scheme = config.tls_cert.empty() ? "http://" : "https://";
        config.public_urls.push_back(scheme + config.listen);
    }

    auto store = coord::open_store(config.db);
    if (!store) return fail("db " + config.db + ": " + store.error_message());
    coord::server_identity fresh;
    {
        const crypto::secret32 secret = crypto::generate_private_key();
        const crypto::public_key pub = crypto::derive_public_key(secret);
        fresh.x25519_secret.assign(secret.data(), secret.data() + 32);
        fresh.x25519_public.assign(pub.begin(), pub.end());
    }
    auto identity = (*store)->load_or_store_identity(fresh);
    if (!identity) return fail("db " + config.db + ": server identity: " + identity.error_message());
    if (identity->x25519_secret.size() != 32 || identity->x25519_public.size() != 32)
        return fail("db " + config.db + ": the stored server identity is damaged (wrong key sizes)");

    asio::io_context io(1);
    coord::event_hub hub(**store);
    // Heartbeats commit on a thread of their own, through a connection of their own, so that a
    // batch's fsync never stalls the server thread.
    auto beat_store = coord::open_store(config.db);
    if (!beat_store) return fail("db " + config.db + " (heartbeat writer): " + beat_store.error_message());
    coord::heartbeat_batcher beats(io, **beat_store);
    coord::api_options api_options;
    api_options.admin_token = *token;
    api_options.public_urls = config.public_urls;
    api_options.legacy_network = config.legacy_network;
    api_options.offline_after = config.offline_after;
    coord::api handler(io, **store, hub, beats, api_options, *identity);
    auto on_change = [&io, &hub](const std::string& network, int64_t version) {
        asio::post(io, [&hub, network, version] { hub.on_change(network, version); });
    };
    (*store)->set_change_listener(on_change);
    if (!(*store)->hears_other_connections()) (*beat_store)->set_change_listener(on_change);

    coord::http_server_options http_options;
    http_options.listen = config.listen;
    http_options.tls_cert_file = config.tls_cert;
    http_options.tls_key_file = config.tls_key;
    http_options.request_timeout = std::chrono::seconds(request_timeout_s);
    coord::http_server server(io, handler, hub, http_options);
    if (auto started = server.start(); !started) return fail(started.error_message());

    std::optional<coord::stun_responder> stun;
    if (!config.stun_listen.empty()) {
        stun.emplace(io);
        if (auto started = stun->start(config.stun_listen); !started) return fail("stun-listen " + started.error_message());
    }

    asio::co_spawn(io, sweep_offline(io, **store, config.offline_after, config.sweep_interval), asio::detached);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](boost::system::error_code, int signal) {
        spdlog::info("signal {}: stopping", signal);
        io.stop();
    });

    if (!ready_file.empty()) {
        // Written whole under another name, then renamed: a reader never sees half of it.
        const std::string tmp = ready_file + ".tmp";
        if (FILE* out = std::fopen(tmp.c_str(), "w")) {
            std::fprintf(out, "%u %u\n", server.port(), stun ? stun->port() : 0U);
            std::fclose(out);
            if (std::rename(tmp.c_str(), ready_file.c_str()) != 0) return fail("--ready-file " + ready_file + ": cannot write it");
        } else {
            return fail("--ready-file " + ready_file + ": cannot write it");
        }
    }
    spdlog::info("meshcoord {} listening on {} (port {}), db {}, server key {}{}{}", MESHFWD_VERSION, config.listen,
                 server.port(), config.db, crypto::key_to_base64(handler.server_public_key()),
                 token->empty() ? ", admin API off (no token)" : "",
                 stun ? ", STUN on " + config.stun_listen : std::string{});
    io.run();
    return exit_ok;
}
