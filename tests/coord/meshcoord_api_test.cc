// meshcoord's API against a real meshcoord process (SQLite, and PostgreSQL where the backend
// matters): admission (invites, JWT), request signatures and replays, input validation, slow
// clients, events, heartbeats, the STUN responder, replicas and crash durability.
#include <arpa/inet.h>
#include <jwt.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "coord/api_support.h"
#include "coord/node_address.h"
#include "coord/request_auth.h"
#include "crypto/x25519.h"
#include "lib/stun.h"
#include "tests/coord/meshcoord_process.h"
#include "tests/unit/pg_fixture.h"

namespace meshfwd::test {
namespace {

using json = nlohmann::json;

json parse(const http_reply& reply) {
    auto body = json::parse(reply.body, nullptr, false);
    return body.is_discarded() ? json::object() : body;
}

std::string error_message(const http_reply& reply) {
    auto body = parse(reply);
    if (body.contains("error") && body["error"].is_object()) return body["error"].value("message", "");
    return reply.body;
}

std::unique_ptr<meshcoord_process> start_or_fail(const std::string& db = "", std::vector<std::string> args = {}) {
    auto process = meshcoord_process::start(db, args);
    if (!process) {
        ADD_FAILURE() << process.error_message();
        return nullptr;
    }
    return std::move(*process);
}

void create_network(const meshcoord_process& server, const std::string& id, json options = json::object(),
                    const std::string& cidr = "10.100.0.0/16") {
    json body{{"id", id}, {"name", id}, {"cidr", cidr}};
    if (!options.empty()) body["options"] = options;
    auto reply = server.admin("POST", "/api/v1/mesh/networks", body.dump());
    ASSERT_EQ(reply.status, 201u) << reply.body;
}

std::string invite(const meshcoord_process& server, const std::string& network, const std::string& query = "") {
    auto reply = server.admin("POST", "/api/v1/mesh/networks/" + network + "/invites" + query);
    EXPECT_EQ(reply.status, 201u) << reply.body;
    return parse(reply).value("code", "");
}

http_reply register_with(test_node& node, const meshcoord_process& server, const std::string& network,
                         json extra = json::object()) {
    json body{{"public_key", node.public_key_base64()}, {"hostname", "host"}, {"os", "linux"},
              {"endpoints", json::array({"192.0.2.1:51820"})}};
    for (auto it = extra.begin(); it != extra.end(); ++it) body[it.key()] = it.value();
    return node.send(server, "POST", "/api/v1/mesh/networks/" + network + "/peers", body.dump());
}

std::string make_token(const std::string& secret, const json& claims, jwt_alg_t alg = JWT_ALG_HS256) {
    jwt_t* token = nullptr;
    EXPECT_EQ(jwt_new(&token), 0);
    EXPECT_EQ(jwt_add_grants_json(token, claims.dump().c_str()), 0);
    EXPECT_EQ(jwt_set_alg(token, alg, reinterpret_cast<const unsigned char*>(secret.data()), static_cast<int>(secret.size())), 0);
    char* text = jwt_encode_str(token);
    std::string out = text ? text : "";
    std::free(text);
    jwt_free(token);
    return out;
}

json peers_seen_by(test_node& node, const meshcoord_process& server, const std::string& network) {
    auto reply = node.send(server, "GET", "/api/v1/mesh/networks/" + network + "/peers");
    EXPECT_EQ(reply.status, 200u) << reply.body;
    return parse(reply).value("peers", json::array());
}

TEST(MeshcoordApi, AdminCallsNeedTheToken) {
    auto server = start_or_fail();
    ASSERT_TRUE(server);
    auto anonymous = server->request("GET", "/api/v1/mesh/networks");
    EXPECT_EQ(anonymous.status, 401u);
    EXPECT_NE(error_message(anonymous).find("Authorization"), std::string::npos) << anonymous.body;
    auto wrong = server->request("GET", "/api/v1/mesh/networks", "", {{"Authorization", "Bearer not-the-token-at-all"}});
    EXPECT_EQ(wrong.status, 401u);
    EXPECT_EQ(server->admin("GET", "/api/v1/mesh/networks").status, 200u);
}

TEST(MeshcoordApi, BadInputGetsAClearError) {
    auto server = start_or_fail();
    ASSERT_TRUE(server);
    struct bad {
        std::string body;
        std::string mentions;
    };
    const std::vector<bad> cases{
        {"{not json", ""},
        {R"({"name":"x","cidr":"10.0.0.0/16","colour":"red"})", "colour"},
        {R"({"name":7,"cidr":"10.0.0.0/16"})", "name"},
        {R"({"name":"x","cidr":"10.0.0.0/2"})", "cidr"},
        {R"({"name":"x","cidr":"300.0.0.0/16"})", "cidr"},
        {R"({"name":"x","cidr":"fd00::/64"})", "cidr"},
        {R"({"name":"x","cidr":"10.0.0.0/16","id":"Bad Id!"})", "id"},
        {R"([1,2,3])", ""},
    };
    for (const auto& c : cases) {
        auto reply = server->admin("POST", "/api/v1/mesh/networks", c.body);
        EXPECT_EQ(reply.status, 400u) << c.body << " -> " << reply.body;
        EXPECT_TRUE(parse(reply).contains("error")) << reply.body;
        if (!c.mentions.empty()) {
            EXPECT_NE(error_message(reply).find(c.mentions), std::string::npos) << reply.body;
        }
    }
    auto huge = server->admin("POST", "/api/v1/mesh/networks", std::string(100 * 1024, ' '));
    EXPECT_EQ(huge.status, 413u) << huge.body;
    EXPECT_EQ(server->admin("GET", "/api/v1/mesh/nowhere").status, 404u);
    EXPECT_EQ(server->admin("PUT", "/api/v1/mesh/networks").status, 405u);
    // The server is still fine.
    create_network(*server, "after-bad-input");
}

TEST(MeshcoordApi, SlowClientsAreClosedAndOthersServed) {
    auto server = start_or_fail("", {"--request-timeout", "1"});
    ASSERT_TRUE(server);
    const int loris = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(server->port());
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(loris, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    const char partial[] = "GET /api/v1/mesh/networks HTTP/1.1\r\nHost: x\r\n";
    ASSERT_GT(::write(loris, partial, sizeof partial - 1), 0);
    // Another client is served while the slow one holds its connection.
    EXPECT_EQ(server->admin("GET", "/api/v1/mesh/networks").status, 200u);
    timeval wait{5, 0};
    ::setsockopt(loris, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    char buffer[256];
    const auto start = std::chrono::steady_clock::now();
    const ssize_t n = ::read(loris, buffer, sizeof buffer); // 0: closed by the server
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(n, 0) << "the server did not close a client that never finished its request";
    EXPECT_LT(waited, std::chrono::seconds(4));
    ::close(loris);
}

TEST(MeshcoordApi, InvitesAdmitOnceAndSayWhyNot) {
    auto server = start_or_fail();
    ASSERT_TRUE(server);
    create_network(*server, "net-a");
    create_network(*server, "net-b");
    const std::string code = invite(*server, "net-a");
    ASSERT_FALSE(code.empty());

    test_node a;
    auto first = register_with(a, *server, "net-a", {{"invite", code}});
    ASSERT_EQ(first.status, 201u) << first.body;
    const json reg = parse(first);
    EXPECT_TRUE(reg.value("assigned_ip", "").starts_with("10.100.")) << first.body;
    EXPECT_EQ(reg.value("ipv6", ""), coord::node_ipv6("net-a", a.key()).to_string());
    EXPECT_EQ(reg.value("server_public_key", ""), crypto::key_to_base64(server->server_key()));

    test_node b;
    auto reused = register_with(b, *server, "net-a", {{"invite", code}});
    EXPECT_EQ(reused.status, 403u);
    EXPECT_NE(error_message(reused).find("already used"), std::string::npos) << reused.body;

    std::string forged = invite(*server, "net-a");
    forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
    auto forged_reply = register_with(b, *server, "net-a", {{"invite", forged}});
    EXPECT_EQ(forged_reply.status, 403u);
    EXPECT_NE(error_message(forged_reply).find("forged"), std::string::npos) << forged_reply.body;

    auto other = register_with(b, *server, "net-a", {{"invite", invite(*server, "net-b")}});
    EXPECT_EQ(other.status, 403u);
    EXPECT_NE(error_message(other).find("net-b"), std::string::npos) << other.body;

    const std::string short_lived = invite(*server, "net-a", "?seconds=1");
    std::this_thread::sleep_for(std::chrono::milliseconds(2100)); // the code's lifetime passes
    auto expired = register_with(b, *server, "net-a", {{"invite", short_lived}});
    EXPECT_EQ(expired.status, 403u);
    EXPECT_NE(error_message(expired).find("expired"), std::string::npos) << expired.body;

    auto none = register_with(b, *server, "net-a");
    EXPECT_EQ(none.status, 403u);
    EXPECT_NE(error_message(none).find("invite"), std::string::npos) << none.body;

    // A known key registers again without an invite and keeps its address.
    auto again = register_with(a, *server, "net-a");
    ASSERT_EQ(again.status, 200u) << again.body;
    EXPECT_EQ(parse(again).value("assigned_ip", ""), reg.value("assigned_ip", ""));
}

TEST(MeshcoordApi, SignaturesAndReplays) {
    auto server = start_or_fail();
    ASSERT_TRUE(server);
    create_network(*server, "sig", {{"require_admission", false}});
    test_node a, b;
    ASSERT_EQ(register_with(a, *server, "sig").status, 201u);
    ASSERT_EQ(register_with(b, *server, "sig").status, 201u);
    const std::string target = "/api/v1/mesh/networks/sig/heartbeat";
    const std::string body = R"({"endpoints":["192.0.2.9:51820"]})";

    auto unsigned_reply = server->request("POST", target, body);
    EXPECT_EQ(unsigned_reply.status, 401u);

    // b's signature presented as a's key.
    auto headers = b.sign(*server, "POST", target, body);
    headers[std::string(coord::header_node)] = a.public_key_base64();
    EXPECT_EQ(server->request("POST", target, body, headers).status, 401u);

    // A body changed after signing.
    auto signed_headers = a.sign(*server, "POST", target, body);
    EXPECT_EQ(server->request("POST", target, R"({"endpoints":["198.51.100.1:1"]})", signed_headers).status, 401u);

    // The same request twice: the second is a replay.
    auto once = a.sign(*server, "POST", target, body);
    EXPECT_EQ(server->request("POST", target, body, once).status, 200u);
    auto replay = server->request("POST", target, body, once);
    EXPECT_EQ(replay.status, 401u);
    EXPECT_NE(error_message(replay).find("replay"), std::string::npos) << replay.body;

    // Registering a key that is not the signer's.
    json other{{"public_key", b.public_key_base64()}};
    EXPECT_EQ(a.send(*server, "POST", "/api/v1/mesh/networks/sig/peers", other.dump()).status, 403u);
}

TEST(MeshcoordApi, TokensWhitelistMaxPeersAndApproval) {
    auto server = start_or_fail();
    ASSERT_TRUE(server);
    const std::string secret = "an-hs256-secret-for-the-test-0123456789";
    create_network(*server, "jwt", {{"jwt", {{"hs256_secret", secret}}}});
    const int64_t exp = coord::unix_ms() / 1000 + 3600;
    test_node a, b, c, d, pending;
    auto token_for = [&](test_node& n, json whitelist) {
        return make_token(secret, {{"exp", exp}, {"network", "jwt"}, {"sub", n.public_key_base64()},
                                   {"connection_type", "p2p-mesh"}, {"peer_whitelist", whitelist}});
    };
    ASSERT_EQ(register_with(a, *server, "jwt", {{"token", token_for(a, json::object())}}).status, 201u);
    ASSERT_EQ(register_with(b, *server, "jwt", {{"token", token_for(b, json::object())}}).status, 201u);
    // c sees only a; d sees at most one peer.
    ASSERT_EQ(register_with(c, *server, "jwt",
                            {{"token", token_for(c, {{"allowed_peers", json::array({a.public_key_base64()})}})}})
                  .status,
              201u);
    ASSERT_EQ(register_with(d, *server, "jwt", {{"token", token_for(d, {{"max_peers", 1}})}}).status, 201u);

    auto c_sees = peers_seen_by(c, *server, "jwt");
    ASSERT_EQ(c_sees.size(), 1u) << c_sees.dump();
    EXPECT_EQ(c_sees[0].value("public_key", ""), a.public_key_base64());
    for (const auto& peer : peers_seen_by(b, *server, "jwt"))
        EXPECT_NE(peer.value("public_key", ""), c.public_key_base64()) << "c's whitelist excludes b";
    EXPECT_EQ(peers_seen_by(d, *server, "jwt").size(), 1u);

    // Refusals.
    test_node e;
    auto bad_signature = register_with(e, *server, "jwt", {{"token", make_token("another-secret-entirely-0123456789", {{"exp", exp}})}});
    EXPECT_EQ(bad_signature.status, 403u);
    EXPECT_NE(error_message(bad_signature).find("signature"), std::string::npos) << bad_signature.body;
    auto expired = register_with(e, *server, "jwt", {{"token", make_token(secret, {{"exp", exp - 7200}})}});
    EXPECT_EQ(expired.status, 403u);
    EXPECT_NE(error_message(expired).find("expired"), std::string::npos) << expired.body;
    auto stolen = register_with(e, *server, "jwt", {{"token", token_for(a, json::object())}});
    EXPECT_EQ(stolen.status, 403u) << stolen.body;

    // auto_approve: false leaves the node pending until the admin approves it.
    auto wait = register_with(pending, *server, "jwt", {{"token", token_for(pending, {{"auto_approve", false}})}});
    ASSERT_EQ(wait.status, 202u) << wait.body;
    EXPECT_FALSE(parse(wait).value("approved", true));
    auto blocked = pending.send(*server, "GET", "/api/v1/mesh/networks/jwt/peers");
    EXPECT_EQ(blocked.status, 403u);
    for (const auto& peer : peers_seen_by(a, *server, "jwt"))
        EXPECT_NE(peer.value("public_key", ""), pending.public_key_base64()) << "a pending node is visible";
    const std::string peer_id = parse(wait).value("peer_id", "");
    ASSERT_EQ(server->admin("POST", "/api/v1/mesh/networks/jwt/peers/" + peer_id + "/approve").status, 200u);
    EXPECT_EQ(pending.send(*server, "GET", "/api/v1/mesh/networks/jwt/peers").status, 200u);
}

// network_config.subnet: the node's address comes from that part of the network; a subnet outside
// the network is refused, a full one is a 409 that names it.
TEST(MeshcoordApi, TokenSubnetPlacesTheNode) {
    auto server = start_or_fail();
    ASSERT_TRUE(server);
    const std::string secret = "an-hs256-secret-for-the-test-0123456789";
    create_network(*server, "sub", {{"jwt", {{"hs256_secret", secret}}}}, "10.60.0.0/16");
    const int64_t exp = coord::unix_ms() / 1000 + 3600;
    auto token = [&](test_node& n, const std::string& subnet) {
        return make_token(secret, {{"exp", exp}, {"network", "sub"}, {"sub", n.public_key_base64()},
                                   {"network_config", {{"subnet", subnet}}}});
    };
    test_node a, b, c, d;
    auto ra = register_with(a, *server, "sub", {{"token", token(a, "10.60.7.0/30")}});
    ASSERT_EQ(ra.status, 201u) << ra.body;
    EXPECT_EQ(parse(ra).value("assigned_ip", ""), "10.60.7.1");
    auto rb = register_with(b, *server, "sub", {{"token", token(b, "10.60.7.0/30")}});
    ASSERT_EQ(rb.status, 201u) << rb.body;
    EXPECT_EQ(parse(rb).value("assigned_ip", ""), "10.60.7.2");
    auto full = register_with(c, *server, "sub", {{"token", token(c, "10.60.7.0/30")}});
    EXPECT_EQ(full.status, 409u) << full.body;
    EXPECT_NE(error_message(full).find("subnet 10.60.7.0/30"), std::string::npos) << full.body;
    auto outside = register_with(d, *server, "sub", {{"token", token(d, "10.61.0.0/24")}});
    EXPECT_EQ(outside.status, 403u) << outside.body;
    EXPECT_NE(error_message(outside).find("not inside network 'sub'"), std::string::npos) << outside.body;
}

TEST(MeshcoordApi, FullNetworkIsAClearError) {
    auto server = start_or_fail();
    ASSERT_TRUE(server);
    create_network(*server, "tiny", {{"require_admission", false}}, "10.9.0.0/30");
    test_node a, b, c;
    EXPECT_EQ(register_with(a, *server, "tiny").status, 201u);
    EXPECT_EQ(register_with(b, *server, "tiny").status, 201u);
    auto full = register_with(c, *server, "tiny");
    EXPECT_EQ(full.status, 409u);
    EXPECT_NE(error_message(full).find("no free address"), std::string::npos) << full.body;
}

TEST(MeshcoordApi, StunBindingResponderAnswersWithTheSourceAddress) {
    auto server = start_or_fail();
    ASSERT_TRUE(server);
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
    socklen_t len = sizeof local;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
    std::array<uint8_t, stun::binding_request_size> request{};
    std::array<uint8_t, stun::transaction_id_size> id{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    ASSERT_EQ(stun::build_binding_request(request, id), request.size());
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(server->stun_port());
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // Garbage first: dropped, and the responder keeps answering.
    const char junk[] = "definitely not STUN";
    ::sendto(fd, junk, sizeof junk, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    ASSERT_EQ(::sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(request.size()));
    timeval wait{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    std::array<uint8_t, 512> reply{};
    const ssize_t n = ::recv(fd, reply.data(), reply.size(), 0);
    ::close(fd);
    ASSERT_GT(n, 0);
    stun::message message;
    ASSERT_EQ(stun::parse(std::span<const uint8_t>(reply.data(), static_cast<std::size_t>(n)), message), stun::parse_result::ok);
    EXPECT_EQ(message.type, stun::binding_success);
    EXPECT_EQ(message.transaction_id, id);
    auto mapped = stun::xor_mapped_address(message);
    ASSERT_TRUE(mapped);
    EXPECT_EQ(mapped->address().to_string(), "127.0.0.1");
    EXPECT_EQ(mapped->port(), ntohs(local.sin_port));
}

TEST(MeshcoordApi, SilentNodesGoOfflineAndComeBack) {
    char dir[] = "/tmp/meshcoord-offline-XXXXXX";
    ASSERT_TRUE(::mkdtemp(dir));
    const std::string config = std::string(dir) + "/meshcoord.yaml";
    {
        std::ofstream out(config);
        out << "offline_after: 2s\nsweep_interval: 1s\n";
    }
    auto server = start_or_fail("", {"-c", config});
    ASSERT_TRUE(server);
    create_network(*server, "quiet", {{"require_admission", false}});
    test_node a, b;
    ASSERT_EQ(register_with(a, *server, "quiet").status, 201u);
    ASSERT_EQ(register_with(b, *server, "quiet").status, 201u);
    auto stream = event_stream::open(*server, "quiet", &a, 0);
    ASSERT_TRUE(stream) << stream.error_message();
    ASSERT_TRUE((*stream)->next(3000));
    // a keeps heartbeating, b says nothing: b goes offline after 2 s (sweeps every second).
    bool offline = false;
    for (int i = 0; i < 10 && !offline; ++i) {
        EXPECT_EQ(a.send(*server, "POST", "/api/v1/mesh/networks/quiet/heartbeat", "{}").status, 200u);
        auto next = (*stream)->next(1000);
        if (!next) continue;
        const json m = json::parse(*next);
        offline = m.value("kind", "") == "offline" && m.value("public_key", "") == b.public_key_base64();
        if (m.value("public_key", "") == a.public_key_base64()) {
            ADD_FAILURE() << "a went offline while heartbeating";
        }
    }
    ASSERT_TRUE(offline) << "b was not reported offline within 10 s";
    for (const auto& peer : peers_seen_by(a, *server, "quiet")) {
        if (peer.value("public_key", "") == b.public_key_base64()) {
            EXPECT_FALSE(peer.value("online", true));
        }
    }
    // b heartbeats again: online.
    ASSERT_EQ(b.send(*server, "POST", "/api/v1/mesh/networks/quiet/heartbeat", "{}").status, 200u);
    auto back = (*stream)->next(2000);
    ASSERT_TRUE(back) << back.error_message();
    const json m = json::parse(*back);
    EXPECT_EQ(m.value("kind", ""), "online") << *back;
    EXPECT_EQ(m.value("public_key", ""), b.public_key_base64());
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

// Backend-dependent behaviour, on SQLite and on a real PostgreSQL.
class MeshcoordBackends : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        if (GetParam() == "postgres") {
            auto pg = pg_temp_server::start();
            ASSERT_TRUE(pg) << pg.error_message();
            _pg = std::move(*pg);
            auto url = _pg->create_database("meshcoord");
            ASSERT_TRUE(url) << url.error_message();
            _db = *url;
        }
    }
    std::unique_ptr<pg_temp_server> _pg;
    std::string _db; // "" : SQLite in the server's directory
};

TEST_P(MeshcoordBackends, EventsReachSubscribersAsDeltas) {
    auto server = start_or_fail(_db);
    ASSERT_TRUE(server);
    create_network(*server, "ev", {{"require_admission", false}});
    test_node a, b, c;
    ASSERT_EQ(register_with(a, *server, "ev").status, 201u);
    auto stream = event_stream::open(*server, "ev", &a, 0);
    ASSERT_TRUE(stream) << stream.error_message();
    auto snapshot = (*stream)->next(3000);
    ASSERT_TRUE(snapshot) << snapshot.error_message();
    const json first = json::parse(*snapshot);
    EXPECT_EQ(first.value("type", ""), "snapshot") << *snapshot;
    const int64_t version = first.value("version", int64_t{0});

    ASSERT_EQ(register_with(b, *server, "ev").status, 201u);
    auto joined = (*stream)->next(1000); // within a second
    ASSERT_TRUE(joined) << joined.error_message();
    const json event = json::parse(*joined);
    EXPECT_EQ(event.value("kind", ""), "joined") << *joined;
    EXPECT_EQ(event.value("public_key", ""), b.public_key_base64());
    EXPECT_GT(event.value("version", int64_t{0}), version);

    // Reconnecting from the version seen gets only what changed since: c's join.
    stream->reset();
    const int64_t seen = event.value("version", int64_t{0});
    ASSERT_EQ(register_with(c, *server, "ev").status, 201u);
    auto again = event_stream::open(*server, "ev", &a, seen);
    ASSERT_TRUE(again) << again.error_message();
    auto delta = (*again)->next(3000);
    ASSERT_TRUE(delta) << delta.error_message();
    const json d = json::parse(*delta);
    EXPECT_EQ(d.value("type", ""), "event") << *delta;
    EXPECT_EQ(d.value("public_key", ""), c.public_key_base64()) << *delta;

    // Removing b reaches the subscriber as `left`.
    ASSERT_EQ(server->admin("DELETE", "/api/v1/mesh/networks/ev/peers/" + parse(register_with(b, *server, "ev")).value("peer_id", "")).status, 200u);
    bool left = false;
    for (int i = 0; i < 5 && !left; ++i) {
        auto next = (*again)->next(1000);
        if (!next) break;
        const json m = json::parse(*next);
        left = m.value("kind", "") == "left" && m.value("public_key", "") == b.public_key_base64();
    }
    EXPECT_TRUE(left);
}

// Heartbeats commit through the batcher's own store connection: the change they make must still
// reach subscribers (SQLite: that store's own listener; PostgreSQL: its NOTIFY, heard by the main
// store's LISTEN thread), and a replayed heartbeat is still refused once its first copy is stored.
TEST_P(MeshcoordBackends, HeartbeatChangesReachSubscribers) {
    auto server = start_or_fail(_db);
    ASSERT_TRUE(server);
    create_network(*server, "hb", {{"require_admission", false}});
    test_node a, b;
    ASSERT_EQ(register_with(a, *server, "hb").status, 201u);
    ASSERT_EQ(register_with(b, *server, "hb").status, 201u);
    auto stream = event_stream::open(*server, "hb", &a, 0);
    ASSERT_TRUE(stream) << stream.error_message();
    ASSERT_TRUE((*stream)->next(3000)); // the snapshot
    const std::string target = "/api/v1/mesh/networks/hb/heartbeat";
    const std::string body = R"({"endpoints":["198.51.100.7:51820"]})";
    const auto headers = b.sign(*server, "POST", target, body);
    ASSERT_EQ(server->request("POST", target, body, headers).status, 200u);
    bool changed = false;
    for (int i = 0; i < 5 && !changed; ++i) {
        auto next = (*stream)->next(1000);
        if (!next) continue;
        const json m = json::parse(*next);
        changed = m.value("kind", "") == "changed" && m.value("public_key", "") == b.public_key_base64() &&
                  m.contains("peer") && m["peer"].value("endpoints", json::array()).dump().find("198.51.100.7:51820") !=
                                            std::string::npos;
    }
    EXPECT_TRUE(changed) << "b's new endpoint did not reach a within 5 s";
    EXPECT_EQ(server->request("POST", target, body, headers).status, 401u);
}

TEST_P(MeshcoordBackends, ConcurrentRegistrationsGetDistinctAddresses) {
    auto server = start_or_fail(_db);
    ASSERT_TRUE(server);
    create_network(*server, "many", {{"require_admission", false}});
    constexpr int threads = 8, per_thread = 125; // 1,000 registrations at once
    std::vector<std::vector<std::string>> addresses(threads);
    std::vector<std::thread> pool;
    std::atomic<int> failures{0};
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                test_node node;
                auto reply = register_with(node, *server, "many");
                if (reply.status != 201u) {
                    ++failures;
                    continue;
                }
                addresses[t].push_back(parse(reply).value("assigned_ip", ""));
            }
        });
    }
    for (auto& th : pool) th.join();
    EXPECT_EQ(failures.load(), 0);
    std::set<std::string> distinct;
    for (const auto& list : addresses) distinct.insert(list.begin(), list.end());
    EXPECT_EQ(distinct.size(), static_cast<std::size_t>(threads * per_thread));
}

TEST_P(MeshcoordBackends, AcknowledgedRegistrationsSurviveSigkill) {
    auto server = start_or_fail(_db);
    ASSERT_TRUE(server);
    create_network(*server, "crash", {{"require_admission", false}});
    std::vector<std::pair<std::string, std::string>> acknowledged; // key, address
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (int i = 0; i < 2000 && !stop; ++i) {
            test_node node;
            auto reply = register_with(node, *server, "crash");
            if (reply.status == 201u) acknowledged.emplace_back(node.public_key_base64(), parse(reply).value("assigned_ip", ""));
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(700)); // registrations under way
    server->kill_hard();
    stop = true;
    writer.join();
    ASSERT_GT(acknowledged.size(), 0u);
    // Restart on the same database (SQLite: the same file).
    const std::string db = _db.empty() ? "sqlite:" + server->dir() + "/meshcoord.db" : _db;
    auto restarted = start_or_fail(db);
    ASSERT_TRUE(restarted);
    auto listed = restarted->admin("GET", "/api/v1/mesh/networks/crash/peers");
    ASSERT_EQ(listed.status, 200u);
    std::map<std::string, std::string> stored;
    for (const auto& peer : parse(listed).value("peers", json::array()))
        stored[peer.value("public_key", "")] = peer.value("virtual_ip", "");
    for (const auto& [key, address] : acknowledged) {
        ASSERT_TRUE(stored.count(key)) << "acknowledged registration lost: " << key;
        EXPECT_EQ(stored[key], address);
    }
}

INSTANTIATE_TEST_SUITE_P(Store, MeshcoordBackends, ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) { return param_info.param; });

TEST(MeshcoordReplicas, AChangeOnOneReplicaReachesSubscribersOfTheOther) {
    auto pg = pg_temp_server::start();
    ASSERT_TRUE(pg) << pg.error_message();
    auto url = (*pg)->create_database("replicas");
    ASSERT_TRUE(url) << url.error_message();
    auto one = start_or_fail(*url);
    auto two = start_or_fail(*url);
    ASSERT_TRUE(one && two);
    EXPECT_EQ(one->server_key(), two->server_key()) << "replicas must share the server identity";
    create_network(*one, "rep", {{"require_admission", false}});
    test_node a, b;
    ASSERT_EQ(register_with(a, *one, "rep").status, 201u);
    auto stream = event_stream::open(*two, "rep", &a, 0);
    ASSERT_TRUE(stream) << stream.error_message();
    ASSERT_TRUE((*stream)->next(3000));
    const auto start = std::chrono::steady_clock::now();
    ASSERT_EQ(register_with(b, *one, "rep").status, 201u);
    auto event = (*stream)->next(1000);
    ASSERT_TRUE(event) << "replica two did not deliver replica one's change within 1 s: " << event.error_message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
    EXPECT_EQ(json::parse(*event).value("public_key", ""), b.public_key_base64());
}

} // namespace
} // namespace meshfwd::test
