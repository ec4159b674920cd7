// control/uapi_protocol: every key of the cross-platform UAPI, with good and bad values, unknown
// keys, keys in the wrong place, truncated and oversized input, and the get=1 reply's text.
#include "control/uapi_protocol.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

namespace meshfwd::control::uapi {
namespace {

const std::string key_a(64, 'a');  // 0xaa... as hex
const std::string key_b = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789ABCDEF";

set_request parse_set(const std::string& body) {
    auto r = parse_request("set=1\n" + body + "\n");
    if (auto* e = std::get_if<error>(&r)) {
        ADD_FAILURE() << "refused: " << e->message;
        return {};
    }
    return std::move(std::get<set_request>(r));
}

error parse_error(const std::string& text) {
    auto r = parse_request(text);
    if (auto* e = std::get_if<error>(&r)) {
        return *e;
    }
    ADD_FAILURE() << "accepted: " << text.substr(0, 200);
    return {};
}

error set_error(const std::string& body) { return parse_error("set=1\n" + body + "\n"); }

TEST(UapiProtocol, RequestEndFindsTheEmptyLine) {
    EXPECT_EQ(request_end("get=1\n\n"), 7u);
    EXPECT_EQ(request_end("get=1\n\nget=1\n\n"), 7u);
    EXPECT_EQ(request_end("set=1\nlisten_port=1\n"), std::string_view::npos);
    EXPECT_EQ(request_end("\n"), 1u);
    EXPECT_EQ(request_end(""), std::string_view::npos);
}

TEST(UapiProtocol, Get) {
    EXPECT_TRUE(std::holds_alternative<get_request>(parse_request("get=1\n\n")));
    EXPECT_EQ(parse_error("get=1\nlisten_port=1\n\n").code, EINVAL);
    EXPECT_EQ(parse_error("get=1\n").code, EPROTO);
    EXPECT_EQ(parse_error("get=1").code, EPROTO);
}

TEST(UapiProtocol, UnknownOperation) {
    const auto e = parse_error("put=1\n\n");
    EXPECT_EQ(e.code, EPROTO);
    EXPECT_NE(e.message.find("line 1"), std::string::npos) << e.message;
    EXPECT_EQ(parse_error("\n").code, EPROTO);
    EXPECT_EQ(parse_error("get=2\n\n").code, EPROTO);
}

TEST(UapiProtocol, DeviceKeys) {
    const auto r = parse_set("private_key=" + key_b + "\nlisten_port=51820\nfwmark=4660\nreplace_peers=true\n");
    ASSERT_TRUE(r.private_key.has_value());
    EXPECT_EQ(r.private_key->data()[0], 0x01);
    EXPECT_EQ(r.private_key->data()[7], 0xef);
    EXPECT_EQ(r.private_key->data()[31], 0xef);
    EXPECT_EQ(r.listen_port, 51820);
    EXPECT_EQ(r.fwmark, 4660u);
    EXPECT_TRUE(r.replace_peers);
    EXPECT_TRUE(r.peers.empty());

    EXPECT_EQ(parse_set("fwmark=\n").fwmark, 0u);
    EXPECT_EQ(parse_set("fwmark=4294967295\n").fwmark, 4294967295u);
    EXPECT_EQ(parse_set("listen_port=0\n").listen_port, 0);
    EXPECT_TRUE(parse_set("private_key=" + std::string(64, '0') + "\n").private_key->is_zero());
    const auto empty = parse_set("");
    EXPECT_FALSE(empty.private_key || empty.listen_port || empty.fwmark || empty.replace_peers);
}

TEST(UapiProtocol, BadDeviceValues) {
    for (const std::string& body : std::vector<std::string>{"private_key=" + std::string(63, 'a'), "private_key=" + std::string(65, 'a'),
                                   "private_key=" + std::string(63, 'a') + "g", "private_key=",
                                   std::string("listen_port=65536"), std::string("listen_port=-1"),
                                   std::string("listen_port="), std::string("listen_port=1x"),
                                   std::string("listen_port= 1"), std::string("listen_port=99999999999"),
                                   std::string("fwmark=4294967296"), std::string("fwmark=0x10"),
                                   std::string("replace_peers=false"), std::string("replace_peers=")}) {
        const auto e = set_error(body + "\n");
        EXPECT_EQ(e.code, EINVAL) << body;
        EXPECT_NE(e.message.find("line 2"), std::string::npos) << e.message;
    }
}

TEST(UapiProtocol, MessagesNameTheKeyAndNeverCarryAWholeKey) {
    const auto e = set_error("listen_port=70000\n");
    EXPECT_NE(e.message.find("listen_port"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("70000"), std::string::npos) << e.message;
    const auto k = set_error("private_key=" + key_a + "z\n");
    EXPECT_EQ(k.message.find(key_a), std::string::npos) << k.message;
}

TEST(UapiProtocol, PeerKeys) {
    const auto r = parse_set("public_key=" + key_a + "\nupdate_only=true\npreshared_key=" + key_b +
                             "\nendpoint=192.0.2.1:51820\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\n"
                             "allowed_ip=10.0.0.1/24\nallowed_ip=2001:db8::1/64\nprotocol_version=1\n"
                             "public_key=" + key_b + "\nremove=true\n"
                             "public_key=" + key_a + "\nendpoint=[2001:db8::2]:1\n");
    ASSERT_EQ(r.peers.size(), 3u);
    const auto& a = r.peers[0];
    EXPECT_EQ(a.public_key[0], 0xaa);
    EXPECT_TRUE(a.update_only);
    EXPECT_FALSE(a.remove);
    ASSERT_TRUE(a.preshared_key.has_value());
    EXPECT_EQ(a.preshared_key->data()[0], 0x01);
    ASSERT_TRUE(a.endpoint_address.has_value());
    EXPECT_EQ(a.endpoint_address->to_string(), "192.0.2.1:51820");
    EXPECT_EQ(a.persistent_keepalive, 25);
    EXPECT_TRUE(a.replace_allowed_ips);
    ASSERT_EQ(a.allowed_ips.size(), 2u);
    EXPECT_EQ(a.allowed_ips[0].to_string(), "10.0.0.0/24");  // masked, as wg does
    EXPECT_EQ(a.allowed_ips[1].to_string(), "2001:db8::/64");
    EXPECT_TRUE(r.peers[1].remove);
    EXPECT_FALSE(r.peers[1].endpoint_address.has_value());
    EXPECT_EQ(r.peers[2].endpoint_address->to_string(), "[2001:db8::2]:1");
    EXPECT_FALSE(r.peers[2].replace_allowed_ips);
    EXPECT_EQ(parse_set("public_key=" + key_a + "\npersistent_keepalive_interval=0\n").peers[0].persistent_keepalive, 0);
}

TEST(UapiProtocol, BadPeerValues) {
    const std::string head = "public_key=" + key_a + "\n";
    for (const std::string line : {"remove=false", "remove=1", "update_only=yes", "preshared_key=abc",
                                    "preshared_key=", "endpoint=192.0.2.1", "endpoint=192.0.2.1:0",
                                    "endpoint=192.0.2.1:65536", "endpoint=2001:db8::1:51820", "endpoint=host.example:1",
                                    "endpoint=", "persistent_keepalive_interval=65536", "persistent_keepalive_interval=-1",
                                    "persistent_keepalive_interval=", "replace_allowed_ips=no", "allowed_ip=10.0.0.0",
                                    "allowed_ip=10.0.0.0/33", "allowed_ip=2001:db8::/129", "allowed_ip=",
                                    "allowed_ip=10.0.0.0/-1", "protocol_version=2", "protocol_version=",
                                    "protocol_version=01"}) {
        const auto e = set_error(head + line + "\n");
        EXPECT_EQ(e.code, EINVAL) << line;
        EXPECT_NE(e.message.find("line 3"), std::string::npos) << line << ": " << e.message;
    }
    EXPECT_EQ(set_error("public_key=" + std::string(64, 'x') + "\n").code, EINVAL);
    EXPECT_EQ(set_error("public_key=\n").code, EINVAL);
}

TEST(UapiProtocol, UnknownAndMisplacedKeys) {
    EXPECT_EQ(set_error("listen_prot=1\n").code, EINVAL);
    EXPECT_NE(set_error("listen_prot=1\n").message.find("unknown device key"), std::string::npos);
    // Peer keys before any public_key, device keys after one.
    EXPECT_EQ(set_error("endpoint=192.0.2.1:1\n").code, EINVAL);
    EXPECT_EQ(set_error("allowed_ip=10.0.0.0/8\n").code, EINVAL);
    const std::string head = "public_key=" + key_a + "\n";
    for (const std::string& line : std::vector<std::string>{"listen_port=1", "private_key=" + key_b, "fwmark=1", "replace_peers=true"}) {
        const auto e = set_error(head + line + "\n");
        EXPECT_EQ(e.code, EINVAL) << line;
        EXPECT_NE(e.message.find("after the first public_key"), std::string::npos) << e.message;
    }
    EXPECT_EQ(set_error(head + "allowed_ips=10.0.0.0/8\n").code, EINVAL);
    EXPECT_EQ(set_error(head + "last_handshake_time_sec=1\n").code, EINVAL);  // read-only in get
    EXPECT_EQ(set_error(head + "=1\n").code, EINVAL);
}

TEST(UapiProtocol, MalformedLines) {
    EXPECT_EQ(set_error("listen_port\n").code, EPROTO);
    EXPECT_EQ(set_error("public_key=" + key_a + "\nno equals sign\n").code, EPROTO);
}

TEST(UapiProtocol, Truncated) {
    EXPECT_EQ(parse_error("set=1\n").code, EPROTO);
    EXPECT_EQ(parse_error("set=1\nlisten_port=1\n").code, EPROTO);
    EXPECT_EQ(parse_error("set=1\nlisten_port=1").code, EPROTO);
    EXPECT_EQ(parse_error("set=1\npublic_key=" + key_a).code, EPROTO);
    EXPECT_EQ(parse_error("").code, EPROTO);
    EXPECT_EQ(parse_error("set=").code, EPROTO);
}

TEST(UapiProtocol, Oversized) {
    EXPECT_EQ(set_error("fwmark=" + std::string(max_line_bytes, '1') + "\n").code, EMSGSIZE);
    EXPECT_EQ(parse_error(std::string(max_line_bytes + 1, 's') + "\n\n").code, EMSGSIZE);
    std::string huge = "set=1\n";
    while (huge.size() <= max_request_bytes) {
        huge += "public_key=" + key_a + "\n";
    }
    huge += "\n";
    EXPECT_EQ(parse_error(huge).code, EMSGSIZE);
}

TEST(UapiProtocol, ManyAllowedIps) {
    std::string body = "public_key=" + key_a + "\nreplace_allowed_ips=true\n";
    for (unsigned i = 0; i < 130000; ++i) {
        body += "allowed_ip=10." + std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." +
                std::to_string(i & 255) + "/32\n";
    }
    const auto r = parse_set(body);
    ASSERT_EQ(r.peers.size(), 1u);
    EXPECT_EQ(r.peers[0].allowed_ips.size(), 130000u);
    EXPECT_EQ(r.peers[0].allowed_ips.back().to_string(), "10.1.251.207/32");
}

TEST(UapiProtocol, HexKeys) {
    const auto k = key_from_hex(key_b);
    ASSERT_TRUE(k.has_value());
    EXPECT_EQ(key_to_hex(*k), "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    EXPECT_FALSE(key_from_hex(key_b.substr(1)).has_value());
    EXPECT_FALSE(key_from_hex(std::string(63, '0') + " ").has_value());
}

TEST(UapiProtocol, FormatGet) {
    device_view d;
    crypto::public_key priv{};
    priv[0] = 0x11;
    d.private_key = priv;
    d.listen_port = 51820;
    d.fwmark = 0;
    peer_view p;
    p.public_key.fill(0xaa);
    p.endpoint_address = endpoint(ip_address::v4(0xc0000201), 9);
    p.last_handshake_sec = 1700000000;
    p.last_handshake_nsec = 5;
    p.rx_bytes = 148;
    p.tx_bytes = 92;
    p.persistent_keepalive = 25;
    p.allowed_ips = {*ip_prefix::parse("10.0.0.0/24"), *ip_prefix::parse("2001:db8::/64")};
    d.peers.push_back(p);
    peer_view q;
    q.public_key.fill(0xbb);
    d.peers.push_back(q);
    const std::string expected = "private_key=11" + std::string(62, '0') +
                                 "\n"
                                 "listen_port=51820\n"
                                 "public_key=" + key_a +
                                 "\n"
                                 "preshared_key=" + std::string(64, '0') +
                                 "\n"
                                 "protocol_version=1\n"
                                 "endpoint=192.0.2.1:9\n"
                                 "last_handshake_time_sec=1700000000\n"
                                 "last_handshake_time_nsec=5\n"
                                 "tx_bytes=92\n"
                                 "rx_bytes=148\n"
                                 "persistent_keepalive_interval=25\n"
                                 "allowed_ip=10.0.0.0/24\n"
                                 "allowed_ip=2001:db8::/64\n"
                                 "public_key=" + std::string(64, 'b') +
                                 "\n"
                                 "preshared_key=" + std::string(64, '0') +
                                 "\n"
                                 "protocol_version=1\n"
                                 "last_handshake_time_sec=0\n"
                                 "last_handshake_time_nsec=0\n"
                                 "tx_bytes=0\n"
                                 "rx_bytes=0\n"
                                 "persistent_keepalive_interval=0\n"
                                 "errno=0\n\n";
    EXPECT_EQ(format_get(d), expected);
    EXPECT_EQ(format_get(device_view{}), "errno=0\n\n");
    EXPECT_EQ(format_errno(22), "errno=22\n\n");
}

TEST(UapiProtocol, SetRoundTripsThroughGetText) {
    // What get prints for the peer section, fed back as a set (minus the read-only keys), parses.
    device_view d;
    peer_view p;
    p.public_key.fill(0xcd);
    p.endpoint_address = *endpoint::parse("[2001:db8::5]:4242");
    p.allowed_ips = {*ip_prefix::parse("198.51.100.0/24")};
    d.peers.push_back(p);
    std::string text = format_get(d);
    std::string body;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto nl = text.find('\n', pos);
        const std::string line = text.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.empty() || line.starts_with("last_") || line.starts_with("tx_") || line.starts_with("rx_") ||
            line.starts_with("errno")) {
            continue;
        }
        body += line + "\n";
    }
    const auto r = parse_set(body);
    ASSERT_EQ(r.peers.size(), 1u);
    EXPECT_EQ(r.peers[0].endpoint_address, p.endpoint_address);
    EXPECT_EQ(r.peers[0].allowed_ips, p.allowed_ips);
    EXPECT_TRUE(r.peers[0].preshared_key->is_zero());
}

}  // namespace
}  // namespace meshfwd::control::uapi
