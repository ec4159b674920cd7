// Invite codes (see invite.h). Layout of the payload (all integers big-endian):
//   u8  version (1)
//   u8  length, invite id (22 base64url characters)
//   u8  length, network id ([a-z0-9-]{1,63})
//   u8  url count (1..8), then per url: u8 length, "http://..." or "https://..." (printable ASCII)
//   32  server X25519 public key
//   i64 expiry, Unix seconds (> 0)
// The signature is Ed25519 over "meshfwd invite v1\n" || payload. Pure functions: any thread.
#include "coord/invite.h"

#include <sodium.h>

#include <cstring>

#include "coord/protocol.h"

namespace meshfwd::coord {

namespace {

constexpr std::string_view prefix = "mfinv1.";
constexpr std::string_view sign_context = "meshfwd invite v1\n";
constexpr uint8_t payload_version = 1;
constexpr std::size_t max_urls = 8;
constexpr std::size_t max_url = 255;

std::string base64url(std::span<const uint8_t> bytes) {
    std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
    sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out.resize(out.size() - 1);
    return out;
}

// Strict: the base64url alphabet only (libsodium 1.0.18 accepts bytes >= 0x80) and the one
// canonical text for the bytes.
std::optional<std::vector<uint8_t>> from_base64url(std::string_view text, std::size_t max_bytes) {
    if (text.empty() || text.size() > (max_bytes * 4 + 2) / 3) {
        return std::nullopt;
    }
    for (const char c : text) {
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return std::nullopt;
        }
    }
    std::vector<uint8_t> out(max_bytes);
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != text.data() + text.size()) {
        return std::nullopt;
    }
    out.resize(len);
    if (base64url(out) != text) {
        return std::nullopt;
    }
    return out;
}

bool valid_invite_id(std::string_view id) {
    auto raw = from_base64url(id, 16);
    return id.size() == 22 && raw && raw->size() == 16;
}

bool valid_url(std::string_view url) {
    if (url.size() > max_url || !(url.starts_with("http://") || url.starts_with("https://"))) {
        return false;
    }
    const std::size_t host_at = url.starts_with("https://") ? 8 : 7;
    if (url.size() == host_at) {
        return false;
    }
    for (const char c : url) {
        if (c <= 0x20 || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

std::vector<uint8_t> signed_message(std::span<const uint8_t> payload) {
    // Sized once and copied (GCC 12's -Warray-bounds misfires on vector::insert here).
    std::vector<uint8_t> m(sign_context.size() + payload.size());
    std::memcpy(m.data(), sign_context.data(), sign_context.size());
    if (!payload.empty()) {
        std::memcpy(m.data() + sign_context.size(), payload.data(), payload.size());
    }
    return m;
}

class reader {
public:
    explicit reader(std::span<const uint8_t> bytes) : _bytes(bytes) {}
    bool u8(uint8_t& out) {
        if (_at >= _bytes.size()) {
            return false;
        }
        out = _bytes[_at++];
        return true;
    }
    bool take(std::size_t n, std::span<const uint8_t>& out) {
        if (_bytes.size() - _at < n) {
            return false;
        }
        out = _bytes.subspan(_at, n);
        _at += n;
        return true;
    }
    bool str8(std::string& out) {
        uint8_t len = 0;
        std::span<const uint8_t> s;
        if (!u8(len) || !take(len, s)) {
            return false;
        }
        out.assign(s.begin(), s.end());
        return true;
    }
    bool done() const { return _at == _bytes.size(); }

private:
    std::span<const uint8_t> _bytes;
    std::size_t _at = 0;
};

struct split_code {
    std::string_view payload;
    std::string_view signature;
};

result<split_code> split(std::string_view code) {
    // Tolerate whitespace around a pasted code, nothing else.
    while (!code.empty() && (code.front() == ' ' || code.front() == '\n' || code.front() == '\r' || code.front() == '\t')) {
        code.remove_prefix(1);
    }
    while (!code.empty() && (code.back() == ' ' || code.back() == '\n' || code.back() == '\r' || code.back() == '\t')) {
        code.remove_suffix(1);
    }
    if (code.empty()) {
        return make_error("invite malformed: empty");
    }
    if (code.size() > max_invite_code) {
        return make_error("invite malformed: longer than " + std::to_string(max_invite_code) + " characters");
    }
    if (!code.starts_with(prefix)) {
        return make_error("invite malformed: does not start with \"mfinv1.\"");
    }
    code.remove_prefix(prefix.size());
    const auto dot = code.find('.');
    if (dot == std::string_view::npos) {
        return make_error("invite malformed: no signature part");
    }
    return split_code{code.substr(0, dot), code.substr(dot + 1)};
}

} // namespace

std::string new_invite_id() {
    std::array<uint8_t, 16> raw{};
    randombytes_buf(raw.data(), raw.size());
    return base64url(raw);
}

void make_invite_keypair(std::vector<uint8_t>& public_key, std::vector<uint8_t>& secret_key) {
    public_key.assign(crypto_sign_PUBLICKEYBYTES, 0);
    secret_key.assign(crypto_sign_SECRETKEYBYTES, 0);
    crypto_sign_keypair(public_key.data(), secret_key.data());
}

std::string encode_invite(const invite& payload, std::span<const uint8_t> secret_key) {
    if (secret_key.size() != crypto_sign_SECRETKEYBYTES || !valid_invite_id(payload.invite_id) ||
        !valid_id(payload.network_id) || payload.server_urls.empty() || payload.server_urls.size() > max_urls ||
        payload.expires_unix <= 0) {
        return "";
    }
    std::vector<uint8_t> p;
    p.push_back(payload_version);
    p.push_back(static_cast<uint8_t>(payload.invite_id.size()));
    p.insert(p.end(), payload.invite_id.begin(), payload.invite_id.end());
    p.push_back(static_cast<uint8_t>(payload.network_id.size()));
    p.insert(p.end(), payload.network_id.begin(), payload.network_id.end());
    p.push_back(static_cast<uint8_t>(payload.server_urls.size()));
    for (const auto& url : payload.server_urls) {
        if (!valid_url(url)) {
            return "";
        }
        p.push_back(static_cast<uint8_t>(url.size()));
        p.insert(p.end(), url.begin(), url.end());
    }
    p.insert(p.end(), payload.server_public_key.begin(), payload.server_public_key.end());
    for (int shift = 56; shift >= 0; shift -= 8) {
        p.push_back(static_cast<uint8_t>(static_cast<uint64_t>(payload.expires_unix) >> shift));
    }
    const auto message = signed_message(p);
    std::array<uint8_t, crypto_sign_BYTES> sig{};
    crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_key.data());
    std::string code(prefix);
    code += base64url(p);
    code += '.';
    code += base64url(sig);
    if (code.size() > max_invite_code) {
        return "";
    }
    return code;
}

result<invite> decode_invite(std::string_view code) {
    auto parts = split(code);
    if (!parts) {
        return make_error(parts.error_message());
    }
    const auto payload = from_base64url(parts->payload, max_invite_code);
    if (!payload) {
        return make_error("invite malformed: payload is not base64url");
    }
    const auto sig = from_base64url(parts->signature, crypto_sign_BYTES);
    if (!sig || sig->size() != crypto_sign_BYTES) {
        return make_error("invite malformed: signature is not 64 bytes of base64url");
    }
    reader r(*payload);
    invite out;
    uint8_t version = 0;
    if (!r.u8(version)) {
        return make_error("invite malformed: empty payload");
    }
    if (version != payload_version) {
        return make_error("invite malformed: unknown version " + std::to_string(version));
    }
    if (!r.str8(out.invite_id) || !valid_invite_id(out.invite_id)) {
        return make_error("invite malformed: bad invite id");
    }
    if (!r.str8(out.network_id) || !valid_id(out.network_id)) {
        return make_error("invite malformed: bad network id");
    }
    uint8_t urls = 0;
    if (!r.u8(urls) || urls == 0 || urls > max_urls) {
        return make_error("invite malformed: server url count not 1..8");
    }
    for (uint8_t i = 0; i < urls; ++i) {
        std::string url;
        if (!r.str8(url) || !valid_url(url)) {
            return make_error("invite malformed: server url " + std::to_string(i) + " is not http(s)://...");
        }
        out.server_urls.push_back(std::move(url));
    }
    std::span<const uint8_t> key;
    if (!r.take(32, key)) {
        return make_error("invite malformed: truncated server key");
    }
    std::copy(key.begin(), key.end(), out.server_public_key.begin());
    std::span<const uint8_t> expiry;
    if (!r.take(8, expiry)) {
        return make_error("invite malformed: truncated expiry");
    }
    uint64_t e = 0;
    for (const uint8_t b : expiry) {
        e = (e << 8) | b;
    }
    out.expires_unix = static_cast<int64_t>(e);
    if (out.expires_unix <= 0) {
        return make_error("invite malformed: expiry not a positive time");
    }
    if (!r.done()) {
        return make_error("invite malformed: trailing bytes after the payload");
    }
    return out;
}

result<invite> verify_invite(std::string_view code, std::span<const uint8_t> public_key) {
    if (public_key.size() != crypto_sign_PUBLICKEYBYTES) {
        return make_error("invite: the network's key is not a 32-byte Ed25519 key");
    }
    auto decoded = decode_invite(code);
    if (!decoded) {
        return decoded;
    }
    const auto parts = split(code);
    const auto payload = from_base64url(parts->payload, max_invite_code);
    const auto sig = from_base64url(parts->signature, crypto_sign_BYTES);
    const auto message = signed_message(*payload);
    if (crypto_sign_verify_detached(sig->data(), message.data(), message.size(), public_key.data()) != 0) {
        return make_error("invite forged: the signature does not match this network's key");
    }
    return decoded;
}

} // namespace meshfwd::coord
