// control/config_values: ${VAR} expansion, host:port, STUN/TURN URLs, MAC addresses, names,
// suggestions. Test thread only.
#include "control/config_values.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace meshfwd::control {
namespace {

TEST(config_values, expand_env) {
    ::setenv("MESHFWD_T_A", "alpha", 1);
    ::setenv("MESHFWD_T_EMPTY", "", 1);
    ::unsetenv("MESHFWD_T_UNSET");
    EXPECT_EQ(*expand_env("x${MESHFWD_T_A}y"), "xalphay");
    EXPECT_EQ(*expand_env("${MESHFWD_T_A}${MESHFWD_T_A}"), "alphaalpha");
    EXPECT_EQ(*expand_env("[${MESHFWD_T_EMPTY}]"), "[]");
    EXPECT_EQ(*expand_env("$$"), "$");
    EXPECT_EQ(*expand_env("$${MESHFWD_T_A}"), "${MESHFWD_T_A}");
    EXPECT_EQ(*expand_env("a$b$"), "a$b$");
    EXPECT_EQ(*expand_env("plain"), "plain");

    auto unset = expand_env("${MESHFWD_T_UNSET}");
    ASSERT_FALSE(unset.ok());
    EXPECT_EQ(unset.error_message(), "environment variable MESHFWD_T_UNSET is not set");
    EXPECT_FALSE(expand_env("${MESHFWD_T_A").ok());
    EXPECT_FALSE(expand_env("${}").ok());
    EXPECT_FALSE(expand_env("${1X}").ok());
    EXPECT_FALSE(expand_env("${A:-b}").ok());
    ::unsetenv("MESHFWD_T_A");
    ::unsetenv("MESHFWD_T_EMPTY");
}

TEST(config_values, host_port) {
    auto a = parse_host_port("coord.example.com:7080", std::nullopt);
    ASSERT_TRUE(a.ok()) << a.error_message();
    EXPECT_EQ(a->host, "coord.example.com");
    EXPECT_EQ(a->port, 7080);
    auto b = parse_host_port("[2001:db8::1]:443", std::nullopt);
    ASSERT_TRUE(b.ok()) << b.error_message();
    EXPECT_EQ(b->host, "2001:db8::1");
    EXPECT_EQ(parse_host_port("stun.example.com", uint16_t{3478})->port, 3478);
    EXPECT_EQ(parse_host_port("192.0.2.1:1", std::nullopt)->host, "192.0.2.1");

    EXPECT_FALSE(parse_host_port("coord.example.com", std::nullopt).ok());
    EXPECT_FALSE(parse_host_port("coord:0", std::nullopt).ok());
    EXPECT_FALSE(parse_host_port("coord:65536", std::nullopt).ok());
    EXPECT_FALSE(parse_host_port("coord:x", std::nullopt).ok());
    EXPECT_FALSE(parse_host_port("2001:db8::1:443", std::nullopt).ok());
    EXPECT_FALSE(parse_host_port("[nothex]:443", std::nullopt).ok());
    EXPECT_FALSE(parse_host_port("bad_host:1", std::nullopt).ok());
    EXPECT_FALSE(parse_host_port("-x.example:1", std::nullopt).ok());
    EXPECT_FALSE(parse_host_port("a..b:1", std::nullopt).ok());
    EXPECT_FALSE(parse_host_port(":1", std::nullopt).ok());
}

TEST(config_values, stun_and_turn_urls) {
    auto s = parse_stun_url("stuns:stun.example.com");
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->secure);
    EXPECT_EQ(s->address.port, 5349);
    EXPECT_FALSE(parse_stun_url("stun.example.com:3478").ok());
    EXPECT_FALSE(parse_stun_url("stun:").ok());

    auto t = parse_turn_url("turn:turn.example.com");
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->transport, turn_transport::udp);
    EXPECT_EQ(t->address.port, 3478);
    auto ts = parse_turn_url("turns:turn.example.com:443?transport=tcp");
    ASSERT_TRUE(ts.ok());
    EXPECT_TRUE(ts->secure);
    EXPECT_EQ(ts->transport, turn_transport::tcp);
    EXPECT_EQ(ts->address.port, 443);
    EXPECT_FALSE(parse_turn_url("turns:t.example.com?transport=udp").ok());
    EXPECT_FALSE(parse_turn_url("turn:t.example.com?transport=sctp").ok());
    EXPECT_FALSE(parse_turn_url("stun:t.example.com").ok());
}

TEST(config_values, mac_address) {
    auto m = parse_mac_address("02:AB:cd:00:00:01");
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(*m, (std::array<uint8_t, 6>{0x02, 0xab, 0xcd, 0x00, 0x00, 0x01}));
    EXPECT_FALSE(parse_mac_address("01:00:5e:00:00:01").ok()); // multicast
    EXPECT_FALSE(parse_mac_address("02:00:00:00:00").ok());
    EXPECT_FALSE(parse_mac_address("02-00-00-00-00-01").ok());
    EXPECT_FALSE(parse_mac_address("02:00:00:00:00:0g").ok());
}

TEST(config_values, names) {
    EXPECT_TRUE(check_identifier("my-network_1.a", 64).ok());
    EXPECT_FALSE(check_identifier("", 64).ok());
    EXPECT_FALSE(check_identifier("has space", 64).ok());
    EXPECT_FALSE(check_identifier(std::string(65, 'a'), 64).ok());
    EXPECT_TRUE(check_interface_name("mesh0").ok());
    EXPECT_TRUE(check_interface_name("abcdefghijklmno").ok());
    EXPECT_FALSE(check_interface_name("abcdefghijklmnop").ok());
    EXPECT_FALSE(check_interface_name("a/b").ok());
    EXPECT_FALSE(check_interface_name("..").ok());
}

TEST(config_values, suggestions) {
    EXPECT_EQ(edit_distance("listen_prot", "listen_port"), 2u);
    EXPECT_EQ(edit_distance("", "abc"), 3u);
    EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
    constexpr std::array<std::string_view, 3> keys{"name", "listen_port", "address"};
    EXPECT_EQ(closest_name("listen_prot", keys), std::optional<std::string_view>("listen_port"));
    EXPECT_EQ(closest_name("adress", keys), std::optional<std::string_view>("address"));
    EXPECT_EQ(closest_name("frobnicate", keys), std::nullopt);
    EXPECT_EQ(closest_name("x", keys), std::nullopt);
}

TEST(config_values, quote_escapes_and_truncates) {
    EXPECT_EQ(quote("abc"), "'abc'");
    EXPECT_EQ(quote(std::string_view("a\nb\x01", 4)), "'a\\x0ab\\x01'");
    EXPECT_EQ(quote(std::string(100, 'x')), "'" + std::string(60, 'x') + "...'");
}

} // namespace
} // namespace meshfwd::control
