// JWT node configuration (see node_token.h). The algorithm is chosen from the token's header
// before libjwt sees it, and the key from the network's settings for that algorithm only, so a
// token cannot pick "none" or make an RSA public key serve as an HMAC secret. Structure and claims
// are read strictly with nlohmann (the same bytes libjwt verified). Pure functions: any thread.
#include "coord/node_token.h"

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include <memory>

#include "coord/json_read.h"
#include "lib/ip_address.h"

namespace meshfwd::coord {

namespace {

using detail::as_bool;
using detail::as_int;
using detail::as_text;
using detail::fail;
using detail::field_error;
using detail::for_each_element;
using detail::json;
using detail::object_reader;

constexpr std::size_t max_allowed_peers = 4096;
constexpr std::size_t max_token_ips = 256;
constexpr std::size_t max_dns = 8;

std::optional<std::string> from_base64url(std::string_view text) {
    for (const char c : text) {
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return std::nullopt;
        }
    }
    std::string out(text.size() * 3 / 4 + 3, '\0');
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(),
                          nullptr, &len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != text.data() + text.size()) {
        return std::nullopt;
    }
    out.resize(len);
    return out;
}

// A JSON object from one part of the token, or nullopt.
std::optional<json> json_part(std::string_view part) {
    const auto text = from_base64url(part);
    if (!text || text->empty()) {
        return std::nullopt;
    }
    try {
        json j = detail::parse_json(*text);
        if (!j.is_object()) {
            return std::nullopt;
        }
        return j;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::string key_claim(const json& v, const std::string& path) {
    const std::string s = as_text(v, path, 64);
    if (!parse_key(s)) {
        fail(path, "not a 32-byte base64 key");
    }
    return s;
}

void read_claims(const json& claims, node_config& c) {
    object_reader r(claims, "");
    c.expires_unix = as_int(r.need("exp"), "exp", 1, INT64_MAX);
    for (const char* ignored : {"iat", "nbf"}) {
        if (const json* x = r.get(ignored)) {
            (void)as_int(*x, ignored, 0, INT64_MAX);
        }
    }
    for (const char* ignored : {"iss", "jti"}) {
        if (const json* x = r.get(ignored)) {
            (void)as_text(*x, ignored, max_text_field);
        }
    }
    if (const json* x = r.get("aud")) {
        if (x->is_array()) {
            for_each_element(*x, "aud", 16, [](const json& e, const std::string& p) { (void)as_text(e, p, max_text_field); });
        } else {
            (void)as_text(*x, "aud", max_text_field);
        }
    }
    if (const json* x = r.get("sub")) {
        c.subject = key_claim(*x, "sub");
    }
    if (const json* x = r.get("network")) {
        c.network_id = as_text(*x, "network", 63);
        if (!valid_id(c.network_id)) {
            fail("network", "not a network id");
        }
    }
    if (const json* x = r.get("connection_type")) {
        c.connection_type = as_text(*x, "connection_type", 32);
        if (c.connection_type != "p2p-mesh" && c.connection_type != "server-server" &&
            c.connection_type != "client-server") {
            fail("connection_type", "not p2p-mesh, server-server or client-server");
        }
    }
    if (const json* x = r.get("wireguard_config")) {
        object_reader w(*x, "wireguard_config");
        if (w.get("private_key") != nullptr) {
            fail("wireguard_config.private_key",
                 "refused: a private key never leaves its node (remove it from the token)");
        }
        if (const json* y = w.get("allowed_ips")) {
            for_each_element(*y, "wireguard_config.allowed_ips", max_token_ips, [&](const json& e, const std::string& p) {
                const std::string s = as_text(e, p, 64);
                if (!ip_prefix::parse(s)) {
                    fail(p, "not an address/length prefix");
                }
                c.allowed_ips.push_back(s);
            });
        }
        if (const json* y = w.get("public_key")) {
            const std::string k = key_claim(*y, "wireguard_config.public_key");
            if (!c.subject.empty() && c.subject != k) {
                fail("wireguard_config.public_key", "differs from sub");
            }
            c.subject = k;
        }
        if (const json* y = w.get("endpoint")) {
            (void)as_text(*y, "wireguard_config.endpoint", max_text_field); // the server's; informational
        }
        w.finish();
    }
    if (const json* x = r.get("mesh_config")) {
        object_reader m(*x, "mesh_config");
        if (const json* y = m.get("auto_discovery")) {
            c.auto_discovery = as_bool(*y, "mesh_config.auto_discovery");
        }
        if (const json* y = m.get("persistent")) {
            (void)as_bool(*y, "mesh_config.persistent");
        }
        if (const json* y = m.get("routing")) {
            c.mesh_routing = as_text(*y, "mesh_config.routing", 16);
            if (c.mesh_routing != "hybrid" && c.mesh_routing != "direct" && c.mesh_routing != "relay") {
                fail("mesh_config.routing", "not hybrid, direct or relay");
            }
        }
        if (const json* y = m.get("encryption")) {
            if (as_text(*y, "mesh_config.encryption", 16) != "wireguard") {
                fail("mesh_config.encryption", "only \"wireguard\"");
            }
        }
        m.finish();
    }
    if (const json* x = r.get("peer_whitelist")) {
        object_reader w(*x, "peer_whitelist");
        if (const json* y = w.get("allowed_peers")) {
            for_each_element(*y, "peer_whitelist.allowed_peers", max_allowed_peers,
                             [&](const json& e, const std::string& p) { c.allowed_peers.push_back(key_claim(e, p)); });
        }
        if (const json* y = w.get("auto_approve")) {
            c.auto_approve = as_bool(*y, "peer_whitelist.auto_approve");
        }
        if (const json* y = w.get("max_peers")) {
            c.max_peers = static_cast<uint32_t>(as_int(*y, "peer_whitelist.max_peers", 0, 1 << 24));
        }
        w.finish();
    }
    if (const json* x = r.get("network_config")) {
        object_reader n(*x, "network_config");
        if (const json* y = n.get("subnet")) {
            c.subnet = as_text(*y, "network_config.subnet", 64);
            auto p = ip_prefix::parse(c.subnet);
            if (!p || !p->address().is_v4()) {
                fail("network_config.subnet", "not an IPv4 prefix");
            }
        }
        if (const json* y = n.get("dns")) {
            for_each_element(*y, "network_config.dns", max_dns, [&](const json& e, const std::string& p) {
                const std::string s = as_text(e, p, 64);
                if (!ip_address::parse(s)) {
                    fail(p, "not an IP address");
                }
                c.dns.push_back(s);
            });
        }
        if (const json* y = n.get("mtu")) {
            c.mtu = static_cast<uint32_t>(as_int(*y, "network_config.mtu", min_mtu, max_mtu));
        }
        n.finish();
    }
    r.finish();
}

struct jwt_deleter {
    void operator()(jwt_t* j) const { jwt_free(j); }
};

} // namespace

result<node_config> verify_node_token(std::string_view token, const jwt_settings& keys, int64_t now_unix) {
    try {
        if (token.empty()) {
            return make_error("malformed token: empty");
        }
        if (token.size() > max_token) {
            return make_error("malformed token: longer than " + std::to_string(max_token) + " bytes");
        }
        const auto dot1 = token.find('.');
        const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
        if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
            return make_error("malformed token: not three dot-separated parts");
        }
        const auto header = json_part(token.substr(0, dot1));
        if (!header) {
            return make_error("malformed token: header is not base64url JSON");
        }
        const auto alg_it = header->find("alg");
        if (alg_it == header->end() || !alg_it->is_string()) {
            return make_error("malformed token: header has no alg");
        }
        const std::string alg = alg_it->get<std::string>();
        if (const auto typ = header->find("typ"); typ != header->end() && (!typ->is_string() || typ->get<std::string>() != "JWT")) {
            return make_error("malformed token: typ is not JWT");
        }
        if (header->find("crit") != header->end()) {
            return make_error("malformed token: critical header extensions are not supported");
        }
        const std::string* key = nullptr;
        jwt_alg_t expected = JWT_ALG_INVAL;
        if (alg == "HS256" && !keys.hs256_secret.empty()) {
            key = &keys.hs256_secret;
            expected = JWT_ALG_HS256;
        } else if (alg == "RS256" && !keys.rs256_public_key_pem.empty()) {
            key = &keys.rs256_public_key_pem;
            expected = JWT_ALG_RS256;
        } else {
            std::string shown = alg.substr(0, 16);
            for (char& ch : shown) {
                if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
                    ch = '?';
                }
            }
            return make_error("algorithm " + shown + " not allowed (this network accepts " +
                              (keys.hs256_secret.empty() && keys.rs256_public_key_pem.empty() ? std::string("no tokens")
                               : keys.hs256_secret.empty() ? std::string("RS256")
                               : keys.rs256_public_key_pem.empty() ? std::string("HS256")
                                                                   : std::string("HS256, RS256")) +
                              ")");
        }
        const auto claims = json_part(token.substr(dot1 + 1, dot2 - dot1 - 1));
        if (!claims) {
            return make_error("malformed token: payload is not a base64url JSON object");
        }
        if (dot2 + 1 == token.size()) {
            return make_error("bad signature: the token is unsigned");
        }
        const std::string text(token);
        jwt_t* raw = nullptr;
        const int rc = jwt_decode(&raw, text.c_str(), reinterpret_cast<const unsigned char*>(key->data()),
                                  static_cast<int>(key->size()));
        std::unique_ptr<jwt_t, jwt_deleter> decoded(raw);
        if (rc != 0 || !decoded) {
            ERR_clear_error(); // leave OpenSSL's per-thread error queue clean for TLS users
            return make_error("bad signature: the token was not signed with this network's " + alg + " key");
        }
        if (jwt_get_alg(decoded.get()) != expected) {
            return make_error("algorithm mismatch after verification");
        }
        node_config c;
        try {
            read_claims(*claims, c);
        } catch (const field_error& e) {
            return make_error(std::string("malformed claim ") + e.what());
        }
        if (now_unix >= c.expires_unix) {
            return make_error("expired: the token's exp has passed");
        }
        if (const auto nbf = claims->find("nbf"); nbf != claims->end() && now_unix < nbf->get<int64_t>()) {
            return make_error("not yet valid: the token's nbf is in the future");
        }
        return c;
    } catch (const std::exception& e) {
        return make_error(std::string("malformed token: ") + e.what());
    }
}

std::string policy_json(const node_config& config) {
    json j = {{"allowed_peers", config.allowed_peers}, {"max_peers", config.max_peers}};
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

peer_policy parse_policy(std::string_view text) {
    peer_policy policy;
    if (text.empty()) {
        return policy;
    }
    try {
        const json j = detail::parse_json(text);
        if (!j.is_object()) {
            return {};
        }
        if (const auto it = j.find("allowed_peers"); it != j.end()) {
            if (!it->is_array()) {
                return {};
            }
            for (const auto& k : *it) {
                const auto key = k.is_string() ? parse_key(k.get<std::string>()) : std::nullopt;
                if (!key) {
                    return {};
                }
                policy.allowed_peers.push_back(*key);
            }
        }
        if (const auto it = j.find("max_peers"); it != j.end()) {
            if (!it->is_number_unsigned() || it->get<uint64_t>() > UINT32_MAX) {
                return {};
            }
            policy.max_peers = static_cast<uint32_t>(it->get<uint64_t>());
        }
    } catch (const std::exception&) {
        return {};
    }
    return policy;
}

result<void> check_rs256_public_key(std::string_view pem) {
    if (pem.size() > 16 * 1024) {
        return make_error("longer than 16 KiB");
    }
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
    if (!bio) {
        return make_error("cannot read the key");
    }
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
                                                             &EVP_PKEY_free);
    if (!key) {
        ERR_clear_error();
        return make_error("not a PEM public key (-----BEGIN PUBLIC KEY-----)");
    }
    if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
        return make_error("not an RSA public key");
    }
    if (EVP_PKEY_get_bits(key.get()) < 2048) {
        return make_error("RSA key shorter than 2048 bits");
    }
    return {};
}

} // namespace meshfwd::coord
