// The meshcoord client's pure parts: the event stream applied to the peer set, the peer views
// turned into peer configs, static and coordinated peers combined, and the cache file's round
// trip (atomic, mode 0600). Test thread only.
#include "control/coord_cache.h"
#include "control/coord_peers.h"
#include "crypto/x25519.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace meshfwd::test {
namespace {

using namespace meshfwd::control;

std::string new_key() {
    return crypto::key_to_base64(crypto::derive_public_key(crypto::generate_private_key()));
}

coord::peer_view view(const std::string& key, const std::string& ip, bool online = true) {
    coord::peer_view v;
    v.id = "peer-" + ip;  // a valid id: [a-z0-9-]
    std::replace(v.id.begin(), v.id.end(), '.', '-');
    v.public_key = key;
    v.virtual_ip = ip;
    v.ipv6 = "fd12:3456:789a::1";
    v.endpoints = {"192.0.2.7:51820", "[2001:db8::7]:51820"};
    v.endpoint = "192.0.2.7:51820";
    v.hostname = "node-" + ip;
    v.os = "linux";
    v.allowed_ips = {ip + "/32", "fd12:3456:789a::1/128"};
    v.online = online;
    return v;
}

coord::event_message snapshot(int64_t version, std::vector<coord::peer_view> peers) {
    coord::event_message m;
    m.type = "snapshot";
    m.version = version;
    m.peers = std::move(peers);
    return m;
}

coord::event_message event(int64_t version, const std::string& kind, const std::string& key,
                           std::optional<coord::peer_view> peer) {
    coord::event_message m;
    m.type = "event";
    m.version = version;
    m.kind = kind;
    m.public_key = key;
    m.peer = std::move(peer);
    return m;
}

class coord_peers_test : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(crypto::crypto_init()); }
};

TEST_F(coord_peers_test, snapshot_then_deltas) {
    const std::string a = new_key(), b = new_key(), c = new_key();
    coord_peer_set set;
    ASSERT_TRUE(apply_event(set, snapshot(10, {view(a, "10.100.0.2"), view(b, "10.100.0.3")})).ok());
    EXPECT_EQ(set.version, 10);
    EXPECT_EQ(set.peers.size(), 2u);

    ASSERT_TRUE(apply_event(set, event(11, "joined", c, view(c, "10.100.0.4"))).ok());
    ASSERT_TRUE(apply_event(set, event(12, "left", a, std::nullopt)).ok());
    auto moved = view(b, "10.100.0.3");
    moved.endpoints = {"198.51.100.3:4000"};
    ASSERT_TRUE(apply_event(set, event(13, "changed", b, moved)).ok());
    EXPECT_EQ(set.version, 13);
    ASSERT_EQ(set.peers.size(), 2u);
    EXPECT_FALSE(set.peers.contains(a));
    EXPECT_EQ(set.peers.at(b).endpoints, std::vector<std::string>{"198.51.100.3:4000"});

    // An event the set already holds (a replica's resend) changes nothing.
    ASSERT_TRUE(apply_event(set, event(12, "left", b, std::nullopt)).ok());
    EXPECT_TRUE(set.peers.contains(b));
    EXPECT_EQ(set.version, 13);

    // A snapshot replaces everything, whatever came before.
    ASSERT_TRUE(apply_event(set, snapshot(20, {view(a, "10.100.0.2")})).ok());
    EXPECT_EQ(set.version, 20);
    ASSERT_EQ(set.peers.size(), 1u);
    EXPECT_TRUE(set.peers.contains(a));

    // Nonsense is refused with its name, and leaves the set as it was.
    auto bad = apply_event(set, event(21, "teleported", a, view(a, "10.100.0.2")));
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error_message().find("'teleported'"), std::string::npos);
    EXPECT_FALSE(apply_event(set, event(21, "joined", b, std::nullopt)).ok());
    coord::event_message odd;
    odd.type = "hello";
    EXPECT_FALSE(apply_event(set, odd).ok());
    EXPECT_EQ(set.version, 20);
}

TEST_F(coord_peers_test, views_become_peer_configs) {
    auto self_secret = crypto::generate_private_key();
    const auto self = crypto::derive_public_key(self_secret);
    const std::string a = new_key(), off = new_key(), pending = new_key(), broken = new_key();
    coord_peer_set set;
    auto pv = view(pending, "10.100.0.5");
    pv.approved = false;
    auto bv = view(broken, "10.100.0.6");
    bv.allowed_ips = {"10.100.0.300/32"};
    auto hostless = view(new_key(), "10.100.0.7");
    hostless.hostname = "bad name!";
    hostless.endpoints.clear();   // seed 003's single endpoint is used then
    hostless.endpoint = "192.0.2.9:1234";
    auto av = view(a, "10.100.0.2");
    // meshcoord's parser refuses such a list, but the conversion does not rely on it.
    av.endpoints.insert(av.endpoints.begin(), "not-an-endpoint");
    ASSERT_TRUE(apply_event(set, snapshot(1, {view(crypto::key_to_base64(self), "10.100.0.1"), av,
                                              view(off, "10.100.0.4", false), pv, bv, hostless}))
                    .ok());
    const auto r = to_peer_configs(set, self);
    ASSERT_EQ(r.peers.size(), 2u);
    const auto& pa = *std::find_if(r.peers.begin(), r.peers.end(),
                                   [&](const peer_config& p) { return crypto::key_to_base64(p.public_key) == a; });
    EXPECT_EQ(pa.name, "node-10.100.0.2");
    ASSERT_TRUE(pa.endpoint_address.has_value());
    EXPECT_EQ(pa.endpoint_address->to_string(), "192.0.2.7:51820");  // the first usable endpoint
    ASSERT_EQ(pa.allowed_ips.size(), 2u);
    EXPECT_EQ(pa.allowed_ips[0].to_string(), "10.100.0.2/32");
    EXPECT_EQ(pa.allowed_ips[1].to_string(), "fd12:3456:789a::1/128");
    EXPECT_FALSE(pa.meshfwd);
    EXPECT_TRUE(pa.coordinated);
    const auto& ph = *std::find_if(r.peers.begin(), r.peers.end(),
                                   [&](const peer_config& p) { return crypto::key_to_base64(p.public_key) != a; });
    EXPECT_EQ(ph.name, "");
    EXPECT_EQ(ph.endpoint_address->to_string(), "192.0.2.9:1234");
    // Ourselves silently; the offline, pending and broken peers each with a reason.
    ASSERT_EQ(r.skipped.size(), 3u);
    const auto said = [&](const std::string& key, const std::string& what) {
        return std::any_of(r.skipped.begin(), r.skipped.end(), [&](const std::string& s) {
            return s.find(key) != std::string::npos && s.find(what) != std::string::npos;
        });
    };
    EXPECT_TRUE(said(off, "offline"));
    EXPECT_TRUE(said(pending, "pending approval"));
    EXPECT_TRUE(said(broken, "10.100.0.300/32"));

    // Back online: back in the list.
    ASSERT_TRUE(apply_event(set, event(2, "online", off, view(off, "10.100.0.4", true))).ok());
    EXPECT_EQ(to_peer_configs(set, self).peers.size(), 3u);
}

TEST_F(coord_peers_test, static_peers_win_on_key_and_prefix_clashes) {
    std::vector<peer_config> statics(1);
    statics[0].public_key = *crypto::key_from_base64(new_key());
    statics[0].allowed_ips = {*ip_prefix::parse("10.100.0.0/24")};
    statics[0].meshfwd = true;
    std::vector<peer_config> coordinated(3);
    coordinated[0].public_key = statics[0].public_key;  // the same key
    coordinated[0].allowed_ips = {*ip_prefix::parse("10.100.9.9/32")};
    coordinated[1].public_key = *crypto::key_from_base64(new_key());
    coordinated[1].allowed_ips = {*ip_prefix::parse("10.100.0.2/32"), *ip_prefix::parse("10.100.1.2/32")};
    coordinated[2].public_key = *crypto::key_from_base64(new_key());
    coordinated[2].allowed_ips = {*ip_prefix::parse("fd00::2/128")};
    std::vector<std::string> notes;
    const auto all = merge_peers(statics, coordinated, notes);
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].public_key, statics[0].public_key);
    EXPECT_EQ(all[0].allowed_ips, statics[0].allowed_ips);  // not the coordinated 10.100.9.9/32
    EXPECT_TRUE(all[0].meshfwd);
    EXPECT_FALSE(all[0].coordinated);  // the static entry, though meshcoord knows the key too
    EXPECT_TRUE(all[1].coordinated);
    EXPECT_TRUE(all[2].coordinated);
    EXPECT_EQ(all[1].allowed_ips, std::vector<ip_prefix>{*ip_prefix::parse("10.100.1.2/32")});
    EXPECT_EQ(all[2].allowed_ips, coordinated[2].allowed_ips);
    ASSERT_EQ(notes.size(), 2u);
    EXPECT_NE(notes[0].find("the static entry is used"), std::string::npos);
    EXPECT_NE(notes[1].find("10.100.0.2/32 overlaps static peer"), std::string::npos);
}

class coord_cache_test : public coord_peers_test {
protected:
    void SetUp() override {
        coord_peers_test::SetUp();
        std::string tmpl = (std::filesystem::temp_directory_path() / "meshfwd-coord-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    std::filesystem::path dir;
};

TEST_F(coord_cache_test, round_trip_atomic_and_private) {
    coord_cache c;
    c.network_id = "office";
    c.public_key = new_key();
    c.server = "http://192.0.2.1:7080";
    coord::register_response reg;
    reg.peer_id = "peer-0123456789ab";
    reg.assigned_ip = "10.100.0.7";
    reg.ipv6 = "fd12:3456:789a:1:2:3:4:5";
    reg.network_cidr = "10.100.0.0/16";
    reg.ula_prefix = "fd12:3456:789a::/48";
    reg.server_public_key = new_key();
    reg.heartbeat_interval_s = 15;
    reg.version = 42;
    reg.mtu = 1380;
    c.registration = reg;
    const std::string a = new_key();
    ASSERT_TRUE(apply_event(c.peers, snapshot(42, {view(a, "10.100.0.2", false)})).ok());

    const auto file = dir / "node.peers.json";
    // A stale temporary with loose permissions from a crash does not leak them.
    {
        std::ofstream(file.string() + ".tmp") << "junk";
        ::chmod((file.string() + ".tmp").c_str(), 0644);
    }
    ASSERT_TRUE(save_coord_cache(file, c).ok());
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_FALSE(std::filesystem::exists(file.string() + ".tmp"));

    auto back = load_coord_cache(file);
    ASSERT_TRUE(back.ok()) << back.error_message();
    ASSERT_TRUE(back->has_value());
    const coord_cache& b = **back;
    EXPECT_EQ(b.network_id, "office");
    EXPECT_EQ(b.public_key, c.public_key);
    EXPECT_EQ(b.server, c.server);
    ASSERT_TRUE(b.registration.has_value());
    EXPECT_EQ(b.registration->assigned_ip, "10.100.0.7");
    EXPECT_EQ(b.registration->ipv6, reg.ipv6);
    EXPECT_EQ(b.registration->network_cidr, "10.100.0.0/16");
    EXPECT_EQ(b.registration->heartbeat_interval_s, 15u);
    EXPECT_EQ(b.registration->mtu, std::optional<uint32_t>(1380));
    EXPECT_EQ(b.peers.version, 42);
    ASSERT_EQ(b.peers.peers.size(), 1u);
    const auto& p = b.peers.peers.at(a);
    EXPECT_FALSE(p.online);
    EXPECT_EQ(p.endpoints, view(a, "10.100.0.2").endpoints);
    EXPECT_EQ(p.allowed_ips, view(a, "10.100.0.2").allowed_ips);
    EXPECT_EQ(coord_cache_json(b), coord_cache_json(c));  // nothing lost or added

    // Replaced whole: the second save is what is read.
    c.registration.reset();
    c.peers.peers.clear();
    ASSERT_TRUE(save_coord_cache(file, c).ok());
    back = load_coord_cache(file);
    ASSERT_TRUE(back.ok() && back->has_value());
    EXPECT_FALSE((*back)->registration.has_value());
    EXPECT_TRUE((*back)->peers.peers.empty());
}

TEST_F(coord_cache_test, missing_is_empty_and_damage_is_an_error) {
    auto none = load_coord_cache(dir / "absent.json");
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
    const auto file = dir / "bad.json";
    std::ofstream(file) << "{\"format\":1,\"network_id\":\"x\"";
    auto bad = load_coord_cache(file);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error_message().find(file.string() + ": not a JSON object"), std::string::npos) << bad.error_message();
    std::ofstream(file, std::ios::trunc) << "{\"format\":1,\"network_id\":\"x\",\"public_key\":\"k\",\"server\":\"\"}";
    bad = load_coord_cache(file);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error_message().find("version"), std::string::npos) << bad.error_message();
    std::ofstream(file, std::ios::trunc) << "{\"format\":2}";
    bad = load_coord_cache(file);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error_message().find("format 2 is not 1"), std::string::npos) << bad.error_message();
    // A directory where the file should be: refused, not read.
    std::filesystem::create_directory(dir / "d.json");
    EXPECT_FALSE(load_coord_cache(dir / "d.json").ok());
    EXPECT_FALSE(save_coord_cache(dir / "d.json", coord_cache{}).ok());
}

} // namespace
} // namespace meshfwd::test
