// meshfwd-wg IFNAME: meshfwd's data plane as a drop-in for `wireguard-go IFNAME`, configured only
// through WireGuard's cross-platform UAPI socket (/var/run/wireguard/IFNAME.sock), so `wg`,
// `wg-quick` (WG_QUICK_USERSPACE_IMPLEMENTATION=meshfwd-wg) and wgctrl-based tools drive it.
//
// As wireguard-go: creates the TUN device left down and unconfigured (MTU 1420, no address, no
// key, a kernel-chosen UDP port until `listen_port` is set), serves the UAPI, and goes to the
// background once both exist unless -f/--foreground or WG_PROCESS_FOREGROUND=1; the parent exits
// 0 only after the child is ready, so `wg setconf` may follow at once. LOG_LEVEL=verbose|debug|
// error|silent (also trace, info, warn, off); default error. In the background, stdout and
// stderr stay the caller's only when LOG_LEVEL is set (and not silent), as wireguard-go's. Exits 0, removing the socket and the
// device, on SIGTERM/SIGINT or when the device is deleted (`ip link del`). Moving the device to
// another namespace (`ip link set IFNAME netns NS`) keeps it working: the UDP sockets and the UAPI
// socket stay where meshfwd-wg runs.
//
// Workers: one per CPU the process may run on (sched_getaffinity), at most 64; MESHFWD_CORES=LIST
// (e.g. 0-1) pins them instead.
//
// Runs on the main thread until node::run (see control/node.h).
#include "control/config.h"
#include "control/node.h"
#include "crypto/x25519.h"
#include "dataplane/peer.h"
#include "lib/cpu_list.h"
#include "lib/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

using namespace meshfwd;

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;

void usage(const char* argv0) {
    std::fprintf(stderr,
                 "Usage: %s [-f/--foreground] INTERFACE-NAME\n"
                 "meshfwd's data plane behind WireGuard's cross-platform UAPI (like wireguard-go).\n"
                 "Environment: WG_PROCESS_FOREGROUND=1, LOG_LEVEL=verbose|debug|error|silent,\n"
                 "MESHFWD_CORES=LIST (default: one worker per CPU this process may run on, at most 64).\n",
                 argv0);
}

std::string log_level_from_env() {
    const char* v = std::getenv("LOG_LEVEL");
    const std::string_view level = v != nullptr ? v : "";
    if (level.empty() || level == "error") return "error";
    if (level == "verbose" || level == "debug") return "debug";
    if (level == "silent") return "off";
    return std::string(level);  // trace, info, warn, off: setup_logging checks them
}

bool env_true(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && std::string_view(v) == "1";
}

}  // namespace

int main(int argc, char** argv) {
    bool foreground = env_true("WG_PROCESS_FOREGROUND");
    std::string ifname;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "-f" || a == "--foreground") {
            foreground = true;
        } else if (a == "--version") {
            std::printf("meshfwd-wg %s\n", MESHFWD_VERSION);
            return exit_ok;
        } else if (a == "-h" || a == "--help") {
            usage(argv[0]);
            return exit_ok;
        } else if (ifname.empty() && !a.starts_with("-")) {
            ifname = a;
        } else {
            usage(argv[0]);
            return exit_failure;
        }
    }
    if (ifname.empty()) {
        usage(argv[0]);
        return exit_failure;
    }
    if (auto logging = setup_logging(log_level_from_env()); !logging) {
        std::fprintf(stderr, "meshfwd-wg: error: LOG_LEVEL: %s\n", logging.error_message().c_str());
        return exit_failure;
    }

    std::vector<unsigned> cores;
    if (const char* list = std::getenv("MESHFWD_CORES"); list != nullptr && *list != '\0') {
        auto parsed = parse_cpu_list(list);
        if (!parsed || parsed->empty()) {
            std::fprintf(stderr, "meshfwd-wg: error: MESHFWD_CORES=%s: %s\n", list,
                         parsed ? "names no CPU" : parsed.error_message().c_str());
            return exit_failure;
        }
        cores = std::move(*parsed);
    } else {
        auto allowed = allowed_cpus();
        if (!allowed || allowed->empty()) {
            std::fprintf(stderr, "meshfwd-wg: error: %s; set MESHFWD_CORES\n",
                         allowed ? "this process may run on no CPU" : allowed.error_message().c_str());
            return exit_failure;
        }
        cores = std::move(*allowed);
    }
    if (cores.size() > dataplane::max_lanes) {
        cores.resize(dataplane::max_lanes);
    }

    // Background: fork before any thread exists; the parent waits for the child to say the
    // device and socket are ready (one byte) or to fail (EOF), and exits accordingly.
    int ready_fd = -1;
    if (!foreground) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) {
            std::fprintf(stderr, "meshfwd-wg: error: pipe: %s\n", std::strerror(errno));
            return exit_failure;
        }
        const pid_t child = ::fork();
        if (child < 0) {
            std::fprintf(stderr, "meshfwd-wg: error: fork: %s\n", std::strerror(errno));
            return exit_failure;
        }
        if (child > 0) {
            ::close(p[1]);
            // One byte 1: ready. Otherwise the child's error text (its stderr may be /dev/null).
            std::string got;
            char buf[512];
            for (;;) {
                const ssize_t n = ::read(p[0], buf, sizeof(buf));
                if (n > 0) {
                    got.append(buf, static_cast<std::size_t>(n));
                } else if (n == 0 || errno != EINTR) {
                    break;
                }
            }
            if (got.size() == 1 && got[0] == 1) {
                return exit_ok;
            }
            std::fprintf(stderr, "meshfwd-wg: error: %s\n", got.empty() ? "the background process exited" : got.c_str());
            int status = 0;
            ::waitpid(child, &status, 0);
            return exit_failure;
        }
        ::close(p[0]);
        ready_fd = p[1];
        ::setsid();
        // As wireguard-go: the background process keeps the caller's stdout/stderr only when
        // LOG_LEVEL asks for logs; otherwise a caller reading our output to EOF (wg-quick under
        // a pipe) would wait for as long as we run.
        const char* level = std::getenv("LOG_LEVEL");
        const bool keep_output = level != nullptr && *level != '\0' && std::string_view(level) != "silent";
        if (const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC); null >= 0) {
            ::dup2(null, STDIN_FILENO);
            if (!keep_output) {
                ::dup2(null, STDOUT_FILENO);
                ::dup2(null, STDERR_FILENO);
            }
            ::close(null);
        }
    }

    if (auto prepared = control::prepare_node_process(); !prepared) {
        std::fprintf(stderr, "meshfwd-wg: error: %s\n", prepared.error_message().c_str());
        return exit_failure;
    }

    control::config cfg;
    cfg.mesh.device.name = ifname;
    cfg.mesh.device.mtu = 1420;  // wireguard-go's default; wg-quick sets its own
    cfg.node.listen_port = 0;
    cfg.node.name = ifname;
    control::node node(std::move(cfg), control::node_options{.cores = cores, .wg_mode = true, .serve_uapi = true});
    if (auto started = node.start(); !started) {
        if (ready_fd >= 0) {
            const std::string& m = started.error_message();
            [[maybe_unused]] const ssize_t n = ::write(ready_fd, m.data(), m.size());
        } else {
            std::fprintf(stderr, "meshfwd-wg: error: %s\n", started.error_message().c_str());
        }
        return exit_failure;
    }
    if (ready_fd >= 0) {
        const char byte = 1;
        [[maybe_unused]] const ssize_t n = ::write(ready_fd, &byte, 1);
        ::close(ready_fd);
    }
    return node.run();
}
