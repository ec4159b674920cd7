// Unit tests for coord/request_auth: a request signed on the node side verifies on the server
// side; another node's key, any changed part (method, target, body, counter) and malformed or
// missing headers are refused, each class with its own message; the server's key cache refuses
// the same. Test thread only.
#include "coord/request_auth.h"

#include <gtest/gtest.h>

#include "coord/protocol.h"
#include "crypto/x25519.h"

namespace meshfwd::coord {
namespace {

struct party {
    secret32 secret = crypto::generate_private_key();
    node_key pub = crypto::derive_public_key(secret);
};

class request_auth_test : public ::testing::Test {
protected:
    static void SetUpTestSuite() { ASSERT_TRUE(crypto::crypto_init()); }
    party server, node, other;
    const std::string body = R"({"peer_id":"peer-0123456789ab"})";

    signed_headers sign(const party& who, uint64_t counter = 1700000000000000) {
        auto key = request_key(who.secret, server.pub);
        EXPECT_TRUE(key.ok());
        return sign_request(*key, who.pub, "POST", "/api/v1/mesh/networks/home/heartbeat", counter, body);
    }
    result<verified_request> verify(const signed_headers& h, std::string_view method = "POST",
                                    std::string_view target = "/api/v1/mesh/networks/home/heartbeat",
                                    std::optional<std::string_view> b = std::nullopt) {
        return verify_request(server.secret, h.node, h.counter, h.mac, method, target, b ? *b : body);
    }
};

TEST_F(request_auth_test, both_sides_derive_one_key) {
    auto a = request_key(node.secret, server.pub);
    auto b = request_key(server.secret, node.pub);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(*a == *b);
    // Distinct from the raw X25519 output (the label separates it from other uses).
    secret32 raw;
    ASSERT_TRUE(crypto::x25519(raw, node.secret, server.pub));
    EXPECT_FALSE(*a == raw);
}

TEST_F(request_auth_test, signed_request_verifies) {
    const auto h = sign(node);
    auto v = verify(h);
    ASSERT_TRUE(v.ok()) << v.error_message();
    EXPECT_EQ(v->node, node.pub);
    EXPECT_EQ(v->counter, 1700000000000000u);
    EXPECT_EQ(h.node, key_text(node.pub));
}

TEST_F(request_auth_test, other_node_key_refused) {
    // Signed by `other`, claiming to be `node`.
    auto h = sign(other);
    h.node = key_text(node.pub);
    auto v = verify(h);
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.error_message().find("signature does not match"), std::string::npos) << v.error_message();
}

TEST_F(request_auth_test, any_changed_part_refused) {
    const auto h = sign(node);
    EXPECT_FALSE(verify(h, "PUT").ok());
    EXPECT_FALSE(verify(h, "POST", "/api/v1/mesh/networks/other/heartbeat").ok());
    EXPECT_FALSE(verify(h, "POST", "/api/v1/mesh/networks/home/heartbeat", std::string_view("{}")).ok());
    auto replayed_counter = h;
    replayed_counter.counter = "1700000000000001";
    auto v = verify(replayed_counter);
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.error_message().find("X-Meshfwd-Auth"), std::string::npos);
}

TEST_F(request_auth_test, malformed_headers_refused_with_distinct_messages) {
    const auto good = sign(node);
    std::vector<std::pair<signed_headers, std::string>> cases;
    auto with = [&](auto change, std::string expect) {
        auto h = good;
        change(h);
        cases.emplace_back(h, std::move(expect));
    };
    with([](signed_headers& h) { h.node = ""; }, "X-Meshfwd-Node: missing");
    with([](signed_headers& h) { h.node = "not-a-key"; }, "X-Meshfwd-Node: not a 32-byte base64 key");
    with([](signed_headers& h) { h.node = " " + h.node; }, "X-Meshfwd-Node: not a 32-byte base64 key");
    with([](signed_headers& h) { h.counter = ""; }, "X-Meshfwd-Counter: missing");
    with([](signed_headers& h) { h.counter = "-5"; }, "X-Meshfwd-Counter: not a positive");
    with([](signed_headers& h) { h.counter = "0"; }, "X-Meshfwd-Counter: not a positive");
    with([](signed_headers& h) { h.counter = "01"; }, "X-Meshfwd-Counter: not a positive");
    with([](signed_headers& h) { h.counter = "18446744073709551616"; }, "X-Meshfwd-Counter: not a positive");
    with([](signed_headers& h) { h.counter = "12x"; }, "X-Meshfwd-Counter: not a positive");
    with([](signed_headers& h) { h.mac = ""; }, "X-Meshfwd-Auth: missing");
    with([](signed_headers& h) { h.mac = "AAAA"; }, "X-Meshfwd-Auth: not a 32-byte base64 MAC");
    // All-zero key: a low-order point, refused before any MAC is computed.
    with([](signed_headers& h) { h.node = key_text(node_key{}); }, "low-order");
    for (const auto& [h, expect] : cases) {
        auto v = verify(h);
        ASSERT_FALSE(v.ok()) << expect;
        EXPECT_NE(v.error_message().find(expect), std::string::npos) << v.error_message() << " / " << expect;
    }
    EXPECT_NE(verify(good, "post").error_message().find("request method"), std::string::npos);
    EXPECT_NE(verify(good, "POST", "/a b").error_message().find("request target"), std::string::npos);
    EXPECT_NE(verify(good, "POST", "no-slash").error_message().find("request target"), std::string::npos);
}

TEST_F(request_auth_test, low_order_key_refused_by_request_key) {
    auto k = request_key(server.secret, node_key{});
    ASSERT_FALSE(k.ok());
    EXPECT_NE(k.error_message().find("low-order"), std::string::npos);
}

TEST_F(request_auth_test, canonical_string_layout) {
    const std::string c = canonical_request("GET", "/peers?peer_id=x", node.pub, 42, "");
    EXPECT_EQ(c, "meshfwd coord request v1\nGET\n/peers?peer_id=x\n" + key_text(node.pub) +
                     "\n42\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// The server's key cache answers exactly as verify_request: a cached key changes nothing about
// what is refused (another node's signature, a changed part, a low-order key), a forged request
// never enters the cache, and the cache stays within its capacity while keys in use survive.
TEST_F(request_auth_test, key_cache_verifies_and_refuses_as_verify_request) {
    request_key_cache cache(server.secret, 4);
    const std::string target = "/api/v1/mesh/networks/home/heartbeat";
    auto check = [&](const signed_headers& h, std::string_view method = "POST", std::string_view b = {}) {
        return cache.verify(h.node, h.counter, h.mac, method, target, b.data() ? b : std::string_view(body));
    };
    // A forgery (other's signature claiming node's key) before node was ever seen: refused, and
    // not cached.
    auto forged = sign(other);
    forged.node = key_text(node.pub);
    ASSERT_FALSE(check(forged).ok());
    EXPECT_EQ(cache.size(), 0U);
    // The genuine request verifies and caches node's key; the next ones hit the cache.
    const auto first = sign(node, 1700000000000000);
    auto v = check(first);
    ASSERT_TRUE(v.ok()) << v.error_message();
    EXPECT_EQ(v->node, node.pub);
    EXPECT_EQ(cache.size(), 1U);
    const auto second = sign(node, 1700000000000001);
    ASSERT_TRUE(check(second).ok());
    EXPECT_EQ(cache.hits(), 1U);
    // With node's key cached: the forgery, a changed method, body or counter are still refused.
    auto f = check(forged);
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.error_message().find("signature does not match"), std::string::npos) << f.error_message();
    EXPECT_FALSE(check(second, "PUT").ok());
    EXPECT_FALSE(check(second, "POST", "{}").ok());
    auto changed_counter = second;
    changed_counter.counter = "1700000000000002";
    EXPECT_FALSE(check(changed_counter).ok());
    // A low-order key is refused whatever the cache holds.
    auto low = second;
    low.node = key_text(node_key{});
    auto l = check(low);
    ASSERT_FALSE(l.ok());
    EXPECT_NE(l.error_message().find("low-order"), std::string::npos) << l.error_message();
    // Bounded: many other keys never grow it past its capacity, and a key kept in use stays.
    uint64_t counter = 1700000000000010;
    for (int i = 0; i < 20; ++i) {
        party someone;
        auto key = request_key(someone.secret, server.pub);
        ASSERT_TRUE(key.ok());
        const auto h = sign_request(*key, someone.pub, "POST", target, counter++, body);
        ASSERT_TRUE(check(h).ok());
        EXPECT_LE(cache.size(), 4U);
        const uint64_t hits = cache.hits();
        ASSERT_TRUE(check(sign(node, counter++)).ok());
        EXPECT_EQ(cache.hits(), hits + 1) << "node's key, used every round, was dropped at round " << i;
    }
}

} // namespace
} // namespace meshfwd::coord
