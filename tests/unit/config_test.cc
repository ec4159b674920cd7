// load_config: valid files (every field and every default), and each class of error with its
// exact "line:col: key.path:" location. Key files: config_key_file_test.cc. Test thread only.
#include "config_test_util.h"

#include "control/config.h"
#include "control/config_support.h"
#include "control/config_yaml.h"
#include "lib/units.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace meshfwd::test {
namespace {

using namespace std::chrono_literals;
using namespace meshfwd::control;

class config_test : public config_dir {};

TEST_F(config_test, minimal_config_gets_every_default) {
    const auto pub = write_key("a.key");
    auto cfg = load("node:\n  private_key_file: a.key\n  address: 10.100.0.1/16\n");
    ASSERT_TRUE(cfg.ok()) << cfg.error_message();
    const config& c = *cfg;

    EXPECT_FALSE(c.mesh.enabled);
    EXPECT_EQ(c.mesh.network_id, "");
    EXPECT_FALSE(c.mesh.network_cidr.has_value());
    EXPECT_EQ(c.mesh.device.type, device_type::tun);
    EXPECT_EQ(c.mesh.device.name, "mesh0");
    EXPECT_EQ(c.mesh.device.mtu, 1400u);
    EXPECT_FALSE(c.mesh.device.mac_address.has_value());
    EXPECT_TRUE(c.mesh.discovery.servers.empty());
    EXPECT_FALSE(c.mesh.discovery.enabled());
    EXPECT_TRUE(c.mesh.discovery.cache_file.empty());
    EXPECT_TRUE(c.mesh.discovery.publish_endpoints.empty());
    EXPECT_EQ(c.mesh.discovery.heartbeat_interval, 30s);
    EXPECT_TRUE(c.mesh.stun_servers.empty());
    EXPECT_TRUE(c.mesh.turn_servers.empty());
    EXPECT_TRUE(c.mesh.connection.direct_connect);
    EXPECT_TRUE(c.mesh.connection.relay_enabled);
    EXPECT_TRUE(c.mesh.connection.relay_via_peers);
    EXPECT_EQ(c.mesh.connection.connect_timeout, 30s);
    EXPECT_EQ(c.mesh.connection.keepalive_interval, 25s);
    EXPECT_EQ(c.mesh.routing.max_hops, 8u);
    EXPECT_EQ(c.mesh.routing.route_timeout, 5min);
    EXPECT_TRUE(c.mesh.routing.split_horizon);

    EXPECT_FALSE(c.node.name.empty()); // the host name
    EXPECT_EQ(c.node.private_key_file, path("a.key"));
    EXPECT_EQ(c.node.public_key, pub);
    EXPECT_EQ(c.node.listen_port, 51820);
    ASSERT_TRUE(c.node.address.has_value());
    EXPECT_EQ(c.node.address->to_string(), "10.100.0.1/16");

    EXPECT_TRUE(c.peers.empty());
    EXPECT_EQ(c.dataplane.poll, poll_mode::adaptive);
    EXPECT_EQ(c.dataplane.batch, 64u);
    EXPECT_EQ(c.dataplane.spin, std::chrono::microseconds(50));
    EXPECT_EQ(c.dataplane.crypto, crypto_backend::automatic);
    EXPECT_EQ(c.dataplane.port.type, port_type::uring);
    EXPECT_TRUE(c.dataplane.port.dpdk.eal_args.empty());
    EXPECT_EQ(c.api.listen.to_string(), "127.0.0.1:7082");
    EXPECT_TRUE(c.gateway.forwards.empty());
    EXPECT_FALSE(c.gateway.exit_node);
}

TEST_F(config_test, full_config_reads_every_field) {
    const auto pub = write_key("keys/a.key");
    write("keys/b.psk", crypto::key_to_base64(crypto::generate_private_key().span()) + "\n", 0600);
    const std::string peer_b = new_public_key();
    const std::string peer_c = new_public_key();
    ::setenv("MESHFWD_TEST_TURN_USER", "alice", 1);
    // Every key of the design, including those this version refuses (tap, gateway): the schema.
    auto cfg = load_schema(R"(mesh:
  enabled: true
  network_id: "my-network"
  network_cidr: "10.100.0.0/16"
  device:
    type: tap
    name: "mesh7"
    mtu: 1420
    mac_address: "02:00:5e:10:00:01"
  discovery:
    server: "coord.example.com:7080"
    server_public_key: ")" + peer_c + R"("
    heartbeat_interval: 45s
  stun:
    servers: ["stun:stun.example.com", "stuns:[2001:db8::1]:443"]
  turn:
    servers:
      - url: "turn:turn.example.com:3478?transport=tcp"
        username: "${MESHFWD_TEST_TURN_USER}"
        password: "pa$$word"
  connection:
    direct_connect: false
    relay_enabled: no
    relay_via_peers: off
    connect_timeout: 10s
    keepalive_interval: 15s
  routing:
    max_hops: 4
    route_timeout: 1h30m
    split_horizon: false
node:
  name: a
  private_key_file: keys/a.key
  listen_port: 51999
  address: 10.100.0.1/16
peers:
  - public_key: ")" + peer_b + R"("
    endpoint: "[2001:db8::2]:51820"
    allowed_ips: [10.100.0.2/32, fd00::2/128]
    persistent_keepalive: 25s
    preshared_key_file: keys/b.psk
  - public_key: ")" + peer_c + R"("
    allowed_ips: [10.100.0.3/32, 192.168.50.7/24]
    persistent_keepalive: 0s
dataplane:
  poll: busy
  spin: 200us
  batch: 256
  crypto: libsodium
  port:
    type: uring
    dpdk: {eal_args: ["--no-huge", "--no-pci"]}
api:
  listen: "[::1]:7000"
gateway:
  exit_node: true
  forwards:
    - name: web
      protocol: tcp
      listen_port: 8080
      backends: [10.100.0.2:80, 10.100.0.3:80]
      health_check: {interval: 5s, timeout: 1s}
    - name: dns
      protocol: udp
      listen_port: 53
      backends: ["[fd00::2]:53"]
)");
    ::unsetenv("MESHFWD_TEST_TURN_USER");
    ASSERT_TRUE(cfg.ok()) << cfg.error_message();
    const config& c = *cfg;

    EXPECT_TRUE(c.mesh.enabled);
    EXPECT_EQ(c.mesh.network_id, "my-network");
    ASSERT_TRUE(c.mesh.network_cidr.has_value());
    EXPECT_EQ(c.mesh.network_cidr->to_string(), "10.100.0.0/16");
    EXPECT_EQ(c.mesh.device.type, device_type::tap);
    EXPECT_EQ(c.mesh.device.name, "mesh7");
    EXPECT_EQ(c.mesh.device.mtu, 1420u);
    ASSERT_TRUE(c.mesh.device.mac_address.has_value());
    EXPECT_EQ(*c.mesh.device.mac_address, (std::array<uint8_t, 6>{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}));
    ASSERT_EQ(c.mesh.discovery.servers.size(), 1u);
    EXPECT_EQ(c.mesh.discovery.servers[0].address.host, "coord.example.com");
    EXPECT_EQ(c.mesh.discovery.servers[0].address.port, 7080);
    EXPECT_FALSE(c.mesh.discovery.servers[0].tls);
    ASSERT_TRUE(c.mesh.discovery.server_public_key.has_value());
    EXPECT_EQ(crypto::key_to_base64(*c.mesh.discovery.server_public_key), peer_c);
    // Next to the key file, named after it.
    EXPECT_EQ(c.mesh.discovery.cache_file, path("keys/a.peers.json"));
    EXPECT_EQ(c.mesh.discovery.heartbeat_interval, 45s);
    ASSERT_EQ(c.mesh.stun_servers.size(), 2u);
    EXPECT_FALSE(c.mesh.stun_servers[0].secure);
    EXPECT_EQ(c.mesh.stun_servers[0].address.host, "stun.example.com");
    EXPECT_EQ(c.mesh.stun_servers[0].address.port, 3478);
    EXPECT_TRUE(c.mesh.stun_servers[1].secure);
    EXPECT_EQ(c.mesh.stun_servers[1].address.host, "2001:db8::1");
    EXPECT_EQ(c.mesh.stun_servers[1].address.port, 443);
    ASSERT_EQ(c.mesh.turn_servers.size(), 1u);
    EXPECT_EQ(c.mesh.turn_servers[0].address.host, "turn.example.com");
    EXPECT_EQ(c.mesh.turn_servers[0].transport, turn_transport::tcp);
    EXPECT_EQ(c.mesh.turn_servers[0].username, "alice");
    EXPECT_EQ(c.mesh.turn_servers[0].password, "pa$word");
    EXPECT_FALSE(c.mesh.connection.direct_connect);
    EXPECT_FALSE(c.mesh.connection.relay_enabled);
    EXPECT_FALSE(c.mesh.connection.relay_via_peers);
    EXPECT_EQ(c.mesh.connection.connect_timeout, 10s);
    EXPECT_EQ(c.mesh.connection.keepalive_interval, 15s);
    EXPECT_EQ(c.mesh.routing.max_hops, 4u);
    EXPECT_EQ(c.mesh.routing.route_timeout, 90min);
    EXPECT_FALSE(c.mesh.routing.split_horizon);

    EXPECT_EQ(c.node.name, "a");
    EXPECT_EQ(c.node.private_key_file, path("keys/a.key"));
    EXPECT_EQ(c.node.public_key, pub);
    EXPECT_EQ(c.node.listen_port, 51999);

    ASSERT_EQ(c.peers.size(), 2u);
    EXPECT_EQ(crypto::key_to_base64(c.peers[0].public_key), peer_b);
    ASSERT_TRUE(c.peers[0].endpoint_address.has_value());
    EXPECT_EQ(c.peers[0].endpoint_address->to_string(), "[2001:db8::2]:51820");
    ASSERT_EQ(c.peers[0].allowed_ips.size(), 2u);
    EXPECT_EQ(c.peers[0].allowed_ips[1].to_string(), "fd00::2/128");
    EXPECT_EQ(c.peers[0].persistent_keepalive, std::optional<std::chrono::seconds>(25s));
    EXPECT_EQ(c.peers[0].preshared_key_file, path("keys/b.psk"));
    EXPECT_TRUE(c.peers[0].preshared_key.has_value());
    EXPECT_FALSE(c.peers[1].endpoint_address.has_value());
    // Host bits are cleared, as `wg` does.
    EXPECT_EQ(c.peers[1].allowed_ips[1].to_string(), "192.168.50.0/24");
    EXPECT_FALSE(c.peers[1].persistent_keepalive.has_value());
    EXPECT_FALSE(c.peers[1].preshared_key.has_value());

    EXPECT_EQ(c.dataplane.poll, poll_mode::busy);
    EXPECT_EQ(c.dataplane.batch, 256u);
    EXPECT_EQ(c.dataplane.spin, std::chrono::microseconds(200));
    EXPECT_EQ(c.dataplane.crypto, crypto_backend::libsodium);
    EXPECT_EQ(c.dataplane.port.dpdk.eal_args, (std::vector<std::string>{"--no-huge", "--no-pci"}));
    EXPECT_EQ(c.api.listen.to_string(), "[::1]:7000");

    EXPECT_TRUE(c.gateway.exit_node);
    ASSERT_EQ(c.gateway.forwards.size(), 2u);
    EXPECT_EQ(c.gateway.forwards[0].name, "web");
    EXPECT_EQ(c.gateway.forwards[0].protocol, l4_protocol::tcp);
    EXPECT_EQ(c.gateway.forwards[0].listen_port, 8080);
    EXPECT_EQ(c.gateway.forwards[0].backends.size(), 2u);
    EXPECT_EQ(c.gateway.forwards[0].health_check.interval, 5s);
    EXPECT_EQ(c.gateway.forwards[0].health_check.timeout, 1s);
    EXPECT_EQ(c.gateway.forwards[1].protocol, l4_protocol::udp);
    EXPECT_EQ(c.gateway.forwards[1].health_check.interval, 10s);
    EXPECT_EQ(c.gateway.forwards[1].health_check.timeout, 2s);
}

TEST_F(config_test, example_config_is_valid) {
    write_key("a.key");
    std::ifstream in(std::filesystem::path(MESHFWD_TEST_DATA_DIR) / ".." / ".." / "examples" / "mesh.yaml");
    ASSERT_TRUE(in.good());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto cfg = load(text);
    ASSERT_TRUE(cfg.ok()) << cfg.error_message();
    EXPECT_EQ(cfg->peers.size(), 2u);
    // It runs as shipped: nothing in it is ignored by this version.
    EXPECT_TRUE(cfg->warnings.empty()) << cfg->warnings.front();
}

// What this version does not act on (config_support.cc): refused when it changes what the node
// exposes or cannot run, warned about (and the config loads) otherwise; each at its key.
TEST_F(config_test, features_not_built_are_refused_or_warned) {
    write_key("a.key");
    const std::string head = "node: {private_key_file: a.key, address: 10.0.0.1/24}\n";
    EXPECT_TRUE(has_line(errors(load(head + "mesh:\n  device:\n    type: tap\n")),
                         "4:5: mesh.device.type: not implemented in this version: TAP (layer 2) devices; use tun"));
    EXPECT_TRUE(has_line(errors(load(head + "dataplane:\n  port: {type: dpdk}\n")),
                         "3:10: dataplane.port.type: not implemented in this version: DPDK ports; use uring"));
    EXPECT_TRUE(has_line(errors(load(head + "gateway: {exit_node: true}\n")),
                         "2:11: gateway.exit_node: not implemented in this version: exit node"));
    EXPECT_TRUE(has_line(errors(load(head + "gateway:\n  forwards: [{name: w, listen_port: 80, backends: [10.0.0.2:80]}]\n")),
                         "3:3: gateway.forwards: not implemented in this version: gateway port forwards"));
    // Off, empty or at the default: nothing to say.
    auto quiet = load(head + "mesh: {enabled: false, stun: {servers: []}}\ngateway: {exit_node: false, forwards: []}\n");
    ASSERT_TRUE(quiet.ok()) << quiet.error_message();
    EXPECT_TRUE(quiet->warnings.empty()) << quiet->warnings.front();

    // The meshcoord client is built: mesh.enabled and mesh.discovery are acted on, not warned about.
    auto warned = load(head + "mesh:\n  enabled: true\n  network_id: n\n  stun: {servers: [\"stun:s.example\"]}\n"
                              "  routing: {max_hops: 3}\n  discovery: {server: \"c.example:7080\", server_public_key: \"" +
                       new_public_key() + "\"}\n");
    ASSERT_TRUE(warned.ok()) << warned.error_message();
    ASSERT_EQ(warned->warnings.size(), 2u);
    const std::string prefix = path("mesh.yaml").string() + ":";
    EXPECT_EQ(warned->warnings[0], prefix + "5:3: mesh.stun: not implemented in this version: STUN (NAT traversal); "
                                            "peers are reached at their configured endpoints; ignored");
    EXPECT_EQ(warned->warnings[1], prefix + "6:3: mesh.routing: not implemented in this version: mesh routing; ignored");
    // A network id with no server to join it through is all that is unused.
    auto lone = load(head + "mesh:\n  network_id: n\n");
    ASSERT_TRUE(lone.ok()) << lone.error_message();
    ASSERT_EQ(lone->warnings.size(), 1u);
    EXPECT_EQ(lone->warnings[0], prefix + "3:3: mesh.network_id: used with mesh.discovery.server only (there is no "
                                          "meshcoord to join it through); ignored");
}

TEST_F(config_test, peer_names_are_optional_valid_and_unique) {
    write_key("a.key");
    const std::string head = "node: {private_key_file: a.key, address: 10.0.0.1/24}\npeers:\n";
    const std::string k1 = new_public_key(), k2 = new_public_key();
    auto ok = load(head + "  - {public_key: \"" + k1 + "\", name: office-gw, allowed_ips: []}\n" +
                   "  - {public_key: \"" + k2 + "\", allowed_ips: []}\n");
    ASSERT_TRUE(ok.ok()) << ok.error_message();
    EXPECT_EQ(ok->peers[0].name, "office-gw");
    EXPECT_EQ(ok->peers[1].name, "");
    EXPECT_TRUE(has_line(errors(load(head + "  - {public_key: \"" + k1 + "\", name: \"a b\", allowed_ips: []}\n")),
                         "3:72: peers[0].name: "));
    EXPECT_TRUE(has_line(errors(load(head + "  - {public_key: \"" + k1 + "\", name: x, allowed_ips: []}\n" +
                                     "  - {public_key: \"" + k2 + "\", name: x, allowed_ips: []}\n")),
                         "4:72: peers[1].name: name 'x' is already used by peers[0]"));
}

TEST_F(config_test, lane_ports_range) {
    write_key("a.key");
    const std::string head = "node: {private_key_file: a.key, address: 10.0.0.1/24}\n";
    auto unset = load(head);
    ASSERT_TRUE(unset.ok()) << unset.error_message();
    EXPECT_FALSE(unset->dataplane.lane_ports.has_value()) << "default: kernel-chosen ports";
    EXPECT_TRUE(control::check_workers(*unset, 64).ok());

    auto ok = load(head + "dataplane:\n  lane_ports: 52000-52003\n");
    ASSERT_TRUE(ok.ok()) << ok.error_message();
    ASSERT_TRUE(ok->dataplane.lane_ports.has_value());
    EXPECT_EQ(ok->dataplane.lane_ports->first, 52000);
    EXPECT_EQ(ok->dataplane.lane_ports->last, 52003);
    EXPECT_TRUE(control::check_workers(*ok, 4).ok());
    const auto five = control::check_workers(*ok, 5);
    ASSERT_FALSE(five.ok());
    EXPECT_EQ(five.error_message(), path("mesh.yaml").string() +
                                        ":3:15: dataplane.lane_ports: 52000-52003 holds 4 ports; 5 workers need one "
                                        "each (widen the range or give fewer --cores)");

    EXPECT_TRUE(has_line(errors(load(head + "dataplane: {lane_ports: 51800-51900}\n")),
                         "2:25: dataplane.lane_ports: contains node.listen_port 51820; the lanes need ports of their own"));
    EXPECT_TRUE(has_line(errors(load(head + "dataplane: {lane_ports: 0-10}\n")),
                         "2:25: dataplane.lane_ports: '0-10': ports are 1..65535"));
    EXPECT_TRUE(has_line(errors(load(head + "dataplane: {lane_ports: 60000-70000}\n")),
                         "2:25: dataplane.lane_ports: '60000-70000': ports are 1..65535"));
    EXPECT_TRUE(has_line(errors(load(head + "dataplane: {lane_ports: 52010-52000}\n")),
                         "2:25: dataplane.lane_ports: '52010-52000': the first port is above the last"));
    EXPECT_TRUE(has_line(errors(load(head + "dataplane: {lane_ports: lots}\n")),
                         "2:25: dataplane.lane_ports: 'lots' is not a port range; write first-last, e.g. 52000-52063"));
}

TEST_F(config_test, tab_indentation_is_named) {
    write_key("a.key");
    const auto lines = errors(load("node:\n  private_key_file: a.key\n\taddress: 10.0.0.1/24\n"));
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "3:1: a tab character is used for indentation; YAML allows only spaces");
    // A tab inside a value is not indentation: fine.
    auto ok = load("node:\n  private_key_file: a.key\n  address:\t10.0.0.1/24\n");
    EXPECT_TRUE(ok.ok()) << ok.error_message();
}

// ---- file-level errors ---------------------------------------------------------------------

TEST_F(config_test, missing_file) {
    auto cfg = control::load_config(path("nope.yaml"), {});
    ASSERT_FALSE(cfg.ok());
    EXPECT_EQ(cfg.error_message(), path("nope.yaml").string() + ": cannot open: No such file or directory");
}

TEST_F(config_test, empty_file) {
    EXPECT_TRUE(has_line(errors(load("")), "1:1: file is empty"));
    EXPECT_TRUE(has_line(errors(load("# only a comment\n")), "1:1: file is empty"));
}

TEST_F(config_test, top_level_not_a_mapping) {
    EXPECT_TRUE(has_line(errors(load("- a\n- b\n")), "1:1: expected a mapping", "got a list"));
    EXPECT_TRUE(has_line(errors(load("hello\n")), "1:1: expected a mapping", "got a scalar"));
}

TEST_F(config_test, yaml_syntax_error_has_line_and_column) {
    const auto lines = errors(load("node:\n  address: [10.0.0.1/16\n  private_key_file: a.key\n"));
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_TRUE(has_line(lines, "3:", "YAML syntax error: ")) << lines[0];
    EXPECT_TRUE(has_line(errors(load("node: {a: 1\n")), "2:1: YAML syntax error: end of map flow not found"));
}

TEST_F(config_test, several_documents_refused) {
    EXPECT_TRUE(has_line(errors(load("node: {}\n---\nnode: {}\n")), "2:1: file holds more than one YAML document"));
}

TEST_F(config_test, stray_comma_is_a_syntax_error_not_a_hang) {
    // yaml-cpp 0.7's LoadAll never returns on this input.
    EXPECT_TRUE(has_line(errors(load(", ")), "1:1: YAML syntax error: unexpected ','"));
    EXPECT_TRUE(has_line(errors(load("\n\n  ,\n")), "3:3: YAML syntax error: unexpected ','"));
}

TEST_F(config_test, missing_required_keys) {
    const auto lines = errors(load("node:\n  name: a\n"));
    EXPECT_TRUE(has_line(lines, "2:3: node.private_key_file: required key is missing"));
    EXPECT_TRUE(has_line(lines, "2:3: node.address: required key is missing"));
    EXPECT_TRUE(has_line(errors(load("mesh: {enabled: false}\n")), "1:1: node: required key is missing"));
    EXPECT_TRUE(has_line(errors(load("node:\n  private_key_file:\n  address: 10.0.0.1/8\n")),
                         "2:3: node.private_key_file: required key has no value"));
    write_key("a.key");
    const auto peer = errors(load("node: {private_key_file: a.key, address: 10.0.0.1/8}\n"
                                  "peers:\n"
                                  "  - endpoint: 192.0.2.1:51820\n"));
    EXPECT_TRUE(has_line(peer, "3:5: peers[0].public_key: required key is missing"));
    EXPECT_TRUE(has_line(peer, "3:5: peers[0].allowed_ips: required key is missing"));
}

TEST_F(config_test, address_list_and_meshfwd_peer) {
    write_key("a.key");
    const std::string peer = new_public_key();
    auto cfg = load("node:\n  private_key_file: a.key\n  address: [10.100.0.1/16, \"fd00:100::1/64\"]\n"
                    "peers:\n  - {public_key: \"" + peer + "\", allowed_ips: [10.100.0.2/32], meshfwd: true}\n"
                    "  - {public_key: \"" + new_public_key() + "\", allowed_ips: [10.100.0.3/32]}\n");
    ASSERT_TRUE(cfg.ok()) << cfg.error_message();
    ASSERT_EQ(cfg->node.addresses.size(), 2u);
    ASSERT_TRUE(cfg->node.address.has_value());
    EXPECT_EQ(cfg->node.address->to_string(), "10.100.0.1/16");
    EXPECT_EQ(cfg->node.addresses[1].to_string(), "fd00:100::1/64");
    EXPECT_TRUE(cfg->peers[0].meshfwd);
    EXPECT_FALSE(cfg->peers[1].meshfwd);

    // A single prefix still works and fills the list.
    auto single = load("node: {private_key_file: a.key, address: 10.0.0.1/8}\n");
    ASSERT_TRUE(single.ok()) << single.error_message();
    EXPECT_EQ(single->node.addresses.size(), 1u);

    // Each element is checked and located.
    const auto bad = errors(load("node:\n  private_key_file: a.key\n  address: [10.0.0.1/8, 10.0.0.0/8, nope]\n"));
    EXPECT_TRUE(has_line(bad, "3:25: node.address[1]:", "network address itself"));
    EXPECT_TRUE(has_line(bad, "3:37: node.address[2]:", "needs a length"));
    EXPECT_TRUE(has_line(errors(load("node: {private_key_file: a.key, address: []}\n")), "1:42: node.address:",
                         "at least one"));
    EXPECT_TRUE(has_line(errors(load("node: {private_key_file: a.key, address: 10.0.0.1/8}\n"
                                     "peers:\n  - {public_key: \"" + peer + "\", allowed_ips: [], meshfwd: maybe}\n")),
                         "3:92: peers[0].meshfwd:", "expected true or false"));
}

// ---- keys and types --------------------------------------------------------------------

TEST_F(config_test, unknown_key_suggests_the_close_one) {
    write_key("a.key");
    const auto lines = errors(load("node:\n"
                                   "  private_key_file: a.key\n"
                                   "  address: 10.0.0.1/8\n"
                                   "  listen_prot: 5\n"
                                   "frobnicate: 1\n"));
    EXPECT_TRUE(has_line(lines, "4:3: node.listen_prot: unknown key; did you mean 'listen_port'?"));
    EXPECT_TRUE(has_line(lines, "5:1: frobnicate: unknown key; known keys here: mesh, node, peers"));
}

TEST_F(config_test, duplicate_key) {
    write_key("a.key");
    EXPECT_TRUE(has_line(errors(load("node:\n  private_key_file: a.key\n  address: 10.0.0.1/8\n  address: 10.0.0.2/8\n")),
                         "4:3: node.address: duplicate key (first at line 3)"));
}

TEST_F(config_test, wrong_types) {
    write_key("a.key");
    const auto lines = errors(load("mesh:\n"
                                   "  device:\n"
                                   "    mtu: abc\n"
                                   "  enabled: maybe\n"
                                   "  stun: [a]\n"
                                   "node:\n"
                                   "  private_key_file: a.key\n"
                                   "  address: {a: 10.0.0.1/8}\n"
                                   "peers:\n"
                                   "  public_key: x\n"));
    EXPECT_TRUE(has_line(lines, "3:10: mesh.device.mtu: expected a whole number, got 'abc'"));
    EXPECT_TRUE(has_line(lines, "4:12: mesh.enabled: expected true or false, got 'maybe'"));
    EXPECT_TRUE(has_line(lines, "5:9: mesh.stun: expected a mapping, got a list"));
    EXPECT_TRUE(has_line(lines, "8:12: node.address: expected a scalar value, got a mapping"));
    EXPECT_TRUE(has_line(lines, "10:3: peers: expected a list, got a mapping"));
}

TEST_F(config_test, errors_are_all_reported_in_file_order) {
    const auto lines = errors(load("dataplane:\n"
                                   "  batch: 0\n"
                                   "  poll: lazy\n"
                                   "node:\n"
                                   "  listen_port: 0\n"));
    ASSERT_EQ(lines.size(), 5u);
    EXPECT_TRUE(lines[0].starts_with("2:10: dataplane.batch: 0 is out of range 1..256")) << lines[0];
    EXPECT_TRUE(lines[1].starts_with("3:9: dataplane.poll: unknown value 'lazy'; valid values: adaptive, busy"))
        << lines[1];
    EXPECT_TRUE(lines[2].starts_with("5:3: node.private_key_file: required key is missing")) << lines[2];
    EXPECT_TRUE(lines[3].starts_with("5:3: node.address: required key is missing")) << lines[3];
    EXPECT_TRUE(lines[4].starts_with("5:16: node.listen_port: 0 is out of range 1..65535")) << lines[4];
}

// ---- values ------------------------------------------------------------------------------

class config_value_test : public config_dir {
protected:
    void SetUp() override {
        config_dir::SetUp();
        write_key("a.key");
    }
    // Loads a valid node section plus `extra` (which starts on line 4).
    std::vector<std::string> errors_with(const std::string& extra) {
        return errors(load("node:\n  private_key_file: a.key\n  address: 10.100.0.1/16\n" + extra));
    }
};

TEST_F(config_value_test, bad_prefixes_and_addresses) {
    EXPECT_TRUE(has_line(errors_with("mesh:\n  network_cidr: 10.100.0.0/33\n"), "5:17: mesh.network_cidr: "));
    EXPECT_TRUE(has_line(errors_with("mesh:\n  network_cidr: 10.100.0.1/16\n"), "5:17: mesh.network_cidr: ",
                         "did you mean 10.100.0.0/16?"));
    EXPECT_TRUE(has_line(errors(load("node:\n  private_key_file: a.key\n  address: 10.100.0.300/16\n")),
                         "3:12: node.address: "));
    EXPECT_TRUE(has_line(errors(load("node:\n  private_key_file: a.key\n  address: 10.100.0.0/16\n")),
                         "3:12: node.address: 10.100.0.0/16 is the network address itself"));
    EXPECT_TRUE(has_line(errors_with("mesh:\n  network_cidr: 10.200.0.0/16\n"),
                         "3:12: node.address: 10.100.0.1/16 is outside mesh.network_cidr 10.200.0.0/16"));
    EXPECT_TRUE(has_line(errors_with("api:\n  listen: localhost:7082\n"), "5:11: api.listen: "));
}

TEST_F(config_value_test, bad_durations) {
    EXPECT_TRUE(has_line(errors_with("mesh:\n  discovery:\n    heartbeat_interval: 30\n"),
                         "6:25: mesh.discovery.heartbeat_interval: ", "(write 30s)"));
    EXPECT_TRUE(has_line(errors_with("mesh:\n  routing:\n    route_timeout: soon\n"),
                         "6:20: mesh.routing.route_timeout: "));
    EXPECT_TRUE(has_line(errors_with("mesh:\n  connection:\n    connect_timeout: 0s\n"),
                         "6:22: mesh.connection.connect_timeout: must be longer than 0s"));
}

TEST_F(config_value_test, ports_out_of_range) {
    EXPECT_TRUE(has_line(errors(load("node:\n  private_key_file: a.key\n  address: 10.100.0.1/16\n  listen_port: 70000\n")),
                         "4:16: node.listen_port: 70000 is out of range 1..65535"));
    EXPECT_TRUE(has_line(errors(load("node:\n  private_key_file: a.key\n  address: 10.100.0.1/16\n  listen_port: 0\n")),
                         "4:16: node.listen_port: 0 is out of range 1..65535"));
    const std::string key = new_public_key();
    EXPECT_TRUE(has_line(errors_with("peers:\n  - public_key: " + key + "\n    endpoint: 192.0.2.1:70000\n    allowed_ips: []\n"),
                         "6:15: peers[0].endpoint: "));
    EXPECT_TRUE(has_line(errors_with("mesh:\n  discovery: {server: 'coord:0'}\n"), "5:23: mesh.discovery.server: ",
                         "out of range"));
}

TEST_F(config_value_test, mtu_range_is_explained) {
    EXPECT_TRUE(has_line(errors_with("mesh:\n  device:\n    mtu: 500\n"), "6:10: mesh.device.mtu: 500 is out of range 576..65475",
                         "RFC 791"));
    EXPECT_TRUE(has_line(errors_with("mesh:\n  device:\n    mtu: 70000\n"), "6:10: mesh.device.mtu: 70000 is out of range"));
    // The largest MTU whose transport messages fit a UDP datagram over IPv4 (crypto::limits::max_mtu).
    EXPECT_TRUE(has_line(errors_with("mesh:\n  device:\n    mtu: 65476\n"),
                         "6:10: mesh.device.mtu: 65476 is out of range 576..65475", "fits a UDP datagram"));
    for (const char* mtu : {"9000", "65475"}) {
        const auto ok = load(std::string("node:\n  private_key_file: a.key\n  address: 10.100.0.1/16\nmesh:\n  device:\n    mtu: ") +
                             mtu + "\n");
        ASSERT_TRUE(ok.ok()) << mtu << ": " << ok.error_message();
        EXPECT_EQ(std::to_string(ok->mesh.device.mtu), mtu);
    }
    // An overlay carrying IPv6 needs 1280.
    const std::string key = new_public_key();
    EXPECT_TRUE(has_line(errors_with("mesh:\n  device:\n    mtu: 1000\npeers:\n  - public_key: " + key +
                                     "\n    allowed_ips: [fd00::2/128]\n"),
                         "6:10: mesh.device.mtu: 1000 is below 1280", "RFC 8200"));
}

TEST_F(config_value_test, enums_list_valid_values) {
    EXPECT_TRUE(has_line(errors_with("mesh:\n  device: {type: tan}\n"),
                         "5:18: mesh.device.type: unknown value 'tan'; valid values: tun, tap"));
    EXPECT_TRUE(has_line(errors_with("dataplane:\n  crypto: openssl\n"),
                         "5:11: dataplane.crypto: unknown value 'openssl'; valid values: auto, libsodium, ipsec-mb"));
    EXPECT_TRUE(has_line(errors_with("dataplane:\n  port: {type: xdp}\n"),
                         "5:16: dataplane.port.type: unknown value 'xdp'; valid values: uring, dpdk"));
    EXPECT_TRUE(has_line(errors_with("dataplane:\n  poll: bussy\n"),
                         "5:9: dataplane.poll: unknown value 'bussy'; valid values: adaptive, busy (did you mean 'busy'?)"));
    EXPECT_TRUE(has_line(errors_with("gateway:\n  forwards:\n    - {name: x, protocol: sctp, listen_port: 1, backends: [10.0.0.1:1]}\n"),
                         "6:27: gateway.forwards[0].protocol: unknown value 'sctp'; valid values: tcp, udp"));
}

TEST_F(config_value_test, batch_range) {
    EXPECT_TRUE(has_line(errors_with("dataplane: {batch: 257}\n"), "4:20: dataplane.batch: 257 is out of range 1..256"));
    EXPECT_TRUE(has_line(errors_with("dataplane: {batch: 0}\n"), "4:20: dataplane.batch: 0 is out of range 1..256"));
    EXPECT_TRUE(has_line(errors_with("dataplane: {batch: -1}\n"), "4:20: dataplane.batch: expected a whole number"));
}

TEST_F(config_value_test, spin_range) {
    EXPECT_TRUE(has_line(errors_with("dataplane: {spin: 11ms}\n"), "4:19: dataplane.spin: must be at most 10ms (use poll: busy to spin always)"));
    EXPECT_TRUE(has_line(errors_with("dataplane: {spin: -1us}\n"), "4:19: dataplane.spin: ")) << errors_with("dataplane: {spin: -1us}\n")[0];
    const auto zero = load("node:\n  private_key_file: a.key\n  address: 10.100.0.1/16\ndataplane: {spin: 0s}\n");
    ASSERT_TRUE(zero.ok()) << zero.error_message();
    EXPECT_EQ(zero->dataplane.spin, std::chrono::nanoseconds(0));
}

TEST_F(config_value_test, mesh_enabled_needs_network_and_server) {
    const auto lines = errors_with("mesh:\n  enabled: true\n");
    EXPECT_TRUE(has_line(lines, "5:3: mesh.network_id: required when mesh.enabled is true"));
    EXPECT_TRUE(has_line(lines, "5:3: mesh.discovery.server: required when mesh.enabled is true"));
}

// mesh.discovery: one server or a list of replicas, in URL or host:port form; the server key,
// the network id and the credentials; node.address becomes optional.
TEST_F(config_test, discovery_servers_keys_and_optional_address) {
    write_key("node1.key");
    const std::string server_key = new_public_key();
    ::setenv("MESHFWD_TEST_INVITE", "mfinv1.abc.def", 1);
    auto cfg = load("node: {private_key_file: node1.key}\n"
                    "mesh:\n"
                    "  network_id: office\n"
                    "  discovery:\n"
                    "    server: [\"http://coord-a.example:7080\", \"https://[2001:db8::7]/\", \"192.0.2.9:8000\"]\n"
                    "    server_public_key: \"" + server_key + "\"\n"
                    "    invite: \"${MESHFWD_TEST_INVITE}\"\n"
                    "    token: \"\"\n"
                    "    cache_file: state/peers.json\n"
                    "    publish_endpoints: [\"198.51.100.4:51820\", \"[2001:db8::4]:51820\"]\n"
                    "    heartbeat_interval: 10s\n");
    ::unsetenv("MESHFWD_TEST_INVITE");
    ASSERT_TRUE(cfg.ok()) << cfg.error_message();
    const auto& d = cfg->mesh.discovery;
    EXPECT_TRUE(d.enabled());
    ASSERT_EQ(d.servers.size(), 3u);
    EXPECT_EQ(d.servers[0].url(), "http://coord-a.example:7080");
    EXPECT_TRUE(d.servers[1].tls);
    EXPECT_EQ(d.servers[1].url(), "https://[2001:db8::7]:443");
    EXPECT_EQ(d.servers[2].url(), "http://192.0.2.9:8000");
    ASSERT_TRUE(d.server_public_key.has_value());
    EXPECT_EQ(crypto::key_to_base64(*d.server_public_key), server_key);
    EXPECT_EQ(d.invite, "mfinv1.abc.def");
    EXPECT_EQ(d.token, "");
    EXPECT_EQ(d.cache_file, path("state/peers.json"));
    ASSERT_EQ(d.publish_endpoints.size(), 2u);
    EXPECT_EQ(d.publish_endpoints[1].to_string(), "[2001:db8::4]:51820");
    EXPECT_EQ(d.heartbeat_interval, 10s);
    // meshcoord assigns the addresses.
    EXPECT_FALSE(cfg->node.address.has_value());
    EXPECT_TRUE(cfg->node.addresses.empty());
    EXPECT_TRUE(cfg->warnings.empty()) << cfg->warnings.front();

    // One server as a plain string; the cache defaults to KEYSTEM.peers.json beside the key.
    auto one = load("node: {private_key_file: node1.key, address: 10.100.0.1/16}\n"
                    "mesh: {network_id: office, discovery: {server: \"coord.example:7080\", server_public_key: \"" +
                    server_key + "\"}}\n");
    ASSERT_TRUE(one.ok()) << one.error_message();
    ASSERT_EQ(one->mesh.discovery.servers.size(), 1u);
    EXPECT_EQ(one->mesh.discovery.servers[0].url(), "http://coord.example:7080");
    EXPECT_EQ(one->mesh.discovery.cache_file, path("node1.peers.json"));
    EXPECT_EQ(one->node.address->to_string(), "10.100.0.1/16");
}

TEST_F(config_value_test, discovery_errors_are_located) {
    // Without a server, node.address is still required (tested in missing_required_keys); with
    // one, the network id and the server key are.
    auto lines = errors(load("node: {private_key_file: a.key}\nmesh:\n  discovery: {server: coord.example:7080}\n"));
    EXPECT_TRUE(has_line(lines, "3:3: mesh.network_id: required with mesh.discovery.server"));
    EXPECT_TRUE(has_line(lines, "3:14: mesh.discovery.server_public_key: required with mesh.discovery.server"));
    EXPECT_FALSE(has_line(lines, "1:1: node.address"));
    lines = errors_with("mesh:\n"
                        "  network_id: n\n"
                        "  discovery:\n"
                        "    server: [\"ftp://c.example:21\", \"c.example\", \"http://c.example:7080/api\", \"\"]\n"
                        "    server_public_key: nope\n"
                        "    publish_endpoints: [\"c.example:5\", \"192.0.2.1:0\"]\n");
    EXPECT_TRUE(has_line(lines, "7:14: mesh.discovery.server[0]: ", "only http:// and https://"));
    EXPECT_TRUE(has_line(lines, "7:36: mesh.discovery.server[1]: ", "has no port"));
    EXPECT_TRUE(has_line(lines, "7:49: mesh.discovery.server[2]: ", "without a path"));
    EXPECT_TRUE(has_line(lines, "7:78: mesh.discovery.server[3]: ", "not a valid host name"));
    EXPECT_TRUE(has_line(lines, "8:24: mesh.discovery.server_public_key: not 32 bytes of base64"));
    EXPECT_TRUE(has_line(lines, "9:25: mesh.discovery.publish_endpoints[0]: "));
    EXPECT_TRUE(has_line(lines, "9:40: mesh.discovery.publish_endpoints[1]: ", "port 0"));
    lines = errors_with("mesh:\n  discovery: {server: [], unknwon: 1}\n");
    EXPECT_TRUE(has_line(lines, "5:27: mesh.discovery.unknwon: unknown key"));
}

TEST_F(config_value_test, server_urls_and_mac) {
    const auto lines = errors_with("mesh:\n"
                                   "  device: {type: tap, mac_address: '01:00:5e:00:00:01'}\n"
                                   "  stun: {servers: ['http://stun.example.com']}\n"
                                   "  turn:\n"
                                   "    servers:\n"
                                   "      - {url: 'turn:t.example.com', username: u}\n");
    EXPECT_TRUE(has_line(lines, "5:36: mesh.device.mac_address: ", "multicast"));
    EXPECT_TRUE(has_line(lines, "6:20: mesh.stun.servers[0]: ", "not a STUN URL"));
    EXPECT_TRUE(has_line(lines, "9:9: mesh.turn.servers[0].password: required key is missing"));
}

TEST_F(config_value_test, gateway_forwards_are_validated) {
    const auto lines = errors_with("gateway:\n"
                                   "  forwards:\n"
                                   "    - {name: web, listen_port: 80, backends: [10.100.0.2:80]}\n"
                                   "    - {name: web, listen_port: 80, backends: []}\n"
                                   "    - {name: wg, protocol: udp, listen_port: 51820, backends: [10.100.0.2:1],\n"
                                   "       health_check: {interval: 1s, timeout: 1s}}\n");
    EXPECT_TRUE(has_line(lines, "7:14: gateway.forwards[1].name: name 'web' is already used by gateway.forwards[0]"));
    EXPECT_TRUE(has_line(lines, "7:32: gateway.forwards[1].listen_port: tcp port 80 is already forwarded"));
    EXPECT_TRUE(has_line(lines, "7:46: gateway.forwards[1].backends: needs at least one backend"));
    EXPECT_TRUE(has_line(lines, "9:46: gateway.forwards[2].health_check.timeout: 1s must be shorter than the interval"));
    // Indexes in messages are list positions, also after an invalid entry.
    const auto port = errors_with("gateway:\n  forwards:\n    - {name: bad, listen_port: 1, backends: [x]}\n"
                                  "    - {name: wg, protocol: udp, listen_port: 51820, backends: [10.100.0.2:1]}\n"
                                  "    - {name: wg, listen_port: 2, backends: [10.100.0.2:1]}\n");
    EXPECT_TRUE(has_line(port, "7:46: gateway.forwards[1].listen_port: UDP port 51820 is node.listen_port"));
    EXPECT_TRUE(has_line(port, "8:14: gateway.forwards[2].name: name 'wg' is already used by gateway.forwards[1]"));
}

// ---- peers -------------------------------------------------------------------------------

TEST_F(config_value_test, peer_public_key_must_be_32_bytes_of_base64) {
    const auto lines = errors_with("peers:\n"
                                   "  - public_key: \"" + new_public_key() + "\"\n"
                                   "    allowed_ips: [10.100.0.2/32]\n"
                                   "  - public_key: \"AAAA\"\n"
                                   "    allowed_ips: [10.100.0.3/32]\n");
    EXPECT_TRUE(has_line(lines, "7:17: peers[1].public_key: not 32 bytes of base64"));
}

TEST_F(config_value_test, duplicate_peer_keys) {
    const std::string key = new_public_key();
    const auto lines = errors_with("peers:\n"
                                   "  - {public_key: " + key + ", allowed_ips: [10.100.0.2/32]}\n"
                                   "  - {public_key: " + key + ", allowed_ips: [10.100.0.3/32]}\n");
    EXPECT_TRUE(has_line(lines, "6:18: peers[1].public_key: same public key as peers[0]"));
}

TEST_F(config_value_test, peer_with_our_own_key) {
    const auto own = write_key("b.key");
    const auto lines = errors(load("node:\n  private_key_file: b.key\n  address: 10.100.0.1/16\n"
                                   "peers:\n"
                                   "  - {public_key: " + crypto::key_to_base64(own) + ", allowed_ips: [10.100.0.2/32]}\n"));
    EXPECT_TRUE(has_line(lines, "5:18: peers[0].public_key: is this node's own public key"));
}

TEST_F(config_value_test, overlapping_allowed_ips_name_both_peers) {
    const auto lines = errors_with("peers:\n"
                                   "  - {public_key: " + new_public_key() + ", allowed_ips: [10.100.0.0/24, fd00::/64]}\n"
                                   "  - {public_key: " + new_public_key() + ", allowed_ips: [10.200.0.0/16]}\n"
                                   "  - {public_key: " + new_public_key() + ", allowed_ips: [10.100.0.7/32, fd00::1/128, 10.200.0.0/16]}\n");
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_TRUE(has_line(lines, "7:78: peers[2].allowed_ips[0]: 10.100.0.7/32 overlaps 10.100.0.0/24 of peers[0] (line 5)"));
    EXPECT_TRUE(has_line(lines, "7:93: peers[2].allowed_ips[1]: fd00::1/128 overlaps fd00::/64 of peers[0] (line 5)"));
    EXPECT_TRUE(has_line(lines, "7:106: peers[2].allowed_ips[2]: 10.200.0.0/16 overlaps 10.200.0.0/16 of peers[1] (line 6)"));
    // Disjoint prefixes, and overlap within one peer, are fine.
    auto ok = load("node:\n  private_key_file: a.key\n  address: 10.100.0.1/16\n"
                   "peers:\n"
                   "  - {public_key: " + new_public_key() + ", allowed_ips: [10.100.0.0/24, 10.100.0.5/32]}\n"
                   "  - {public_key: " + new_public_key() + ", allowed_ips: [10.100.1.0/24]}\n");
    EXPECT_TRUE(ok.ok()) << ok.error_message();
}

TEST_F(config_value_test, persistent_keepalive) {
    const std::string key = new_public_key();
    const std::string head = "peers:\n  - public_key: " + key + "\n    allowed_ips: []\n    persistent_keepalive: ";
    EXPECT_TRUE(has_line(errors_with(head + "25\n"), "7:27: peers[0].persistent_keepalive: ", "write 25s"));
    EXPECT_TRUE(has_line(errors_with(head + "1500ms\n"), "7:27: peers[0].persistent_keepalive: must be whole seconds"));
    EXPECT_TRUE(has_line(errors_with(head + "20h\n"), "7:27: peers[0].persistent_keepalive: must be whole seconds"));
}

// ---- ${VAR} --------------------------------------------------------------------------------

TEST_F(config_value_test, env_expansion) {
    ::setenv("MESHFWD_TEST_PORT", "51999", 1);
    ::setenv("MESHFWD_TEST_NAME", "node-7", 1);
    auto cfg = load("node:\n  private_key_file: a.key\n  address: 10.100.0.1/16\n"
                    "  listen_port: ${MESHFWD_TEST_PORT}\n  name: ${MESHFWD_TEST_NAME}\n");
    ASSERT_TRUE(cfg.ok()) << cfg.error_message();
    EXPECT_EQ(cfg->node.listen_port, 51999);
    EXPECT_EQ(cfg->node.name, "node-7");
    ::unsetenv("MESHFWD_TEST_PORT");
    ::unsetenv("MESHFWD_TEST_NAME");
}

TEST_F(config_value_test, env_unset_is_an_error_naming_it) {
    ::unsetenv("MESHFWD_TEST_UNSET");
    EXPECT_TRUE(has_line(errors_with("mesh:\n  network_id: ${MESHFWD_TEST_UNSET}\n"),
                         "5:15: mesh.network_id: environment variable MESHFWD_TEST_UNSET is not set"));
    EXPECT_TRUE(has_line(errors_with("mesh:\n  network_id: \"${oops\"\n"), "5:15: mesh.network_id: unterminated ${"));
}

TEST_F(config_value_test, dollar_dollar_escapes) {
    write_key("$x.key");
    auto cfg = load("node:\n  private_key_file: $$x.key\n  address: 10.100.0.1/16\n");
    ASSERT_TRUE(cfg.ok()) << cfg.error_message();
    EXPECT_EQ(cfg->node.private_key_file, path("$x.key"));
}

} // namespace
} // namespace meshfwd::test
