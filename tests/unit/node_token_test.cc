// Unit tests for coord/node_token: HS256 and RS256 tokens (the RSA key generated here with
// OpenSSL's EVP API) carrying seed 001's claims verify; a bad signature, an expired token, an
// algorithm the network does not allow, alg=none, a private key in the claims and malformed
// claims are refused with messages saying which. Test thread only.
#include "coord/node_token.h"

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include <cstdlib>
#include <memory>

#include "crypto/x25519.h"

namespace meshfwd::coord {
namespace {

constexpr int64_t now = 1'800'000'000;
const std::string secret = "0123456789abcdef0123456789abcdef-hs256-test-secret";

std::string b64url(std::string_view s) {
    std::string out(sodium_base64_ENCODED_LEN(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out.resize(out.size() - 1);
    return out;
}

std::string key_b64(uint8_t fill) {
    node_key k{};
    k.fill(fill);
    return key_text(k);
}

std::string seed_claims(int64_t exp = now + 3600) {
    return R"({"sub":")" + key_b64(1) + R"(","network":"home","exp":)" + std::to_string(exp) +
           R"(,"iat":1700000000,"connection_type":"p2p-mesh",
      "wireguard_config":{"public_key":")" + key_b64(1) + R"(","allowed_ips":["10.0.0.0/8"],"endpoint":"edge.example:51820"},
      "mesh_config":{"auto_discovery":true,"persistent":true,"routing":"hybrid","encryption":"wireguard"},
      "peer_whitelist":{"allowed_peers":[")" + key_b64(2) + R"(",")" + key_b64(3) + R"("],"auto_approve":false,"max_peers":10},
      "network_config":{"subnet":"10.0.1.0/24","dns":["8.8.8.8","1.1.1.1"],"mtu":1420}})";
}

std::string sign(jwt_alg_t alg, const std::string& key, const std::string& claims) {
    jwt_t* raw = nullptr;
    EXPECT_EQ(jwt_new(&raw), 0);
    std::unique_ptr<jwt_t, decltype(&jwt_free)> j(raw, &jwt_free);
    EXPECT_EQ(jwt_add_grants_json(j.get(), claims.c_str()), 0);
    EXPECT_EQ(jwt_set_alg(j.get(), alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size())), 0);
    char* s = jwt_encode_str(j.get());
    EXPECT_NE(s, nullptr);
    std::string out = s ? s : "";
    std::free(s); // libjwt 1.10 has no jwt_free_str; it allocates with malloc
    return out;
}

struct rsa_pair {
    std::string private_pem;
    std::string public_pem;
};

rsa_pair make_rsa(int bits = 2048) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(bits), &EVP_PKEY_free);
    EXPECT_TRUE(key);
    auto to_string = [](BIO* bio) {
        char* data = nullptr;
        const long n = BIO_get_mem_data(bio, &data);
        return std::string(data, static_cast<std::size_t>(n));
    };
    std::unique_ptr<BIO, decltype(&BIO_free)> priv(BIO_new(BIO_s_mem()), &BIO_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> pub(BIO_new(BIO_s_mem()), &BIO_free);
    PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    PEM_write_bio_PUBKEY(pub.get(), key.get());
    return {to_string(priv.get()), to_string(pub.get())};
}

class node_token_test : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        ASSERT_GE(sodium_init(), 0);
        rsa = new rsa_pair(make_rsa());
        other_rsa = new rsa_pair(make_rsa());
    }
    static void TearDownTestSuite() {
        delete rsa;
        delete other_rsa;
    }
    static rsa_pair* rsa;
    static rsa_pair* other_rsa;
    jwt_settings both() const { return {secret, rsa->public_pem}; }
};
rsa_pair* node_token_test::rsa = nullptr;
rsa_pair* node_token_test::other_rsa = nullptr;

void expect_error(const result<node_config>& r, std::string_view what) {
    ASSERT_FALSE(r.ok()) << "expected: " << what;
    EXPECT_NE(r.error_message().find(what), std::string::npos) << r.error_message() << " / expected: " << what;
}

TEST_F(node_token_test, hs256_seed_claims) {
    auto c = verify_node_token(sign(JWT_ALG_HS256, secret, seed_claims()), {secret, ""}, now);
    ASSERT_TRUE(c.ok()) << c.error_message();
    EXPECT_EQ(c->connection_type, "p2p-mesh");
    EXPECT_EQ(c->allowed_ips, std::vector<std::string>{"10.0.0.0/8"});
    EXPECT_EQ(c->mesh_routing, "hybrid");
    EXPECT_TRUE(c->auto_discovery);
    EXPECT_EQ(c->allowed_peers, (std::vector<std::string>{key_b64(2), key_b64(3)}));
    EXPECT_FALSE(c->auto_approve);
    EXPECT_EQ(c->max_peers, 10u);
    EXPECT_EQ(c->subnet, "10.0.1.0/24");
    EXPECT_EQ(c->dns, (std::vector<std::string>{"8.8.8.8", "1.1.1.1"}));
    EXPECT_EQ(c->mtu, 1420u);
    EXPECT_EQ(c->network_id, "home");
    EXPECT_EQ(c->subject, key_b64(1));
    EXPECT_EQ(c->expires_unix, now + 3600);
}

TEST_F(node_token_test, rs256_valid) {
    auto c = verify_node_token(sign(JWT_ALG_RS256, rsa->private_pem, seed_claims()), both(), now);
    ASSERT_TRUE(c.ok()) << c.error_message();
    EXPECT_EQ(c->max_peers, 10u);
}

TEST_F(node_token_test, minimal_claims) {
    auto c = verify_node_token(sign(JWT_ALG_HS256, secret, R"({"exp":1800000100})"), both(), now);
    ASSERT_TRUE(c.ok()) << c.error_message();
    EXPECT_TRUE(c->auto_approve);
    EXPECT_EQ(c->max_peers, 0u);
    EXPECT_TRUE(c->allowed_peers.empty());
}

TEST_F(node_token_test, bad_signature) {
    expect_error(verify_node_token(sign(JWT_ALG_HS256, secret + "x", seed_claims()), both(), now), "bad signature");
    expect_error(verify_node_token(sign(JWT_ALG_RS256, other_rsa->private_pem, seed_claims()), both(), now),
                 "bad signature");
    // A valid token with its payload swapped for another (claims changed after signing).
    const std::string t = sign(JWT_ALG_HS256, secret, seed_claims());
    const auto d1 = t.find('.');
    const auto d2 = t.find('.', d1 + 1);
    const std::string tampered = t.substr(0, d1 + 1) + b64url(R"({"exp":1900000000,"peer_whitelist":{"max_peers":0}})") +
                                 t.substr(d2);
    expect_error(verify_node_token(tampered, both(), now), "bad signature");
    expect_error(verify_node_token(t.substr(0, d2 + 1), both(), now), "bad signature");
}

TEST_F(node_token_test, expired) {
    expect_error(verify_node_token(sign(JWT_ALG_HS256, secret, seed_claims(now - 1)), both(), now), "expired");
    expect_error(verify_node_token(sign(JWT_ALG_HS256, secret, seed_claims(now)), both(), now), "expired");
    expect_error(verify_node_token(sign(JWT_ALG_HS256, secret, R"({"exp":1800000100,"nbf":1800000050})"), both(), now),
                 "not yet valid");
}

TEST_F(node_token_test, algorithm_not_allowed) {
    expect_error(verify_node_token(sign(JWT_ALG_HS512, secret, seed_claims()), both(), now), "algorithm HS512 not allowed");
    expect_error(verify_node_token(sign(JWT_ALG_HS256, secret, seed_claims()), {"", rsa->public_pem}, now),
                 "algorithm HS256 not allowed");
    expect_error(verify_node_token(sign(JWT_ALG_RS256, rsa->private_pem, seed_claims()), {secret, ""}, now),
                 "algorithm RS256 not allowed");
    // Key confusion: an HS256 token keyed with the RSA public key text must not pass.
    expect_error(verify_node_token(sign(JWT_ALG_HS256, rsa->public_pem, seed_claims()), {"", rsa->public_pem}, now),
                 "algorithm HS256 not allowed");
}

TEST_F(node_token_test, alg_none_refused) {
    const std::string claims = b64url(seed_claims());
    for (const char* header : {R"({"alg":"none","typ":"JWT"})", R"({"alg":"None"})", R"({"typ":"JWT"})"}) {
        const std::string t = b64url(header) + "." + claims + ".";
        auto r = verify_node_token(t, both(), now);
        ASSERT_FALSE(r.ok());
        EXPECT_TRUE(r.error_message().find("not allowed") != std::string::npos ||
                    r.error_message().find("no alg") != std::string::npos)
            << r.error_message();
    }
}

TEST_F(node_token_test, private_key_refused) {
    const std::string claims = R"({"exp":1800000100,"wireguard_config":{"private_key":")" + key_b64(9) + R"("}})";
    expect_error(verify_node_token(sign(JWT_ALG_HS256, secret, claims), both(), now),
                 "wireguard_config.private_key: refused: a private key never leaves its node");
}

TEST_F(node_token_test, malformed_claims) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"({"sub":"x"})", "malformed claim exp: required"},
        {R"({"exp":"soon"})", "malformed claim exp: must be an integer"},
        {R"({"exp":1800000100,"connection_type":"vpn"})", "malformed claim connection_type"},
        {R"({"exp":1800000100,"peer_whitelist":{"allowed_peers":["nope"]}})",
         "malformed claim peer_whitelist.allowed_peers[0]: not a 32-byte base64 key"},
        {R"({"exp":1800000100,"peer_whitelist":{"max_peers":-1}})", "malformed claim peer_whitelist.max_peers"},
        {R"({"exp":1800000100,"peer_whitelist":{"auto_approve":"no"}})", "malformed claim peer_whitelist.auto_approve"},
        {R"({"exp":1800000100,"network_config":{"mtu":100}})", "malformed claim network_config.mtu"},
        {R"({"exp":1800000100,"network_config":{"subnet":"2001:db8::/32"}})", "malformed claim network_config.subnet"},
        {R"({"exp":1800000100,"network_config":{"dns":["resolver"]}})", "malformed claim network_config.dns[0]"},
        {R"({"exp":1800000100,"wireguard_config":{"allowed_ips":["10.0.0.0"]}})",
         "malformed claim wireguard_config.allowed_ips[0]"},
        {R"({"exp":1800000100,"mesh_config":{"routing":"carrier-pigeon"}})", "malformed claim mesh_config.routing"},
        {R"({"exp":1800000100,"admin":true})", "malformed claim admin: unknown field"},
        {R"({"exp":1800000100,"network":"Bad Id"})", "malformed claim network"},
        {R"({"exp":1800000100,"sub":")" + key_b64(1) + R"(","wireguard_config":{"public_key":")" + key_b64(2) + R"("}})",
         "malformed claim wireguard_config.public_key: differs from sub"},
    };
    for (const auto& [claims, expect] : cases) {
        expect_error(verify_node_token(sign(JWT_ALG_HS256, secret, claims), both(), now), expect);
    }
}

TEST_F(node_token_test, malformed_tokens) {
    expect_error(verify_node_token("", both(), now), "malformed token");
    expect_error(verify_node_token("a.b", both(), now), "malformed token");
    expect_error(verify_node_token("a.b.c.d", both(), now), "malformed token");
    expect_error(verify_node_token("!!!.e30.sig", both(), now), "malformed token");
    expect_error(verify_node_token(std::string(max_token + 1, 'a'), both(), now), "malformed token");
    expect_error(verify_node_token(b64url(R"({"alg":"HS256"})") + "." + b64url("[1]") + ".c2ln", both(), now),
                 "malformed token: payload");
}

TEST_F(node_token_test, policy_round_trip) {
    auto c = verify_node_token(sign(JWT_ALG_HS256, secret, seed_claims()), both(), now);
    ASSERT_TRUE(c.ok());
    const peer_policy p = parse_policy(policy_json(*c));
    ASSERT_EQ(p.allowed_peers.size(), 2u);
    EXPECT_EQ(key_text(p.allowed_peers[0]), key_b64(2));
    EXPECT_EQ(p.max_peers, 10u);
    EXPECT_TRUE(parse_policy("").allowed_peers.empty());
    EXPECT_EQ(parse_policy("{not json").max_peers, 0u);
    EXPECT_TRUE(parse_policy(R"({"allowed_peers":["bad"],"max_peers":3})").allowed_peers.empty());
}

TEST_F(node_token_test, rs256_key_check) {
    EXPECT_TRUE(check_rs256_public_key(rsa->public_pem).ok());
    EXPECT_FALSE(check_rs256_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").ok());
    EXPECT_FALSE(check_rs256_public_key(rsa->private_pem).ok());
    auto small = make_rsa(1024);
    auto r = check_rs256_public_key(small.public_pem);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error_message().find("2048"), std::string::npos);
}

} // namespace
} // namespace meshfwd::coord
