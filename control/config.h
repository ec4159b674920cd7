// The node's configuration as plain, already-validated values: what mesh.yaml says, with every
// default filled in. Built once by load_config (control/config_yaml.h) on the main thread before
// any other thread starts; afterwards read-only, so any thread may read it. Move-only, because
// it owns the node's private key.
//
// control/README.md has the reference table (key, type, default, meaning) for every field.
#pragma once

#include "crypto/aead_burst.h"
#include "crypto/secret.h"
#include "crypto/x25519.h"
#include "lib/ip_address.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace meshfwd::control {

using std::chrono_literals::operator""s;
using std::chrono_literals::operator""min;

// A host name or IP literal with a port, as given (discovery server, STUN/TURN servers). Names
// are resolved later by the control thread, so a DNS outage cannot make a config invalid.
struct host_port {
    std::string host;
    uint16_t port = 0;
};

enum class device_type { tun, tap };

struct device_config {
    device_type type = device_type::tun;
    std::string name = "mesh0";
    uint32_t mtu = 1400;
    // Empty (the default, or "") means derived from the node's public key at start-up.
    std::optional<std::array<uint8_t, 6>> mac_address;
};

// One meshcoord replica: "http://host:port", "https://host:port" (TLS), or "host:port" (http).
struct coord_server {
    bool tls = false;
    host_port address;
    // "http://host:port" / "https://host:port", IPv6 literals in brackets.
    std::string url() const;
};

// mesh.discovery: the meshcoord client (control/coord_client.h). It runs when `servers` is not
// empty; the loader then requires mesh.network_id and server_public_key.
struct discovery_config {
    // Empty: no coordination server, only the static peers. Several: replicas of one meshcoord,
    // tried in order, the next one when one fails.
    std::vector<coord_server> servers;
    // The server's X25519 key (written by `meshctl join` from the invite): requests are signed
    // with a key derived from it, so a node only ever talks to the server it joined.
    std::optional<crypto::public_key> server_public_key;
    // Credentials for the first registration (one of them, unless the key is known already or
    // the network is open); ${VAR} keeps them out of the file.
    std::string invite;
    std::string token;
    // The registration and peer list as last received, so a node started while meshcoord is
    // down comes up with them. Default: next to the private key file, KEYSTEM.peers.json.
    std::filesystem::path cache_file;
    // What the node tells meshcoord it is reachable at. Empty: every address of the host's up,
    // non-loopback interfaces (IPv6 link-local and the mesh device excluded) with
    // node.listen_port, found again at each heartbeat.
    std::vector<endpoint> publish_endpoints;
    // The shorter of this and the interval meshcoord gives at registration is used.
    std::chrono::nanoseconds heartbeat_interval = 30s;

    bool enabled() const noexcept { return !servers.empty(); }
};

// stun:host[:port] or stuns:host[:port] (RFC 7064); default port 3478, or 5349 for stuns.
struct stun_server {
    bool secure = false;
    host_port address;
};

enum class turn_transport { udp, tcp };

// turn:host[:port][?transport=udp|tcp] or turns:... (RFC 7065), with long-term credentials.
struct turn_server {
    bool secure = false;
    host_port address;
    turn_transport transport = turn_transport::udp;
    std::string username;
    std::string password;
};

struct connection_config {
    bool direct_connect = true;
    bool relay_enabled = true;
    bool relay_via_peers = true;
    std::chrono::nanoseconds connect_timeout = 30s;
    std::chrono::nanoseconds keepalive_interval = 25s;
};

struct routing_config {
    uint32_t max_hops = 8;
    std::chrono::nanoseconds route_timeout = 5min;
    bool split_horizon = true;
};

// Seed 000's `mesh:` section, key for key.
struct mesh_config {
    bool enabled = false;
    std::string network_id;
    std::optional<ip_prefix> network_cidr;
    device_config device;
    discovery_config discovery;
    std::vector<stun_server> stun_servers;
    std::vector<turn_server> turn_servers;
    connection_config connection;
    routing_config routing;
};

struct node_config {
    // Default: the host name.
    std::string name;
    // Resolved against the config file's directory.
    std::filesystem::path private_key_file;
    crypto::secret32 private_key;
    crypto::public_key public_key{};
    uint16_t listen_port = 51820;
    // The node's overlay address with the prefix length of the overlay network, e.g. 10.100.0.1/16:
    // the first of `addresses`, which holds every address given (node.address may be a list, e.g.
    // an IPv4 and an IPv6 address). The device gets all of them. Optional with mesh.discovery
    // (meshcoord assigns the addresses): then `addresses` may be empty and `address` is unset.
    std::optional<ip_prefix> address;
    std::vector<ip_prefix> addresses;
};

struct peer_config {
    crypto::public_key public_key{};
    // A label for status output and metrics (`name="..."` beside `public_key`); empty: none.
    std::string name;
    std::optional<endpoint> endpoint_address;
    // Masked to their network address, as `wg` does.
    std::vector<ip_prefix> allowed_ips;
    // Unset (absent or 0s) means off; otherwise whole seconds in 1..65535, as in WireGuard.
    std::optional<std::chrono::seconds> persistent_keepalive;
    std::optional<std::filesystem::path> preshared_key_file;
    std::optional<crypto::secret32> preshared_key;
    // The peer runs meshfwd too: mesh frames (lane announcements, later routing) may be sent to it.
    // Off for a plain WireGuard peer, which would count them as errors.
    bool meshfwd = false;
    // Learned from meshcoord (the discovery session), not written in mesh.yaml or set with `wg`.
    bool coordinated = false;
};

enum class poll_mode { adaptive, busy };
// dataplane.crypto is the batched-AEAD backend choice itself.
using crypto_backend = crypto::aead_backend;
enum class port_type { uring, dpdk };

struct dpdk_config {
    std::vector<std::string> eal_args;
};

struct port_config {
    port_type type = port_type::uring;
    dpdk_config dpdk;
};

// dataplane.lane_ports "52000-52063": the ports the lane sockets bind (one per worker, the
// first free ones in order). `location` ("mesh.yaml:12:14") is where it was written, for the
// start-time check against the number of workers (check_workers in config_support.h).
struct port_range {
    uint16_t first = 0;
    uint16_t last = 0;
    std::string location;
    uint32_t size() const noexcept { return uint32_t{last} - first + 1; }
};

struct dataplane_config {
    // Unset: each lane socket gets a port the kernel picks.
    std::optional<port_range> lane_ports;
    poll_mode poll = poll_mode::adaptive;
    // adaptive: how long an idle worker keeps polling (yielding the CPU to anything runnable)
    // before it sleeps; a packet that arrives later costs a wake-up.
    std::chrono::nanoseconds spin{std::chrono::microseconds(50)};
    uint32_t batch = 64;
    crypto_backend crypto = crypto_backend::automatic;
    port_config port;
};

struct api_config {
    endpoint listen{ip_address::v4(0x7f000001), 7082}; // 127.0.0.1:7082: local only by default
};

enum class l4_protocol { tcp, udp };

struct health_check_config {
    std::chrono::nanoseconds interval = 10s;
    std::chrono::nanoseconds timeout = 2s;
};

// One L4 port forward (seed 004): traffic to listen_port on the underlay goes to one of the
// healthy overlay backends. Validated now; the gateway that acts on it comes later.
struct forward_config {
    std::string name;
    l4_protocol protocol = l4_protocol::tcp;
    uint16_t listen_port = 0;
    std::vector<endpoint> backends;
    health_check_config health_check;
};

struct gateway_config {
    std::vector<forward_config> forwards;
    bool exit_node = false;
};

struct config {
    // The file it was loaded from, as given to load_config.
    std::filesystem::path source;
    mesh_config mesh;
    node_config node;
    std::vector<peer_config> peers;
    dataplane_config dataplane;
    api_config api;
    gateway_config gateway;
    // Keys this version accepts but does not act on, as "file:line:col: path: message", in file
    // order; meshfwd prints them at start and with --check (control/config_support.cc).
    std::vector<std::string> warnings;
};

// Names as written in mesh.yaml, for summaries and status output.
const char* to_string(device_type v) noexcept;
const char* to_string(poll_mode v) noexcept;
const char* to_string(port_type v) noexcept;
const char* to_string(l4_protocol v) noexcept;
const char* to_string(turn_transport v) noexcept;

} // namespace meshfwd::control
