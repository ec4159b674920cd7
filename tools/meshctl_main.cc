// meshctl: the operator CLI. Main thread only; each subcommand runs to completion and exits.
//
// Exit codes (also in --help): 0 success; 1 the operation failed (bad key on stdin, no ping
// reply, meshfwd's API unreachable or answering badly); 2 usage or configuration error.
#include "crypto/x25519.h"
#include "tools/meshctl_api.h"
#include "tools/meshctl_coord.h"
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

    // meshcoord (admin calls) and joining a network by invite.
    meshctl::coord_options coord_opts;
    auto* networks = app.add_subcommand("networks", "Manage meshcoord's networks (admin)");
    networks->require_subcommand(1);
    meshctl::network_create_options create_opts;
    auto* networks_create = networks->add_subcommand("create", "Create a network");
    networks_create->add_option("name", create_opts.name, "Network name")->required();
    networks_create->add_option("--id", create_opts.id, "Network id ([a-z0-9-], default: generated)");
    networks_create->add_option("--cidr", create_opts.cidr, "IPv4 range the nodes get addresses from")->capture_default_str();
    networks_create->add_flag("--open", create_opts.open, "Admit any key without an invite or token (seed 003 style)");
    networks_create->add_flag("--manual-approval", create_opts.manual_approval,
                              "New nodes without an invite wait for `meshctl approve`");
    networks_create->add_option("--max-peers", create_opts.max_peers, "Most peers a node learns (0: all)");
    networks_create->add_option("--jwt-hs256-secret-file", create_opts.jwt_hs256_secret_file, "Accept HS256 node tokens signed with this secret");
    networks_create->add_option("--jwt-rs256-public-key", create_opts.jwt_rs256_public_key_file, "Accept RS256 node tokens signed by this key (PEM)");
    meshctl::add_coord_options(*networks_create, coord_opts);
    auto* networks_list = networks->add_subcommand("list", "List networks");
    meshctl::add_coord_options(*networks_list, coord_opts);
    std::string network_id;
    auto* networks_delete = networks->add_subcommand("delete", "Delete a network and all its peers");
    networks_delete->add_option("id", network_id, "Network id")->required();
    meshctl::add_coord_options(*networks_delete, coord_opts);

    unsigned invite_hours = 24;
    auto* invite = app.add_subcommand("invite", "Print a single-use invite code for a network (admin)");
    invite->add_option("network", network_id, "Network id")->required();
    invite->add_option("--hours", invite_hours, "Hours until the code expires")->capture_default_str()->check(CLI::Range(1, 8760));
    meshctl::add_coord_options(*invite, coord_opts);

    std::string peer_ref;
    auto* approve = app.add_subcommand("approve", "Approve a node waiting in a network (admin)");
    approve->add_option("network", network_id, "Network id")->required();
    approve->add_option("peer", peer_ref, "peer-... id or public key")->required();
    meshctl::add_coord_options(*approve, coord_opts);

    auto* coord_peers = app.add_subcommand("coord-peers", "List what meshcoord knows of a network's peers (admin)");
    coord_peers->add_option("network", network_id, "Network id")->required();
    meshctl::add_coord_options(*coord_peers, coord_opts);

    meshctl::join_options join_opts;
    auto* join = app.add_subcommand("join", "Write mesh.yaml and a key to join a network with an invite code");
    join->add_option("code", join_opts.code, "The invite code (from `meshctl invite`)")->required();
    join->add_option("-o,--config", join_opts.config_file, "mesh.yaml to write (never overwritten)")->capture_default_str();
    join->add_option("--key", join_opts.key_file, "Private key file to create (default: NAME.key beside the config)");
    join->add_option("--name", join_opts.name, "Node name (default: the host name)");
    join->add_option("--listen-port", join_opts.listen_port, "UDP port")->capture_default_str();
    join->add_option("--device", join_opts.device, "TUN device name")->capture_default_str();
    join->add_option("--api-listen", join_opts.api_listen, "Local API address")->capture_default_str();

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
    if (networks_create->parsed()) return meshctl::run_networks_create(coord_opts, create_opts);
    if (networks_list->parsed()) return meshctl::run_networks_list(coord_opts);
    if (networks_delete->parsed()) return meshctl::run_networks_delete(coord_opts, network_id);
    if (invite->parsed()) return meshctl::run_invite(coord_opts, network_id, invite_hours);
    if (approve->parsed()) return meshctl::run_approve(coord_opts, network_id, peer_ref);
    if (coord_peers->parsed()) return meshctl::run_coord_peers(coord_opts, network_id);
    if (join->parsed()) return meshctl::run_join(join_opts);
    return exit_usage;
}
