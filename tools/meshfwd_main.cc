// meshfwd: the node. Parses the command line, loads and validates mesh.yaml, and (once the data
// plane exists) starts the workers on --cores and the control thread. Runs on the main thread;
// everything here happens before any other thread is started.
//
// Exit codes (also in --help): 0 success (--check passed, --help, --version); 1 the
// configuration is invalid or the node cannot run; 2 usage error (bad option, bad --cores).
#include "control/config.h"
#include "control/config_support.h"
#include "control/config_yaml.h"
#include "control/node.h"
#include "crypto/x25519.h"
#include "dataplane/peer.h"
#include "lib/cpu_list.h"
#include "lib/ip_address.h"
#include "lib/log.h"
#include "lib/units.h"

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The lanes limit as text for --help (a string literal, so it can be pasted into others).
#define MESHFWD_MAX_LANES_TEXT "64"

namespace {

using namespace meshfwd;
static_assert(meshfwd::dataplane::max_lanes == 64, "update MESHFWD_MAX_LANES_TEXT");

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

constexpr const char* footer_text =
    "Exit codes: 0 success (--check passed); 1 invalid configuration or the node cannot run;\n"
    "2 usage error (unknown option, bad --cores).\n"
    "Without --cores: one worker per CPU this process may run on (sched_getaffinity: taskset,\n"
    "cpusets), at most " MESHFWD_MAX_LANES_TEXT " (the most lanes a peer pair can use).\n"
    "Example: meshfwd --cores 2-5 -c mesh.yaml";

// Everything the command line says. The data plane will read cores, the control thread the
// rest; new options go here and in add_options().
struct options {
    std::string cores_text;
    std::vector<unsigned> cores;
    bool cores_default = false;  // not given: every allowed CPU, up to dataplane::max_lanes
    std::filesystem::path config_file;
    bool check = false;
    bool init_key = false;
    std::string log_level = "info";
};

void add_options(CLI::App& app, options& opts) {
    app.add_option("--cores", opts.cores_text,
                   "CPUs to pin the data-plane workers to, one worker each, as a list like 2-5 or 0,2,4-7 "
                   "(default: every CPU this process may run on, at most " MESHFWD_MAX_LANES_TEXT ")");
    app.add_option("-c,--config", opts.config_file, "Configuration file (mesh.yaml)")->required();
    app.add_flag("--check", opts.check, "Validate the configuration, print a summary and exit");
    app.add_flag("--init-key", opts.init_key,
                 "Create node.private_key_file (mode 0600, `wg genkey` form) if it does not exist");
    app.add_option("--log-level", opts.log_level, "trace, debug, info, warn, error or off")
        ->capture_default_str();
}

void print_errors(std::string_view messages) {
    // One problem per line, each with its own prefix so grep and editors can pick them up.
    size_t start = 0;
    while (start <= messages.size()) {
        const size_t end = std::min(messages.find('\n', start), messages.size());
        const std::string_view line = messages.substr(start, end - start);
        if (!line.empty()) {
            std::fprintf(stderr, "meshfwd: error: %.*s\n", static_cast<int>(line.size()), line.data());
        }
        start = end + 1;
    }
}

std::string plural(size_t n, const char* word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

void print_summary(const control::config& cfg, const options& opts) {
    const auto& node = cfg.node;
    std::string text = cfg.source.string() + " is valid: node " + node.name + ", public key " +
                       crypto::key_to_base64(node.public_key) + ", address " +
                       (node.address ? node.address->to_string() : std::string("from meshcoord")) +
                       ", WireGuard on UDP port " + std::to_string(node.listen_port) + "; " +
                       plural(cfg.peers.size(), "static peer") + "; ";
    if (cfg.mesh.enabled || cfg.mesh.discovery.enabled()) {
        text += "mesh network " + cfg.mesh.network_id + " on " + std::string(control::to_string(cfg.mesh.device.type)) +
                " device " + cfg.mesh.device.name + " (MTU " + std::to_string(cfg.mesh.device.mtu) + ")";
        for (size_t i = 0; i < cfg.mesh.discovery.servers.size(); ++i) {
            text += (i == 0 ? " via " : ", ") + cfg.mesh.discovery.servers[i].url();
        }
    } else {
        text += "mesh disabled, " + std::string(control::to_string(cfg.mesh.device.type)) + " device " +
                cfg.mesh.device.name + " (MTU " + std::to_string(cfg.mesh.device.mtu) + ")";
    }
    text += "; ";
    if (cfg.gateway.exit_node || !cfg.gateway.forwards.empty()) {
        text += "gateway with " + plural(cfg.gateway.forwards.size(), "forward") +
                (cfg.gateway.exit_node ? " and exit node" : "") + "; ";
    }
    text += "data plane: ";
    text += plural(opts.cores.size(), "core") + " (" + format_cpu_list(opts.cores) +
            (opts.cores_default ? ", the default: CPUs this process may run on" : "") + ")";
    text += ", poll " + std::string(control::to_string(cfg.dataplane.poll)) + ", batch " +
            std::to_string(cfg.dataplane.batch) + ", crypto " + std::string(crypto::to_string(cfg.dataplane.crypto)) + ", port " +
            control::to_string(cfg.dataplane.port.type) + "; API on " + cfg.api.listen.to_string() + ".";
    std::printf("%s\n", text.c_str());
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"meshfwd: userspace WireGuard-compatible mesh-VPN node"};
    app.footer(footer_text);
    app.set_version_flag("--version", std::string("meshfwd ") + MESHFWD_VERSION);
    options opts;
    add_options(app, opts);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        // --help and --version are successes; every real parse error is a usage error.
        return rc == 0 ? exit_ok : exit_usage;
    }

    if (opts.cores_text.empty()) {
        // One worker per CPU we may run on; more workers than lanes would share lanes for nothing.
        auto allowed = allowed_cpus();
        if (!allowed || allowed->empty()) {
            std::fprintf(stderr, "meshfwd: error: %s; give --cores\n",
                         allowed ? "this process may run on no CPU" : allowed.error_message().c_str());
            return exit_failure;
        }
        if (allowed->size() > dataplane::max_lanes) {
            allowed->resize(dataplane::max_lanes);
        }
        opts.cores = std::move(*allowed);
        opts.cores_default = true;
    } else {
        auto cores = parse_cpu_list(opts.cores_text);
        if (!cores) {
            std::fprintf(stderr, "meshfwd: error: --cores %s: %s\n", opts.cores_text.c_str(), cores.error_message().c_str());
            return exit_usage;
        }
        if (cores->empty()) {
            std::fprintf(stderr, "meshfwd: error: --cores %s: names no CPU\n", opts.cores_text.c_str());
            return exit_usage;
        }
        opts.cores = std::move(*cores);
    }
    if (auto logging = setup_logging(opts.log_level); !logging) {
        std::fprintf(stderr, "meshfwd: error: --log-level: %s\n", logging.error_message().c_str());
        return exit_usage;
    }

    auto cfg = control::load_config(opts.config_file, control::load_options{.init_key = opts.init_key});
    if (!cfg) {
        print_errors(cfg.error_message());
        return exit_failure;
    }
    if (auto fits = control::check_workers(*cfg, opts.cores.size()); !fits) {
        print_errors(fits.error_message());
        return exit_failure;
    }
    // The same warnings with --check and at start: keys this version accepts but ignores.
    for (const auto& w : cfg->warnings) {
        std::fprintf(stderr, "meshfwd: warning: %s\n", w.c_str());
    }
    if (opts.check) {
        print_summary(*cfg, opts);
        return exit_ok;
    }
    if (auto prepared = control::prepare_node_process(); !prepared) {
        std::fprintf(stderr, "meshfwd: error: %s\n", prepared.error_message().c_str());
        return exit_failure;
    }

    control::node node(std::move(*cfg), control::node_options{.cores = opts.cores});
    if (auto started = node.start(); !started) {
        print_errors(started.error_message());
        return exit_failure;
    }
    return node.run();
}
