// control::prometheus_text: the exact exposition for a fixture (HELP/TYPE for every family,
// integer counters, label escaping of '"', '\' and newlines), and malformed input skipped, not
// thrown on. Test thread only.
#include "control/metrics_text.h"

#include <gtest/gtest.h>

namespace meshfwd::control {
namespace {

using json = nlohmann::json;

const json status_fixture = json::parse(R"({
  "node": {"name": "a", "public_key": "AAAA", "listen_port": 51820, "lane_ports": [40001], "address": "10.100.0.1/16",
           "device": "mesh0", "mtu": 1420, "workers": 2, "cores": [0, 1], "crypto": "portable", "poll": "adaptive",
           "offloads": {"tso": true, "uso": false, "udp_gso": true, "udp_gro": true}, "uptime_seconds": 12.5,
           "version": "0.1.0"},
  "totals": {"rx_packets": 215, "rx_bytes": 30000, "tx_packets": 217, "tx_bytes": 31000, "drops": {"no_route": 3}},
  "workers": [{"id": 0, "cpu": 4, "rx_packets": 120, "rx_bytes": 18446744073709551615, "tx_packets": 118,
               "tx_bytes": 20000, "stale_source_resends": 4, "drops": {"no_route": 3, "replay": 0}},
              {"id": 1, "cpu": 5, "rx_packets": 95, "rx_bytes": 11000, "tx_packets": 99, "tx_bytes": 11000,
               "drops": {}}],
  "handshakes": {"initiations_sent": 3, "initiations_received": 2, "responses_sent": 2, "responses_received": 1,
                 "cookie_replies_sent": 0, "cookie_replies_received": 0, "sessions_established": 3,
                 "rejected": {"bad_mac1": 2}},
  "peers": 2})");

const json peers_fixture = json::parse(R"({"peers": [
  {"public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", "name": "b", "endpoint": "192.0.2.2:51820",
   "allowed_ips": ["10.0.0.2/32"], "latest_handshake_unix": 1763800000, "rx_bytes": 1000, "tx_bytes": 2000,
   "rx_packets": 10, "tx_packets": 20, "persistent_keepalive_seconds": 25, "meshfwd": true, "lanes": 2,
   "session": "established", "handshakes": 1, "workers": []},
  {"public_key": "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=", "endpoint": null, "allowed_ips": [],
   "latest_handshake_unix": 0, "rx_bytes": 0, "tx_bytes": 0, "rx_packets": 0, "tx_packets": 0,
   "persistent_keepalive_seconds": 0, "meshfwd": false, "lanes": 1, "session": "none", "handshakes": 0, "name": null,
   "workers": []}]})");

TEST(metrics_text, fixture_gives_exact_exposition) {
    const std::string expected =
        "# HELP meshfwd_build_info Always 1; the labels name meshfwd's version and AEAD backend.\n"
        "# TYPE meshfwd_build_info gauge\n"
        "meshfwd_build_info{version=\"0.1.0\",crypto=\"portable\"} 1\n"
        "# HELP meshfwd_rx_packets_total Packets received from the underlay and decrypted, per worker.\n"
        "# TYPE meshfwd_rx_packets_total counter\n"
        "meshfwd_rx_packets_total{worker=\"0\"} 120\n"
        "meshfwd_rx_packets_total{worker=\"1\"} 95\n"
        "# HELP meshfwd_rx_bytes_total WireGuard message bytes received and decrypted, per worker.\n"
        "# TYPE meshfwd_rx_bytes_total counter\n"
        "meshfwd_rx_bytes_total{worker=\"0\"} 18446744073709551615\n"
        "meshfwd_rx_bytes_total{worker=\"1\"} 11000\n"
        "# HELP meshfwd_tx_packets_total Packets encrypted and sent to the underlay, per worker.\n"
        "# TYPE meshfwd_tx_packets_total counter\n"
        "meshfwd_tx_packets_total{worker=\"0\"} 118\n"
        "meshfwd_tx_packets_total{worker=\"1\"} 99\n"
        "# HELP meshfwd_tx_bytes_total WireGuard message bytes encrypted and sent, per worker.\n"
        "# TYPE meshfwd_tx_bytes_total counter\n"
        "meshfwd_tx_bytes_total{worker=\"0\"} 20000\n"
        "meshfwd_tx_bytes_total{worker=\"1\"} 11000\n"
        "# HELP meshfwd_stale_source_resends_total Datagrams whose sticky source address was gone (removed), sent again "
        "from the route's source, per worker.\n"
        "# TYPE meshfwd_stale_source_resends_total counter\n"
        "meshfwd_stale_source_resends_total{worker=\"0\"} 4\n"
        "# HELP meshfwd_drops_total Packets dropped, per worker and reason.\n"
        "# TYPE meshfwd_drops_total counter\n"
        "meshfwd_drops_total{worker=\"0\",reason=\"no_route\"} 3\n"
        "meshfwd_drops_total{worker=\"0\",reason=\"replay\"} 0\n"
        "# HELP meshfwd_handshakes_total Handshake messages and sessions, by kind.\n"
        "# TYPE meshfwd_handshakes_total counter\n"
        "meshfwd_handshakes_total{kind=\"cookie_replies_received\"} 0\n"
        "meshfwd_handshakes_total{kind=\"cookie_replies_sent\"} 0\n"
        "meshfwd_handshakes_total{kind=\"initiations_received\"} 2\n"
        "meshfwd_handshakes_total{kind=\"initiations_sent\"} 3\n"
        "meshfwd_handshakes_total{kind=\"responses_received\"} 1\n"
        "meshfwd_handshakes_total{kind=\"responses_sent\"} 2\n"
        "meshfwd_handshakes_total{kind=\"sessions_established\"} 3\n"
        "# HELP meshfwd_handshake_rejections_total Handshake messages rejected, by reason.\n"
        "# TYPE meshfwd_handshake_rejections_total counter\n"
        "meshfwd_handshake_rejections_total{reason=\"bad_mac1\"} 2\n"
        "# HELP meshfwd_peer_rx_bytes_total WireGuard message bytes received from the peer.\n"
        "# TYPE meshfwd_peer_rx_bytes_total counter\n"
        "meshfwd_peer_rx_bytes_total{public_key=\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\",name=\"b\"} 1000\n"
        "meshfwd_peer_rx_bytes_total{public_key=\"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\"} 0\n"
        "# HELP meshfwd_peer_tx_bytes_total WireGuard message bytes sent to the peer.\n"
        "# TYPE meshfwd_peer_tx_bytes_total counter\n"
        "meshfwd_peer_tx_bytes_total{public_key=\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\",name=\"b\"} 2000\n"
        "meshfwd_peer_tx_bytes_total{public_key=\"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\"} 0\n"
        "# HELP meshfwd_peer_latest_handshake_timestamp_seconds Unix time of the peer's latest completed handshake; 0 = never.\n"
        "# TYPE meshfwd_peer_latest_handshake_timestamp_seconds gauge\n"
        "meshfwd_peer_latest_handshake_timestamp_seconds{public_key=\"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\",name=\"b\"} 1763800000\n"
        "meshfwd_peer_latest_handshake_timestamp_seconds{public_key=\"TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=\"} 0\n"
        "# HELP meshfwd_peers Configured and discovered peers.\n"
        "# TYPE meshfwd_peers gauge\n"
        "meshfwd_peers 2\n"
        "# HELP meshfwd_uptime_seconds Seconds since meshfwd started.\n"
        "# TYPE meshfwd_uptime_seconds gauge\n"
        "meshfwd_uptime_seconds 12.5\n";
    EXPECT_EQ(prometheus_text(status_fixture, peers_fixture), expected);
}

TEST(metrics_text, label_values_are_escaped) {
    EXPECT_EQ(prometheus_escape_label("plain"), "plain");
    EXPECT_EQ(prometheus_escape_label("a\"b"), "a\\\"b");
    EXPECT_EQ(prometheus_escape_label("a\\b"), "a\\\\b");
    EXPECT_EQ(prometheus_escape_label("a\nb"), "a\\nb");
    EXPECT_EQ(prometheus_escape_label("\\\"\n"), "\\\\\\\"\\n");

    json status = status_fixture;
    status["handshakes"]["rejected"] = {{"we\"ird\\reason\nx", 7}};
    json peers = {{"peers", json::array({{{"public_key", "k\"\\\n"}, {"rx_bytes", 1}, {"tx_bytes", 2},
                                          {"latest_handshake_unix", 3}}})}};
    const std::string text = prometheus_text(status, peers);
    EXPECT_NE(text.find("meshfwd_handshake_rejections_total{reason=\"we\\\"ird\\\\reason\\nx\"} 7\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("meshfwd_peer_rx_bytes_total{public_key=\"k\\\"\\\\\\n\"} 1\n"), std::string::npos) << text;
    // No raw newline inside a sample: every line starts a comment or a metric name.
    size_t at = 0;
    while (at < text.size()) {
        EXPECT_TRUE(text.compare(at, 1, "#") == 0 || text.compare(at, 8, "meshfwd_") == 0) << text.substr(at, 40);
        at = text.find('\n', at) + 1;
    }
}

TEST(metrics_text, counters_are_integers_even_when_built_signed) {
    // The control thread may build counters from int; they must print as integers, not 1.0.
    json status = {{"workers", json::array({{{"id", 0}, {"rx_packets", int64_t{5}}, {"rx_bytes", 7u},
                                             {"tx_packets", 0}, {"tx_bytes", 0}, {"drops", json::object()}}})},
                   {"peers", 0}};
    const std::string text = prometheus_text(status, json::object());
    EXPECT_NE(text.find("meshfwd_rx_packets_total{worker=\"0\"} 5\n"), std::string::npos) << text;
    EXPECT_NE(text.find("meshfwd_rx_bytes_total{worker=\"0\"} 7\n"), std::string::npos) << text;
    EXPECT_NE(text.find("meshfwd_peers 0\n"), std::string::npos) << text;
}

TEST(metrics_text, malformed_input_is_skipped_with_every_family_still_described) {
    json status = {{"workers", json::array({{{"id", -1}, {"rx_packets", 1}},
                                            {{"id", 2}, {"rx_packets", 1.5}, {"tx_packets", "x"}},
                                            "not an object"})},
                   {"handshakes", {{"initiations_sent", -3}, {"rejected", json::array()}}},
                   {"node", {{"uptime_seconds", "long"}}},
                   {"peers", "three"}};
    json peers = {{"peers", json::array({{{"public_key", 5}, {"rx_bytes", 1}}, nullptr})}};
    std::string text;
    ASSERT_NO_THROW(text = prometheus_text(status, peers));
    for (const char* family : {"meshfwd_rx_packets_total", "meshfwd_rx_bytes_total", "meshfwd_tx_packets_total",
                               "meshfwd_tx_bytes_total", "meshfwd_drops_total", "meshfwd_handshakes_total",
                               "meshfwd_handshake_rejections_total", "meshfwd_peer_rx_bytes_total",
                               "meshfwd_peer_tx_bytes_total", "meshfwd_peer_latest_handshake_timestamp_seconds",
                               "meshfwd_peers", "meshfwd_uptime_seconds"}) {
        EXPECT_NE(text.find(std::string("# HELP ") + family + " "), std::string::npos) << family;
        EXPECT_NE(text.find(std::string("# TYPE ") + family + " "), std::string::npos) << family;
    }
    // Nothing but comments and the peer count taken from the peer list (2 entries).
    std::string samples;
    size_t at = 0;
    while (at < text.size()) {
        const size_t end = text.find('\n', at);
        if (text[at] != '#') {
            samples += text.substr(at, end + 1 - at);
        }
        at = end + 1;
    }
    EXPECT_EQ(samples, "meshfwd_peers 2\n");

    ASSERT_NO_THROW(text = prometheus_text(json(nullptr), json::array({1, 2})));
    ASSERT_NO_THROW(text = prometheus_text(json("str"), json(3)));
}

} // namespace
} // namespace meshfwd::control
