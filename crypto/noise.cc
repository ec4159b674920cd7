// WireGuard's Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake. Control thread only.
//
//   Noise_IKpsk2:                    <- s
//                                    ...
//                                    -> e, es, s, ss       (type 1, payload TAI64N)
//                                    <- e, ee, se, psk     (type 2, payload empty)
//
//   Initial state (both sides): C = HASH(CONSTRUCTION); H = HASH(C || IDENTIFIER);
//                               H = HASH(H || S_responder.pub)
//   Initiation:  E_i; msg.ephemeral = E_i.pub; H = HASH(H || E_i.pub); C = KDF1(C, E_i.pub)
//                (C, k) = KDF2(C, DH(E_i, S_r));  msg.static = AEAD(k, 0, S_i.pub, H);    H = HASH(H || msg.static)
//                (C, k) = KDF2(C, DH(S_i, S_r));  msg.timestamp = AEAD(k, 0, TAI64N, H);  H = HASH(H || msg.timestamp)
//   Response:    E_r; msg.ephemeral = E_r.pub; H = HASH(H || E_r.pub); C = KDF1(C, E_r.pub)
//                C = KDF1(C, DH(E_r, E_i));  C = KDF1(C, DH(E_r, S_i))
//                (C, t, k) = KDF3(C, PSK); H = HASH(H || t)
//                msg.empty = AEAD(k, 0, "", H); H = HASH(H || msg.empty)
//   Keys:        (T_i->r, T_r->i) = KDF2(C, "")
//
// (mix_dh's KDF2 equals the KDF1 above for C; the unused k is overwritten before use.) The
// generic steps live in noise_core.cc; this file adds the WireGuard framing, the peer lookup, the
// replay/flood checks and the state machine (an initiator half and a responder half, so crossing
// initiations both complete). Failures leave the stored state as it was: a forged response cannot
// cancel our outstanding initiation, a forged initiation changes nothing.
#include "crypto/noise.h"

#include <sodium.h>

#include <array>
#include <cstring>

namespace meshfwd::crypto {

namespace {

std::span<const uint8_t> text_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// (C, H) after the construction and the identifier, shared by every handshake.
struct initial_state {
    secret32 chaining_key;
    hash32 hash{};
    initial_state() noexcept {
        noise::symmetric_state st;
        st.initialize(spec::construction);
        st.mix_hash(text_bytes(spec::identifier));
        chaining_key = st.chaining_key().clone();
        hash = st.hash();
    }
};

const initial_state& wireguard_initial_state() noexcept {
    static const initial_state state;
    return state;
}

// The state both sides start from for a handshake whose responder has `responder_static`.
void start(noise::symmetric_state& st, const public_key& responder_static) noexcept {
    const initial_state& init = wireguard_initial_state();
    st.restore(init.chaining_key, init.hash);
    st.mix_hash(responder_static);
}

hash32 label_hash(std::string_view label, const public_key& key) noexcept {
    hash32 out{};
    blake2s_hasher hasher;
    hasher.update(text_bytes(label)).update(key).final(out);
    return out;
}

// Offsets of the Noise payload inside the WireGuard structs.
constexpr std::size_t initiation_noise_offset = 8;     // after type, sender
constexpr std::size_t initiation_noise_size = 32 + 48 + 28;
constexpr std::size_t response_noise_offset = 12;      // after type, sender, receiver
constexpr std::size_t response_noise_size = 32 + 16;
static_assert(initiation_noise_offset + initiation_noise_size + macs_size == sizeof(message_initiation));
static_assert(response_noise_offset + response_noise_size + macs_size == sizeof(message_response));
static_assert(noise::message1_size(spec::timestamp_size) == initiation_noise_size);
static_assert(noise::message2_size(0) == response_noise_size);

}  // namespace

hash32 derive_mac1_key(const public_key& key) noexcept { return label_hash(spec::label_mac1, key); }
hash32 derive_cookie_key(const public_key& key) noexcept { return label_hash(spec::label_cookie, key); }

bool static_identity::set_private_key(const secret32& private_key) noexcept {
    static_private = private_key.clone();
    if (static_private.is_zero()) {
        static_public.fill(0);
        mac1_key.fill(0);
        cookie_key.fill(0);
        return false;
    }
    clamp_private_key(static_private);
    static_public = derive_public_key(static_private);
    mac1_key = derive_mac1_key(static_public);
    cookie_key = derive_cookie_key(static_public);
    return true;
}

bool peer_config::init(const static_identity& local, const public_key& remote, const secret32* psk) noexcept {
    remote_static = remote;
    if (psk != nullptr) {
        preshared_key = psk->clone();
    } else {
        preshared_key.wipe();
    }
    mac1_key = derive_mac1_key(remote);
    cookie_key = derive_cookie_key(remote);
    if (!local.has_identity() || !x25519(static_static, local.static_private, remote)) {
        static_static.wipe();
        return false;
    }
    return true;
}

void handshake::inject_ephemeral_for_testing(const secret32& ephemeral_private) noexcept {
    _injected_ephemeral = ephemeral_private.clone();
}

void handshake::new_ephemeral(half& h) noexcept {
    if (_injected_ephemeral) {
        h.ephemeral_private = std::move(*_injected_ephemeral);
        _injected_ephemeral.reset();
    } else {
        h.ephemeral_private = generate_private_key();
    }
    h.ephemeral_public = derive_public_key(h.ephemeral_private);
}

void handshake::half::clear() noexcept {
    symmetric.wipe();
    ephemeral_private.wipe();
    sodium_memzero(ephemeral_public.data(), ephemeral_public.size());
    sodium_memzero(remote_ephemeral.data(), remote_ephemeral.size());
    local_index = 0;
    remote_index = 0;
    step = state::zeroed;
}

void handshake::clear() noexcept {
    _initiator.clear();
    _responder.clear();
    _completed = nullptr;
}

handshake_reason handshake::create_initiation(message_initiation& out, uint32_t local_index) noexcept {
    return create_initiation(out, local_index, tai64n::now());
}

handshake_reason handshake::create_initiation(message_initiation& out, uint32_t local_index,
                                              const tai64n& timestamp) noexcept {
    half& h = _initiator;
    h.clear();
    if (_completed == &h) {
        _completed = nullptr;
    }
    if (!_local->has_identity()) {
        return handshake_reason::no_identity;
    }
    out = message_initiation{};
    out.type.set(spec::message_initiation_type);
    out.sender_index.set(local_index);

    start(h.symmetric, _peer->remote_static);
    new_ephemeral(h);
    const auto noise_bytes = as_writable_bytes(out).subspan(initiation_noise_offset, initiation_noise_size);
    if (!noise::write_message1(h.symmetric, h.ephemeral_private, h.ephemeral_public, _peer->remote_static,
                               _local->static_public, _peer->static_static, timestamp.bytes, noise_bytes)) {
        h.clear();
        return handshake_reason::bad_dh;
    }
    h.local_index = local_index;
    h.step = state::created_initiation;
    return handshake_reason::ok;
}

initiation_result consume_initiation(const static_identity& local, const message_initiation& msg,
                                     const peer_lookup& lookup, mono_time now) noexcept {
    if (!local.has_identity()) {
        return {handshake_reason::no_identity, nullptr};
    }
    noise::symmetric_state st;
    start(st, local.static_public);
    const auto noise_bytes = as_bytes(msg).subspan(initiation_noise_offset, initiation_noise_size);
    public_key remote_ephemeral{};
    public_key remote_static{};
    if (!noise::read_message1_static(st, local.static_private, noise_bytes, remote_ephemeral, remote_static)) {
        return {handshake_reason::bad_static, nullptr};
    }
    handshake* hs = lookup ? lookup(remote_static) : nullptr;
    if (hs == nullptr || sodium_memcmp(hs->_peer->remote_static.data(), remote_static.data(), 32) != 0) {
        return {handshake_reason::unknown_peer, nullptr};
    }
    tai64n timestamp;
    if (hs->_peer->static_static.is_zero()) {
        return {handshake_reason::bad_dh, nullptr};
    }
    if (!noise::read_message1_payload(st, hs->_peer->static_static, noise_bytes, timestamp.bytes)) {
        return {handshake_reason::bad_timestamp, nullptr};
    }
    // Kernel semantics: a replayed initiation must not make the responder forget its current
    // session, and at most INITIATIONS_PER_SECOND initiations per peer are worked through.
    if (!timestamp.after(hs->_latest_timestamp)) {
        return {handshake_reason::replayed, nullptr};
    }
    if (hs->_last_initiation_consumption && *hs->_last_initiation_consumption + spec::initiation_min_interval > now) {
        return {handshake_reason::flood, nullptr};
    }

    // Commit to the responder half. Unlike the kernel, an initiation of ours in progress with this
    // peer stays: when both sides initiate at once, each side's response completes the other's
    // initiation, instead of both responses being dropped and the pair stalling until the retry.
    handshake::half& h = hs->_responder;
    h.clear();
    if (hs->_completed == &h) {
        hs->_completed = nullptr;
    }
    h.symmetric.copy_from(st);
    h.remote_ephemeral = remote_ephemeral;
    h.remote_index = msg.sender_index.get();
    hs->_latest_timestamp = timestamp;
    if (!hs->_last_initiation_consumption || now > *hs->_last_initiation_consumption) {
        hs->_last_initiation_consumption = now;
    }
    h.step = handshake::state::consumed_initiation;
    return {handshake_reason::ok, hs};
}

handshake_reason handshake::create_response(message_response& out, uint32_t local_index) noexcept {
    half& h = _responder;
    if (h.step != state::consumed_initiation) {
        return handshake_reason::wrong_state;
    }
    out = message_response{};
    out.type.set(spec::message_response_type);
    out.sender_index.set(local_index);
    out.receiver_index.set(h.remote_index);

    new_ephemeral(h);
    const auto noise_bytes = as_writable_bytes(out).subspan(response_noise_offset, response_noise_size);
    if (!noise::write_message2(h.symmetric, h.ephemeral_private, h.ephemeral_public, h.remote_ephemeral,
                               _peer->remote_static, _peer->preshared_key, {}, noise_bytes)) {
        h.clear();
        return handshake_reason::bad_dh;
    }
    h.ephemeral_private.wipe();  // no longer needed by the responder
    h.local_index = local_index;
    h.step = state::created_response;
    _completed = &h;
    return handshake_reason::ok;
}

handshake_reason handshake::consume_response(const message_response& msg) noexcept {
    half& h = _initiator;
    if (h.step != state::created_initiation) {
        return handshake_reason::wrong_state;
    }
    if (msg.receiver_index.get() != h.local_index) {
        return handshake_reason::wrong_index;
    }
    // Work on a copy: a response that fails to authenticate leaves our initiation standing.
    noise::symmetric_state st;
    st.copy_from(h.symmetric);
    const auto noise_bytes = as_bytes(msg).subspan(response_noise_offset, response_noise_size);
    public_key remote_ephemeral{};
    if (!noise::read_message2(st, h.ephemeral_private, _local->static_private, _peer->preshared_key, noise_bytes,
                              remote_ephemeral, {})) {
        return handshake_reason::bad_response;
    }
    h.symmetric.copy_from(st);
    h.ephemeral_private.wipe();
    h.remote_ephemeral = remote_ephemeral;
    h.remote_index = msg.sender_index.get();
    h.step = state::consumed_response;
    _completed = &h;
    return handshake_reason::ok;
}

bool handshake::begin_session(keypair& out, mono_time now) noexcept {
    half* h = _completed;
    if (h == nullptr) {
        // Both halves may have completed before the caller derived either: take what is left.
        h = _initiator.step == state::consumed_response ? &_initiator
            : _responder.step == state::created_response ? &_responder
                                                          : nullptr;
    }
    if (h == nullptr) {
        return false;
    }
    const bool initiator = h == &_initiator;
    if (initiator) {
        h->symmetric.split(out.send_key, out.recv_key);
    } else {
        h->symmetric.split(out.recv_key, out.send_key);
    }
    out.local_index = h->local_index;
    out.remote_index = h->remote_index;
    out.birth = now;
    out.is_initiator = initiator;
    out.send_counter.store(0, std::memory_order_relaxed);
    out.replay.reset();
    h->clear();
    _completed = nullptr;
    return true;
}

}  // namespace meshfwd::crypto
