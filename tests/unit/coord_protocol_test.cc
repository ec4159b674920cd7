// Unit tests for coord/protocol: every body round-trips through to_json and its parser; unknown
// fields, wrong types, oversized strings and arrays, bad keys, ids, endpoints and CIDRs, duplicate
// keys, deep nesting and oversized bodies are refused with the field named; seed 003's shapes
// parse; make_peer_view fills addresses and times. Test thread only.
#include "coord/protocol.h"

#include <gtest/gtest.h>

#include "coord/node_address.h"

namespace meshfwd::coord {
namespace {

std::string key_b64(uint8_t fill) {
    node_key k{};
    k.fill(fill);
    return key_text(k);
}

template <typename T>
void expect_error(const result<T>& r, std::string_view what) {
    ASSERT_FALSE(r.ok()) << "expected: " << what;
    EXPECT_NE(r.error_message().find(what), std::string::npos) << r.error_message() << " / expected: " << what;
}

peer_view sample_peer(uint8_t fill) {
    peer_view p;
    p.id = "peer-00000000000" + std::to_string(fill % 10);
    p.public_key = key_b64(fill);
    p.virtual_ip = "10.100.0." + std::to_string(fill);
    p.ipv6 = "fdf3:f51e:25a8::1";
    p.endpoints = {"198.51.100.1:51820", "[2001:db8::1]:51820"};
    p.endpoint = p.endpoints[0];
    p.hostname = "laptop";
    p.os = "linux";
    p.allowed_ips = {p.virtual_ip + "/32", "fdf3:f51e:25a8::1/128"};
    p.online = true;
    p.last_heartbeat = "2024-01-01T12:00:00Z";
    return p;
}

void expect_same(const peer_view& a, const peer_view& b) {
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.public_key, b.public_key);
    EXPECT_EQ(a.virtual_ip, b.virtual_ip);
    EXPECT_EQ(a.ipv6, b.ipv6);
    EXPECT_EQ(a.endpoints, b.endpoints);
    EXPECT_EQ(a.endpoint, b.endpoint);
    EXPECT_EQ(a.hostname, b.hostname);
    EXPECT_EQ(a.os, b.os);
    EXPECT_EQ(a.allowed_ips, b.allowed_ips);
    EXPECT_EQ(a.exit_node, b.exit_node);
    EXPECT_EQ(a.online, b.online);
    EXPECT_EQ(a.approved, b.approved);
    EXPECT_EQ(a.last_heartbeat, b.last_heartbeat);
}

TEST(coord_protocol_test, create_network_round_trip) {
    create_network_request q;
    q.id = "home";
    q.name = "Home network";
    q.cidr = "10.100.0.0/16";
    q.options.heartbeat_interval_s = 10;
    q.options.offline_after_s = 40;
    q.options.auto_approve = false;
    q.options.max_peers = 50;
    q.options.jwt.hs256_secret = std::string(32, 's');
    auto back = parse_create_network(to_json(q));
    ASSERT_TRUE(back.ok()) << back.error_message();
    EXPECT_EQ(back->id, "home");
    EXPECT_EQ(back->name, "Home network");
    EXPECT_EQ(back->cidr, "10.100.0.0/16");
    EXPECT_EQ(back->options.heartbeat_interval_s, 10u);
    EXPECT_EQ(back->options.offline_after_s, 40u);
    EXPECT_FALSE(back->options.auto_approve);
    EXPECT_EQ(back->options.max_peers, 50u);
    EXPECT_EQ(back->options.jwt.hs256_secret, std::string(32, 's'));
    // Minimal body: defaults.
    auto minimal = parse_create_network(R"({"cidr":"10.0.0.0/8"})");
    ASSERT_TRUE(minimal.ok());
    EXPECT_TRUE(minimal->id.empty());
    EXPECT_EQ(minimal->options.heartbeat_interval_s, 30u);
}

TEST(coord_protocol_test, cidr_validation) {
    EXPECT_TRUE(parse_network_cidr("10.100.0.0/16").ok());
    EXPECT_TRUE(parse_network_cidr("10.0.0.0/8").ok());
    EXPECT_TRUE(parse_network_cidr("192.0.2.4/30").ok());
    expect_error(parse_network_cidr("10.100.0.1/16"), "host bits set (the network is 10.100.0.0/16)");
    expect_error(parse_network_cidr("0.0.0.0/0"), "outside /8.../30");
    expect_error(parse_network_cidr("10.0.0.0/7"), "outside /8.../30");
    expect_error(parse_network_cidr("10.0.0.0/31"), "outside /8.../30");
    expect_error(parse_network_cidr("fd00::/64"), "must be an IPv4 prefix");
    expect_error(parse_network_cidr("10.0.0.0"), "not an address/length prefix");
    expect_error(parse_network_cidr("010.0.0.0/8"), "not an address/length prefix");
    expect_error(parse_create_network(R"({"cidr":"10.100.0.1/16"})"), "cidr: host bits set");
    expect_error(parse_create_network(R"({"cidr":"1.2.3.4/99"})"), "cidr: ");
}

TEST(coord_protocol_test, ids_and_keys) {
    EXPECT_TRUE(valid_id("home"));
    EXPECT_TRUE(valid_id("a-1"));
    EXPECT_TRUE(valid_id(std::string(63, 'a')));
    EXPECT_FALSE(valid_id(""));
    EXPECT_FALSE(valid_id(std::string(64, 'a')));
    EXPECT_FALSE(valid_id("Home"));
    EXPECT_FALSE(valid_id("a_b"));
    EXPECT_FALSE(valid_id("a/b"));
    const std::string k = key_b64(7);
    EXPECT_TRUE(parse_key(k).has_value());
    EXPECT_FALSE(parse_key(" " + k).has_value());
    EXPECT_FALSE(parse_key(k.substr(0, 43)).has_value());
    // Non-zero padding bits: decodes to the same key, but is not the canonical text.
    std::string loose = key_b64(0);
    loose[42] = 'B';
    EXPECT_FALSE(parse_key(loose).has_value());
    expect_error(parse_create_network(R"({"id":"Bad Id","cidr":"10.0.0.0/8"})"), "id: not an id");
}

TEST(coord_protocol_test, register_round_trip_and_seed_003_shape) {
    register_request q;
    q.public_key = key_b64(1);
    q.hostname = "laptop";
    q.os = "linux";
    q.endpoints = {"198.51.100.1:51820"};
    q.exit_node = true;
    q.invite = "mfinv1.abc.def";
    auto back = parse_register(to_json(q));
    ASSERT_TRUE(back.ok()) << back.error_message();
    EXPECT_EQ(back->public_key, q.public_key);
    EXPECT_EQ(back->endpoints, q.endpoints);
    EXPECT_TRUE(back->exit_node);
    EXPECT_EQ(back->invite, q.invite);

    // Seed 003's POST /register body, verbatim shape.
    auto seed = parse_register(R"({"public_key":")" + key_b64(2) +
                               R"(","hostname":"my-laptop","os":"linux","endpoint":"1.2.3.4:51820","request_ip":true,"exit_node":false})");
    ASSERT_TRUE(seed.ok()) << seed.error_message();
    EXPECT_EQ(seed->endpoints, std::vector<std::string>{"1.2.3.4:51820"});
}

TEST(coord_protocol_test, register_refusals_name_the_field) {
    const std::string k = R"("public_key":")" + key_b64(1) + R"(")";
    expect_error(parse_register("{}"), "public_key: required");
    expect_error(parse_register(R"({"public_key":"abc"})"), "public_key: not a 32-byte base64 key");
    expect_error(parse_register(R"({"public_key":5})"), "public_key: must be a string");
    expect_error(parse_register("{" + k + R"(,"colour":"red"})"), "colour: unknown field");
    expect_error(parse_register("{" + k + R"(,"exit_node":"yes"})"), "exit_node: must be true or false");
    expect_error(parse_register("{" + k + R"(,"hostname":")" + std::string(256, 'h') + R"("})"),
                 "hostname: longer than 255 bytes");
    expect_error(parse_register("{" + k + R"(,"hostname":"a\u0007b"})"), "hostname: contains a control character");
    expect_error(parse_register("{" + k + R"(,"endpoints":["1.2.3.4"]})"), "endpoints[0]: not an ip:port endpoint");
    std::string many = "{" + k + R"(,"endpoints":[)";
    for (int i = 0; i < 17; ++i) {
        many += std::string(i ? "," : "") + "\"192.0.2.1:" + std::to_string(1000 + i) + "\"";
    }
    expect_error(parse_register(many + "]}"), "endpoints: more than 16 entries");
    expect_error(parse_register("{" + k + R"(,"invite":"a","token":"b"})"), "token: give either");
    expect_error(parse_register("[1]"), "body: must be a JSON object");
    expect_error(parse_register("{" + k), "body: not valid JSON");
    expect_error(parse_register(""), "body: not valid JSON");
    expect_error(parse_register("{" + k + "," + k + "}"), "body: duplicate field \"public_key\"");
    expect_error(parse_register(std::string(max_request_body + 1, ' ')), "body: larger than 65536 bytes");
    std::string deep = "{" + k + R"(,"hostname":)";
    for (int i = 0; i < 100; ++i) {
        deep += "[";
    }
    expect_error(parse_register(deep), "nested deeper");
}

TEST(coord_protocol_test, heartbeat_and_subscribe) {
    heartbeat_request h;
    h.peer_id = "peer-0123456789ab";
    h.endpoints = std::vector<std::string>{"[2001:db8::1]:51820"};
    auto back = parse_heartbeat(to_json(h));
    ASSERT_TRUE(back.ok()) << back.error_message();
    EXPECT_EQ(back->peer_id, h.peer_id);
    ASSERT_TRUE(back->endpoints.has_value());
    EXPECT_EQ(*back->endpoints, *h.endpoints);
    auto seed = parse_heartbeat(R"({"peer_id":"peer-123456","endpoint":"1.2.3.4:51820"})");
    ASSERT_TRUE(seed.ok());
    EXPECT_FALSE(seed->endpoints.has_value());
    EXPECT_EQ(seed->endpoint, "1.2.3.4:51820");
    expect_error(parse_heartbeat(R"({"peer_id":"PEER"})"), "peer_id: not an id");

    auto s = parse_subscribe(to_json(subscribe_request{42}));
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->since_version, 42);
    expect_error(parse_subscribe(R"({"since_version":-1})"), "since_version: out of range");
    expect_error(parse_subscribe(R"({"since_version":1.5})"), "since_version: must be an integer");
    expect_error(parse_subscribe(R"({"since_version":"1"})"), "since_version: must be an integer");
}

TEST(coord_protocol_test, register_response_round_trip) {
    register_response r;
    r.peer_id = "peer-0123456789ab";
    r.assigned_ip = "10.100.0.2";
    r.ipv6 = "fdf3:f51e:25a8::1";
    r.network_cidr = "10.100.0.0/16";
    r.ula_prefix = "fdf3:f51e:25a8::/48";
    r.server_public_key = key_b64(9);
    r.approved = false;
    r.version = 7;
    r.mtu = 1420;
    const std::string text = to_json(r);
    EXPECT_NE(text.find("\"success\":true"), std::string::npos);
    auto back = parse_register_response(text);
    ASSERT_TRUE(back.ok()) << back.error_message();
    EXPECT_EQ(back->assigned_ip, r.assigned_ip);
    EXPECT_FALSE(back->approved);
    EXPECT_EQ(back->version, 7);
    EXPECT_EQ(back->mtu, 1420u);
    r.ula_prefix = "fd00::/64";
    expect_error(parse_register_response(to_json(r)), "ula_prefix: not an fd00::/8 /48 prefix");
}

TEST(coord_protocol_test, peer_list_and_events) {
    std::vector<peer_view> peers = {sample_peer(1), sample_peer(2)};
    peers[1].exit_node = true;
    peers[1].approved = false;
    peers[1].last_heartbeat = "";
    auto back = parse_peer_list(peer_list_json(peers));
    ASSERT_TRUE(back.ok()) << back.error_message();
    ASSERT_EQ(back->size(), 2u);
    expect_same((*back)[0], peers[0]);
    expect_same((*back)[1], peers[1]);

    event_message snap;
    snap.type = "snapshot";
    snap.version = 12;
    snap.peers = peers;
    auto s = parse_event_message(to_json(snap));
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(s->peers.size(), 2u);

    event_message ev;
    ev.type = "event";
    ev.version = 13;
    ev.kind = "changed";
    ev.public_key = peers[0].public_key;
    ev.peer = peers[0];
    auto e = parse_event_message(to_json(ev));
    ASSERT_TRUE(e.ok()) << e.error_message();
    ASSERT_TRUE(e->peer.has_value());
    expect_same(*e->peer, peers[0]);

    ev.kind = "left";
    ev.peer.reset();
    auto left = parse_event_message(to_json(ev));
    ASSERT_TRUE(left.ok()) << left.error_message();
    EXPECT_FALSE(left->peer.has_value());

    // Field paths inside arrays and nested objects.
    std::string bad = peer_list_json(peers);
    bad.replace(bad.find(peers[1].public_key), peers[1].public_key.size(), "AAAA");
    expect_error(parse_peer_list(bad), "peers[1].public_key: not a 32-byte base64 key");
    expect_error(parse_event_message(R"({"type":"event","version":1,"kind":"exploded","public_key":")" + key_b64(1) + "\"}"),
                 "kind: not one of");
    expect_error(parse_event_message(R"({"type":"event","version":1,"kind":"joined","public_key":")" + key_b64(1) + "\"}"),
                 "peer: required in a joined event");
    expect_error(parse_event_message(R"({"type":"snapshot","version":1})"), "peers: required");
    expect_error(parse_event_message(R"({"type":"other","version":1})"), "type: not snapshot or event");
    std::string ts = peer_list_json({sample_peer(1)});
    ts.replace(ts.find("2024-01-01T12:00:00Z"), 20, "yesterday at noon");
    expect_error(parse_peer_list(ts), "peers[0].last_heartbeat: not an RFC 3339");
}

TEST(coord_protocol_test, network_views_hide_secrets) {
    network_view n;
    n.id = "home";
    n.name = "Home";
    n.cidr = "10.100.0.0/16";
    n.ula_prefix = network_ula_prefix("home").to_string();
    n.invite_public_key = key_b64(3);
    n.options.jwt.hs256_secret = "super-secret-value-that-must-not-leak!!";
    n.jwt_hs256 = true;
    n.created_ms = 1234;
    const std::string text = to_json(n);
    EXPECT_EQ(text.find("super-secret"), std::string::npos);
    auto back = parse_network_view(text);
    ASSERT_TRUE(back.ok()) << back.error_message();
    EXPECT_TRUE(back->jwt_hs256);
    EXPECT_FALSE(back->jwt_rs256);
    EXPECT_TRUE(back->options.jwt.hs256_secret.empty());
    EXPECT_EQ(back->created_ms, 1234);
    auto list = parse_network_list(network_list_json({n, n}));
    ASSERT_TRUE(list.ok()) << list.error_message();
    EXPECT_EQ(list->size(), 2u);

    // The store form keeps the secret.
    auto opts = parse_options_json(options_json(n.options));
    ASSERT_TRUE(opts.ok()) << opts.error_message();
    EXPECT_EQ(opts->jwt.hs256_secret, n.options.jwt.hs256_secret);
    expect_error(parse_options_json(R"({"jwt":{"hs256_secret":"short"}})"), "options.jwt.hs256_secret: shorter than 32 bytes");
    expect_error(parse_options_json(R"({"jwt":{"rs256_public_key_pem":"nope"}})"), "options.jwt.rs256_public_key_pem: not a PEM");
    expect_error(parse_options_json(R"({"heartbeat_interval_s":60,"offline_after_s":30})"),
                 "options.offline_after_s: must be longer than heartbeat_interval_s");
}

TEST(coord_protocol_test, make_peer_view_fills_addresses) {
    peer_record rec;
    rec.network_id = "home";
    rec.public_key.fill(0x01);
    rec.peer_id = "peer-0123456789ab";
    rec.ipv4 = 0x0a640002; // 10.100.0.2
    rec.endpoints = {"198.51.100.1:51820", "203.0.113.1:51820"};
    rec.hostname = "h";
    rec.online = true;
    rec.last_heartbeat_ms = 1704110400123; // 2024-01-01T12:00:00.123Z
    const std::string ula = network_ula_prefix("home").to_string();
    const peer_view v = make_peer_view(rec, ula);
    EXPECT_EQ(v.virtual_ip, "10.100.0.2");
    EXPECT_EQ(v.ipv6, "fdf3:f51e:25a8:545d:3234:1f4b:6f9a:d8ae");
    EXPECT_EQ(v.allowed_ips, (std::vector<std::string>{"10.100.0.2/32", "fdf3:f51e:25a8:545d:3234:1f4b:6f9a:d8ae/128"}));
    EXPECT_EQ(v.endpoint, "198.51.100.1:51820");
    EXPECT_EQ(v.last_heartbeat, "2024-01-01T12:00:00Z");
    EXPECT_EQ(v.public_key, key_b64(1));
    // No prefix given: derived from the network id, same answer.
    EXPECT_EQ(make_peer_view(rec, "").ipv6, v.ipv6);
    rec.last_heartbeat_ms = 0;
    EXPECT_EQ(make_peer_view(rec, ula).last_heartbeat, "");
    // The view parses as a peer (what the server sends, the client accepts).
    ASSERT_TRUE(parse_peer_list(peer_list_json({v})).ok());
}

TEST(coord_protocol_test, event_kind_names_and_errors) {
    EXPECT_STREQ(event_kind_name(event_kind::joined), "joined");
    EXPECT_STREQ(event_kind_name(event_kind::left), "left");
    EXPECT_STREQ(event_kind_name(event_kind::changed), "changed");
    EXPECT_STREQ(event_kind_name(event_kind::online), "online");
    EXPECT_STREQ(event_kind_name(event_kind::offline), "offline");
    EXPECT_EQ(error_json("bad_request", "cidr: \"x\""), R"({"error":{"code":"bad_request","message":"cidr: \"x\""}})");
    // Invalid UTF-8 from a stored field does not make serialisation throw.
    EXPECT_NO_THROW((void)error_json("x", "\xff\xfe"));
}

} // namespace
} // namespace meshfwd::coord
