// Invite codes (seed 002): "mfinv1." + base64url(payload) + "." + base64url(Ed25519 signature by
// the network's invite key). The payload carries the network id, the server URLs, the server's
// X25519 public key (so a joining node trusts the right server) and an expiry; the invite id
// makes each code single use (recorded in the store). Pure functions: any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coord/store.h"
#include "lib/result.h"

namespace meshfwd::coord {

inline constexpr std::size_t max_invite_code = 4096;

struct invite {
    std::string invite_id;               // 22 base64url chars (16 random bytes)
    std::string network_id;
    std::vector<std::string> server_urls; // "http(s)://host:port", one per replica
    node_key server_public_key{};
    int64_t expires_unix = 0;
};

// secret_key: the network's 64-byte libsodium Ed25519 secret key. Returns "" when the payload
// cannot be encoded (a field that decode_invite would refuse, or a secret key of the wrong size).
std::string encode_invite(const invite& payload, std::span<const uint8_t> secret_key);
// Decodes without checking the signature (a joining node cannot: it learns the network key from
// the server it then trusts). Errors name the malformed part.
result<invite> decode_invite(std::string_view code);
// Decodes and checks the signature against the network's public key; errors say "forged"
// (bad signature) distinctly from "malformed". Expiry and use are the caller's checks.
result<invite> verify_invite(std::string_view code, std::span<const uint8_t> public_key);

// A fresh invite id: 16 random bytes, base64url without padding (22 characters).
std::string new_invite_id();

// A fresh Ed25519 key pair for a new network (public 32, secret 64).
void make_invite_keypair(std::vector<uint8_t>& public_key, std::vector<uint8_t>& secret_key);

} // namespace meshfwd::coord
