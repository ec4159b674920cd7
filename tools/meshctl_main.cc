// meshctl: the operator CLI. Main thread only; each subcommand runs to completion and exits.
//
// Exit codes (also in --help): 0 success; 1 the operation failed (bad key on stdin, no ping
// reply, meshfwd's API unreachable or answering badly); 2 usage or configuration error.
#include "crypto/x25519.h"
#include "tools/meshctl_api.h"
#include "tools/meshctl_keys.h"
#include "tools/meshctl_ping.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

namespace {

constexpr int exit_usage = 2;

constexpr const char* exit_code_help =
    "Exit codes: 0 success; 1 the operation failed (key on stdin rejected, no ping reply,\n"
    "meshfwd's API unreachable or answering badly); 2 usage or configuration error.";

} // namespace

int main(int argc, char** argv) {
    using namespace meshfwd;

    CLI::App app{"meshctl: operator CLI for meshfwd"};
    app.footer(exit_code_help);
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("meshctl ") + MESHFWD_VERSION);

    auto* genkey = app.add_subcommand("genkey", "Print a new private key (like `wg genkey`)");
    auto* pubkey = app.add_subcommand("pubkey", "Read a private key on stdin, print its public key (like `wg pubkey`)");
    auto* genpsk = app.add_subcommand("genpsk", "Print a new pre-shared key (like `wg genpsk`)");

    meshctl::ping_options ping_opts;
    auto* ping = app.add_subcommand("ping", "Handshake with a WireGuard peer and ping an address inside the tunnel");
    meshctl::add_ping_options(*ping, ping_opts);

    meshctl::api_options status_opts;
    auto* status = app.add_subcommand("status", "Show the running node: workers, traffic, drops, handshakes");
    meshctl::add_api_options(*status, status_opts);
    meshctl::api_options peers_opts;
    auto* peers = app.add_subcommand("peers", "Show the running node's peers (like `wg show`)");
    meshctl::add_api_options(*peers, peers_opts);

    // CLI11 would answer "A subcommand is required" for a mistyped one: name it and list them.
    if (argc > 1 && argv[1][0] != '-') {
        const std::string given = argv[1];
        std::string known;
        bool found = false;
        for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
            found = found || sub->get_name() == given;
            known += (known.empty() ? "" : ", ") + sub->get_name();
        }
        if (!found) {
            std::fprintf(stderr, "meshctl: error: unknown subcommand '%s'; known subcommands: %s (meshctl --help)\n",
                         given.c_str(), known.c_str());
            return exit_usage;
        }
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        // --help and --version are successes; every real parse error is a usage error.
        return rc == 0 ? 0 : exit_usage;
    }

    if (!crypto::crypto_init()) {
        std::fputs("meshctl: libsodium failed to initialise\n", stderr);
        return 1;
    }
    if (genkey->parsed()) {
        return meshctl::run_genkey(stdout);
    }
    if (pubkey->parsed()) {
        return meshctl::run_pubkey(stdin, stdout);
    }
    if (genpsk->parsed()) {
        return meshctl::run_genpsk(stdout);
    }
    if (ping->parsed()) {
        return meshctl::run_ping(ping_opts);
    }
    if (status->parsed()) {
        return meshctl::run_status(status_opts);
    }
    if (peers->parsed()) {
        return meshctl::run_peers(peers_opts);
    }
    return exit_usage;
}
