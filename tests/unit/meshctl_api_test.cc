// meshctl status / peers formatting: exact output for fixtures, wg-style byte units and handshake
// ages, --api / -c resolution, and errors (never exceptions) for missing fields and wrong types.
// The HTTP side is in api_server_test.cc and tests/cli/meshctl_api_args.sh. Test thread only.
#include "tools/meshctl_api.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace meshfwd::meshctl {
namespace {

using json = nlohmann::json;

json status_fixture() {
    return json::parse(R"({
  "node": {"name": "a", "public_key": "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=", "listen_port": 51820,
           "lane_ports": [40001, 40002], "address": "10.100.0.1/16", "device": "mesh0", "mtu": 1420, "workers": 2,
           "cores": [0, 1], "crypto": "ipsec-mb", "poll": "adaptive",
           "offloads": {"tso": true, "uso": false, "udp_gso": true, "udp_gro": true}, "uptime_seconds": 65.7,
           "version": "0.1.0"},
  "totals": {"rx_packets": 215, "rx_bytes": 1258291, "tx_packets": 217, "tx_bytes": 3565158,
             "drops": {"bad_auth": 0, "no_route": 3, "replay": 1}},
  "workers": [{"id": 0, "cpu": 0, "rx_packets": 120, "rx_bytes": 700000, "tx_packets": 118, "tx_bytes": 2000000,
               "drops": {"no_route": 3, "replay": 0}},
              {"id": 1, "cpu": 1, "rx_packets": 1, "rx_bytes": 558291, "tx_packets": 99, "tx_bytes": 1565158,
               "drops": {"no_route": 0, "replay": 1}}],
  "handshakes": {"initiations_sent": 3, "initiations_received": 2, "responses_sent": 2, "responses_received": 1,
                 "cookie_replies_sent": 0, "cookie_replies_received": 0, "sessions_established": 1,
                 "rejected": {"bad_mac1": 2, "stale_timestamp": 0}},
  "peers": 3})");
}

json peers_fixture() {
    return json::parse(R"({"peers": [
  {"public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", "name": "b", "endpoint": "192.0.2.2:51820",
   "allowed_ips": ["10.0.0.2/32", "10.1.0.0/16"], "latest_handshake_unix": 1763799935,
   "rx_bytes": 1258291, "tx_bytes": 3565158, "rx_packets": 215, "tx_packets": 217,
   "persistent_keepalive_seconds": 25, "meshfwd": true, "lanes": 2, "session": "established", "handshakes": 1,
   "workers": [{"id": 0, "rx_packets": 120, "tx_packets": 118, "rx_bytes": 1, "tx_bytes": 2},
               {"id": 1, "rx_packets": 95, "tx_packets": 99, "rx_bytes": 3, "tx_bytes": 4}]},
  {"public_key": "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=", "endpoint": null, "allowed_ips": [],
   "latest_handshake_unix": 0, "rx_bytes": 0, "tx_bytes": 0, "rx_packets": 0, "tx_packets": 0,
   "persistent_keepalive_seconds": 0, "meshfwd": false, "lanes": 1, "session": "handshaking", "handshakes": 0,
   "workers": []}]})");
}

constexpr int64_t now = 1763800000;

TEST(meshctl_api, bytes_use_wg_units) {
    EXPECT_EQ(format_bytes(0), "0 B");
    EXPECT_EQ(format_bytes(1023), "1023 B");
    EXPECT_EQ(format_bytes(1024), "1.00 KiB");
    EXPECT_EQ(format_bytes(1536), "1.50 KiB");
    EXPECT_EQ(format_bytes(1024 * 1024 - 1), "1024.00 KiB"); // wg rounds the same way
    EXPECT_EQ(format_bytes(1258291), "1.20 MiB");
    EXPECT_EQ(format_bytes(3565158), "3.40 MiB");
    EXPECT_EQ(format_bytes(uint64_t{5} << 30), "5.00 GiB");
    EXPECT_EQ(format_bytes(uint64_t{3} << 40), "3.00 TiB");
    EXPECT_EQ(format_bytes(UINT64_MAX), "16777216.00 TiB");
}

TEST(meshctl_api, handshake_ages_read_like_wg) {
    EXPECT_EQ(format_handshake_age(now - 5, now), "5 seconds ago");
    EXPECT_EQ(format_handshake_age(now - 1, now), "1 second ago");
    EXPECT_EQ(format_handshake_age(now - 65, now), "1 minute, 5 seconds ago");
    EXPECT_EQ(format_handshake_age(now - 120, now), "2 minutes ago");
    EXPECT_EQ(format_handshake_age(now - 3600 - 1, now), "1 hour, 1 second ago");
    EXPECT_EQ(format_handshake_age(now - 86400 * 2 - 7200, now), "2 days, 2 hours ago");
    EXPECT_EQ(format_handshake_age(now - 86400 * 365 - 86400, now), "1 year, 1 day ago");
    EXPECT_EQ(format_handshake_age(now, now), "Now");
    EXPECT_EQ(format_handshake_age(0, now), "never");
    EXPECT_EQ(format_handshake_age(now + 10, now), "in the future (the system clock went backwards?)");
    EXPECT_EQ(format_handshake_age(INT64_MIN, INT64_MAX).substr(0, 12), "584942417355"); // 2^64 - 1 s: no overflow
    EXPECT_EQ(format_duration_words(0), "0 seconds");
    EXPECT_EQ(format_duration_words(25), "25 seconds");
}

TEST(meshctl_api, peers_print_like_wg_show) {
    const auto text = format_peers(peers_fixture(), now);
    ASSERT_TRUE(text.ok()) << text.error_message();
    EXPECT_EQ(*text,
              "peer: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\n"
              "  name: b\n"
              "  endpoint: 192.0.2.2:51820\n"
              "  allowed ips: 10.0.0.2/32, 10.1.0.0/16\n"
              "  latest handshake: 1 minute, 5 seconds ago\n"
              "  transfer: 1.20 MiB received, 3.40 MiB sent\n"
              "  persistent keepalive: every 25 seconds\n"
              "  session: established, lanes: 2\n"
              "  worker     rx packets   tx packets     rx bytes     tx bytes\n"
              "  0                 120          118          1 B          2 B\n"
              "  1                  95           99          3 B          4 B\n"
              "\n"
              "peer: TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\n"
              "  allowed ips: (none)\n"
              "  latest handshake: never\n"
              "  session: handshaking, plain WireGuard\n");
    const auto none = format_peers(json{{"peers", json::array()}}, now);
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(*none, "no peers\n");
}

TEST(meshctl_api, status_prints_node_workers_drops_and_handshakes) {
    const auto text = format_status(status_fixture());
    ASSERT_TRUE(text.ok()) << text.error_message();
    EXPECT_EQ(*text,
              "node a: mesh0 10.100.0.1/16, mtu 1420\n"
              "  public key: HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\n"
              "  listening port: 51820, lane ports: 40001 40002\n"
              "  2 workers on cores 0,1, crypto ipsec-mb, poll adaptive\n"
              "  offloads: tso on, uso off, udp_gso on, udp_gro on\n"
              "  version 0.1.0, up 1 minute, 5 seconds, 3 peers\n"
              "workers:\n"
              "  worker 0 (cpu 0): rx 120 packets (683.59 KiB), tx 118 packets (1.91 MiB); drops: no_route 3\n"
              "  worker 1 (cpu 1): rx 1 packet (545.21 KiB), tx 99 packets (1.49 MiB); drops: replay 1\n"
              "  total: rx 215 packets (1.20 MiB), tx 217 packets (3.40 MiB)\n"
              "drops: no_route 3, replay 1\n"
              "handshakes: initiations 3 sent / 2 received, responses 2 sent / 1 received, cookie replies 0 sent / 0 "
              "received, 1 session established\n"
              "  rejected: bad_mac1 2\n");

    json quiet = status_fixture();
    quiet["totals"]["drops"] = json::object();
    quiet["handshakes"]["rejected"] = {{"bad_mac1", 0}};
    const auto q = format_status(quiet);
    ASSERT_TRUE(q.ok()) << q.error_message();
    EXPECT_NE(q->find("drops: none\n"), std::string::npos) << *q;
    EXPECT_EQ(q->find("rejected"), std::string::npos) << *q;
}

// Each mutation of a good document must give an error naming the field, never a throw.
struct bad_case {
    const char* json_pointer; // the field to change
    json value;               // nullptr with remove = true: delete it
    bool remove;
    const char* expected_error;
};

TEST(meshctl_api, status_missing_fields_and_wrong_types_are_errors) {
    const bad_case cases[] = {
        {"/node", nullptr, true, "node: missing"},
        {"/node", json::array(), false, "node: not an object"},
        {"/node/name", 5, false, "node.name: not a string"},
        {"/node/mtu", -1, false, "node.mtu: not a non-negative integer"},
        {"/node/mtu", 1.5, false, "node.mtu: not a non-negative integer"},
        {"/node/lane_ports", "40001", false, "node.lane_ports: not an array"},
        {"/node/cores/1", "x", false, "node.cores[1]: not a non-negative integer"},
        {"/node/offloads/tso", 1, false, "node.offloads.tso: not true or false"},
        {"/node/uptime_seconds", "long", false, "node.uptime_seconds: not a number"},
        {"/workers/1/rx_bytes", nullptr, true, "workers[1].rx_bytes: missing"},
        {"/workers/0", "w", false, "workers[0]: not an object"},
        {"/totals/drops/replay", "1", false, "totals.drops.replay: not a non-negative integer"},
        {"/handshakes/rejected", 3, false, "handshakes.rejected: not an object"},
        {"/peers", "3", false, "peers: not a non-negative integer"},
    };
    for (const auto& c : cases) {
        json doc = status_fixture();
        const json::json_pointer ptr(c.json_pointer);
        if (c.remove) {
            doc[ptr.parent_pointer()].erase(ptr.back());
        } else {
            doc[ptr] = c.value;
        }
        result<std::string> out = std::string();
        ASSERT_NO_THROW(out = format_status(doc)) << c.json_pointer;
        ASSERT_FALSE(out.ok()) << c.json_pointer;
        EXPECT_EQ(out.error_message(), c.expected_error) << c.json_pointer;
    }
    for (const json& doc : {json(nullptr), json::array(), json("status"), json(1)}) {
        const auto out = format_status(doc);
        ASSERT_FALSE(out.ok());
        EXPECT_EQ(out.error_message(), "status: not a JSON object");
    }
}

TEST(meshctl_api, peers_missing_fields_and_wrong_types_are_errors) {
    const bad_case cases[] = {
        {"/peers", nullptr, true, "peers: missing"},
        {"/peers", json::object(), false, "peers: not an array"},
        {"/peers/0", 1, false, "peers[0]: not an object"},
        {"/peers/1/public_key", nullptr, true, "peers[1].public_key: missing"},
        {"/peers/0/endpoint", 7, false, "peers[0].endpoint: not a string or null"},
        {"/peers/0/allowed_ips/1", 7, false, "peers[0].allowed_ips[1]: not a string"},
        {"/peers/0/latest_handshake_unix", -5, false, "peers[0].latest_handshake_unix: not a non-negative integer"},
        {"/peers/0/rx_bytes", "1", false, "peers[0].rx_bytes: not a non-negative integer"},
        {"/peers/1/meshfwd", "yes", false, "peers[1].meshfwd: not true or false"},
        {"/peers/0/workers/1/tx_packets", nullptr, true, "peers[0].workers[1].tx_packets: missing"},
        {"/peers/0/session", nullptr, false, "peers[0].session: not a string"},
    };
    for (const auto& c : cases) {
        json doc = peers_fixture();
        const json::json_pointer ptr(c.json_pointer);
        if (c.remove) {
            doc[ptr.parent_pointer()].erase(ptr.back());
        } else {
            doc[ptr] = c.value;
        }
        result<std::string> out = std::string();
        ASSERT_NO_THROW(out = format_peers(doc, now)) << c.json_pointer;
        ASSERT_FALSE(out.ok()) << c.json_pointer;
        EXPECT_EQ(out.error_message(), c.expected_error) << c.json_pointer;
    }
    const auto out = format_peers(json::array(), now);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error_message(), "peers document: not a JSON object");
}

TEST(meshctl_api, extreme_values_do_not_overflow) {
    json doc = peers_fixture();
    doc["peers"][0]["latest_handshake_unix"] = UINT64_MAX;
    doc["peers"][0]["rx_bytes"] = UINT64_MAX;
    const auto out = format_peers(doc, now);
    ASSERT_TRUE(out.ok()) << out.error_message();
    EXPECT_NE(out->find("latest handshake: in the future"), std::string::npos) << *out;

    json st = status_fixture();
    st["node"]["uptime_seconds"] = 1e300;
    ASSERT_TRUE(format_status(st).ok());
    st["node"]["uptime_seconds"] = -4;
    const auto s = format_status(st);
    ASSERT_TRUE(s.ok());
    EXPECT_NE(s->find("up 0 seconds"), std::string::npos) << *s;
}

// A node with mesh.discovery.server adds `coordination` to its status; meshctl shows it after
// the node block. Without it (null or absent) nothing is printed.
TEST(meshctl_api, status_shows_the_meshcoord_state) {
    json st = status_fixture();
    st["coordination"] = json::parse(R"({"network_id": "office", "servers": ["http://192.0.2.1:7080"],
        "server": "http://192.0.2.1:7080", "connected": false, "registered": true, "peer_id": "peer-0123456789ab",
        "addresses": ["10.100.0.7/16", "fd12:3456:789a:1:2:3:4:5/48"], "version": 42, "peers": 3, "peers_online": 2,
        "from_cache": true, "last_error": "connect: Connection refused", "cache_file": "/etc/meshfwd/node.peers.json"})");
    auto text = format_status(st);
    ASSERT_TRUE(text.ok()) << text.error_message();
    EXPECT_NE(text->find("  version 0.1.0, up 1 minute, 5 seconds, 3 peers\n"
                         "meshcoord: http://192.0.2.1:7080 (not connected), network office\n"
                         "  registered: yes, as peer-0123456789ab; addresses 10.100.0.7/16, fd12:3456:789a:1:2:3:4:5/48\n"
                         "  peers: 3 known, 2 online, version 42 (from the cache file)\n"
                         "  last error: connect: Connection refused\n"
                         "workers:\n"),
              std::string::npos)
        << *text;
    st["coordination"]["connected"] = true;
    st["coordination"]["registered"] = false;
    st["coordination"]["from_cache"] = false;
    st["coordination"]["last_error"] = nullptr;
    text = format_status(st);
    ASSERT_TRUE(text.ok()) << text.error_message();
    EXPECT_NE(text->find("meshcoord: http://192.0.2.1:7080 (connected), network office\n"
                         "  registered: peer-0123456789ab, pending approval; addresses"),
              std::string::npos)
        << *text;
    EXPECT_NE(text->find("version 42\nworkers:"), std::string::npos) << *text;
    st["coordination"]["peers"] = "three";
    EXPECT_EQ(format_status(st).error_message(), "coordination.peers: not a non-negative integer");
    st["coordination"] = nullptr;
    text = format_status(st);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(text->find("meshcoord"), std::string::npos);
}

TEST(meshctl_api, api_address_from_flag_default_or_config) {
    api_options opts;
    auto ep = resolve_api(opts);
    ASSERT_TRUE(ep.ok()) << ep.error_message();
    EXPECT_EQ(ep->to_string(), "127.0.0.1:7082");

    opts.api = "[::1]:9000";
    ep = resolve_api(opts);
    ASSERT_TRUE(ep.ok()) << ep.error_message();
    EXPECT_EQ(ep->to_string(), "[::1]:9000");

    for (const char* bad : {"localhost:7082", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "1.2.3.4:x"}) {
        opts.api = bad;
        ep = resolve_api(opts);
        ASSERT_FALSE(ep.ok()) << bad;
        EXPECT_NE(ep.error_message().find("--api"), std::string::npos) << ep.error_message();
    }

    opts = api_options{};
    opts.config_file = "/nonexistent/mesh.yaml";
    ep = resolve_api(opts);
    ASSERT_FALSE(ep.ok());
    EXPECT_NE(ep.error_message().find("cannot take api.listen from /nonexistent/mesh.yaml"), std::string::npos)
        << ep.error_message();
}

TEST(meshctl_api, unreachable_api_names_the_address) {
    // Port 1 on loopback: nothing listens there without root, so the connect is refused at once.
    const auto doc = fetch_json(endpoint::parse("127.0.0.1:1").value(), "/v1/status");
    ASSERT_FALSE(doc.ok());
    EXPECT_EQ(doc.error_message(),
              "cannot reach meshfwd's API at 127.0.0.1:1 (is meshfwd running? is api.listen different?)");
}

} // namespace
} // namespace meshfwd::meshctl
