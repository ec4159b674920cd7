// Noise IKpsk2 core against the snow/cacophony vector, WireGuard's handshake framing against
// the whitepaper formulas computed independently here, in-process handshakes (with and without
// PSK, failures, replays, floods) and the message parsers.
#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "crypto/messages.h"
#include "crypto/noise.h"
#include "crypto/noise_core.h"
#include "crypto/tai64n.h"
#include "crypto/transport.h"
#include "noise_test_util.h"
#include "test_data.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace meshfwd::crypto {
namespace {

using namespace std::chrono_literals;
using test::from_hex;
using test::to_hex;

secret32 secret_from(const std::vector<uint8_t>& bytes) {
    secret32 s;
    EXPECT_EQ(bytes.size(), 32u);
    std::memcpy(s.data(), bytes.data(), std::min<std::size_t>(32, bytes.size()));
    return s;
}

// ---------------------------------------------------------------------------------------------
// The cacophony vector: both messages and the transport messages, byte for byte.

TEST(NoiseVector, IKpsk2HandshakeAndTransport) {
    ASSERT_TRUE(crypto_init());
    const auto doc = test::load_json("noise_IKpsk2_25519_ChaChaPoly_BLAKE2s.json");
    ASSERT_TRUE(doc.is_object());
    const auto& vectors = doc.at("vectors");
    ASSERT_FALSE(vectors.empty());
    int checked = 0;
    for (const auto& v : vectors) {
        const std::string name = v.at("protocol_name").get<std::string>();
        ASSERT_EQ(name, spec::construction);
        const auto prologue = test::hex_field(v, "init_prologue");
        ASSERT_EQ(prologue, test::hex_field(v, "resp_prologue"));
        const secret32 psk = secret_from(from_hex(v.at("init_psks").at(0).get<std::string>()));
        const secret32 s_i = secret_from(test::hex_field(v, "init_static"));
        const secret32 e_i = secret_from(test::hex_field(v, "init_ephemeral"));
        const secret32 s_r = secret_from(test::hex_field(v, "resp_static"));
        const secret32 e_r = secret_from(test::hex_field(v, "resp_ephemeral"));
        const public_key s_r_pub = derive_public_key(s_r);
        ASSERT_EQ(to_hex(s_r_pub), v.at("init_remote_static").get<std::string>());
        const public_key s_i_pub = derive_public_key(s_i);
        const public_key e_i_pub = derive_public_key(e_i);
        const public_key e_r_pub = derive_public_key(e_r);
        const auto& messages = v.at("messages");
        ASSERT_GE(messages.size(), 2u);

        noise::symmetric_state ini;
        noise::symmetric_state res;
        noise::initialize_ikpsk2(ini, name, prologue, s_r_pub);
        noise::initialize_ikpsk2(res, name, prologue, s_r_pub);

        // -> e, es, s, ss
        const auto p0 = test::hex_field(messages[0], "payload");
        std::vector<uint8_t> m0(noise::message1_size(p0.size()));
        secret32 ss_i;
        ASSERT_TRUE(x25519(ss_i, s_i, s_r_pub));
        ASSERT_TRUE(noise::write_message1(ini, e_i, e_i_pub, s_r_pub, s_i_pub, ss_i, p0, m0));
        EXPECT_EQ(to_hex(m0), messages[0].at("ciphertext").get<std::string>());

        public_key re{};
        public_key rs{};
        ASSERT_TRUE(noise::read_message1_static(res, s_r, m0, re, rs));
        EXPECT_EQ(rs, s_i_pub);
        EXPECT_EQ(re, e_i_pub);
        secret32 ss_r;
        ASSERT_TRUE(x25519(ss_r, s_r, rs));
        std::vector<uint8_t> p0_read(m0.size() - noise::message1_size(0));
        ASSERT_TRUE(noise::read_message1_payload(res, ss_r, m0, p0_read));
        EXPECT_EQ(p0_read, p0);

        // <- e, ee, se, psk
        const auto p1 = test::hex_field(messages[1], "payload");
        std::vector<uint8_t> m1(noise::message2_size(p1.size()));
        ASSERT_TRUE(noise::write_message2(res, e_r, e_r_pub, re, rs, psk, p1, m1));
        EXPECT_EQ(to_hex(m1), messages[1].at("ciphertext").get<std::string>());
        std::vector<uint8_t> p1_read(m1.size() - noise::message2_size(0));
        public_key re2{};
        ASSERT_TRUE(noise::read_message2(ini, e_i, s_i, psk, m1, re2, p1_read));
        EXPECT_EQ(p1_read, p1);
        EXPECT_EQ(re2, e_r_pub);

        if (v.contains("handshake_hash")) {
            EXPECT_EQ(to_hex(ini.hash()), v.at("handshake_hash").get<std::string>());
            EXPECT_EQ(to_hex(res.hash()), v.at("handshake_hash").get<std::string>());
        }

        // Transport: initiator sends the even messages, responder the odd ones, nonces from 0.
        secret32 i2r;
        secret32 r2i;
        ini.split(i2r, r2i);
        secret32 i2r_r;
        secret32 r2i_r;
        res.split(i2r_r, r2i_r);
        EXPECT_TRUE(i2r == i2r_r);
        EXPECT_TRUE(r2i == r2i_r);
        uint64_t n_i = 0;
        uint64_t n_r = 0;
        for (std::size_t k = 2; k < messages.size(); ++k) {
            const auto payload = test::hex_field(messages[k], "payload");
            const bool from_initiator = (k % 2) == 0;
            std::vector<uint8_t> ct(payload.size() + 16);
            const uint64_t n = from_initiator ? n_i++ : n_r++;
            aead_encrypt(ct, payload, n, {}, from_initiator ? i2r : r2i);
            EXPECT_EQ(to_hex(ct), messages[k].at("ciphertext").get<std::string>()) << "message " << k;
            std::vector<uint8_t> back(payload.size());
            EXPECT_TRUE(aead_decrypt(back, ct, n, {}, from_initiator ? i2r_r : r2i_r));
            EXPECT_EQ(back, payload);
        }
        ++checked;
    }
    EXPECT_GE(checked, 1);
}

TEST(NoiseCore, ProtocolNameShorterThanHashIsPadded) {
    noise::symmetric_state st;
    st.initialize("Noise_NN");
    hash32 want{};
    std::memcpy(want.data(), "Noise_NN", 8);
    EXPECT_EQ(st.hash(), want);
}

// ---------------------------------------------------------------------------------------------
// WireGuard framing against the whitepaper formulas, computed here with the bare primitives.

std::span<const uint8_t> text(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

hash32 hash_of(std::initializer_list<std::span<const uint8_t>> parts) {
    hash32 out{};
    blake2s_hasher h;
    for (const auto& p : parts) {
        h.update(p);
    }
    h.final(out);
    return out;
}

TEST(WireGuard, InitiationMatchesWhitepaperFormulas) {
    test::test_pair pair(1, 2);
    const secret32 eph = test::fixed_key(77);
    const tai64n ts = tai64n::from_unix(1700000000, 123456789);
    pair.a.hs->inject_ephemeral_for_testing(eph);
    message_initiation msg;
    ASSERT_EQ(pair.a.hs->create_initiation(msg, 0xa1b2c3d4, ts), handshake_reason::ok);

    // Independent computation (whitepaper 5.4.2).
    const public_key& s_r = pair.b.identity.static_public;
    const public_key& s_i = pair.a.identity.static_public;
    hash32 ck_bytes = hash_of({text(spec::construction)});
    hash32 h = hash_of({ck_bytes, text(spec::identifier)});
    h = hash_of({h, s_r});
    const public_key e_pub = derive_public_key(eph);
    h = hash_of({h, e_pub});
    secret32 ck{std::span<const uint8_t, 32>(ck_bytes)};
    {
        secret32* o[1] = {&ck};
        kdf(o, ck.span(), e_pub);
    }
    secret32 dh;
    ASSERT_TRUE(x25519(dh, eph, s_r));
    secret32 k;
    {
        secret32* o[2] = {&ck, &k};
        kdf(o, ck.span(), dh.span());
    }
    std::array<uint8_t, 48> enc_static{};
    aead_encrypt(enc_static, s_i, 0, h, k);
    h = hash_of({h, enc_static});
    ASSERT_TRUE(x25519(dh, pair.a.identity.static_private, s_r));
    {
        secret32* o[2] = {&ck, &k};
        kdf(o, ck.span(), dh.span());
    }
    std::array<uint8_t, 28> enc_ts{};
    aead_encrypt(enc_ts, ts.bytes, 0, h, k);

    EXPECT_EQ(msg.type.get(), 1u);
    EXPECT_EQ(to_hex(as_bytes(msg).first(8)), "01000000d4c3b2a1");
    EXPECT_EQ(msg.ephemeral, e_pub);
    EXPECT_EQ(to_hex(msg.encrypted_static), to_hex(enc_static));
    EXPECT_EQ(to_hex(msg.encrypted_timestamp), to_hex(enc_ts));

    // mac1 = MAC(HASH("mac1----" || S_r), msg[0..116]) at offset 116.
    pair.a.maker->add_macs(msg, pair.t0);
    const hash32 mac1_key = hash_of({text("mac1----"), s_r});
    std::array<uint8_t, 16> mac1{};
    blake2s(mac1, as_bytes(msg).first(116), mac1_key);
    EXPECT_EQ(to_hex(msg.macs.mac1), to_hex(mac1));
    EXPECT_EQ(to_hex(msg.macs.mac2), std::string(32, '0'));
}

TEST(WireGuard, ResponseAndKeysMatchWhitepaperFormulas) {
    const secret32 psk = test::fixed_key(99);
    test::test_pair pair(3, 4, &psk, &psk);
    pair.a.hs->inject_ephemeral_for_testing(test::fixed_key(5));
    pair.b.hs->inject_ephemeral_for_testing(test::fixed_key(6));
    message_initiation init;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 1, tai64n::from_unix(1, 0)), handshake_reason::ok);
    ASSERT_EQ(consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0).reason, handshake_reason::ok);

    // Responder's chaining key and hash after message 1, recomputed.
    const public_key& s_r = pair.b.identity.static_public;
    hash32 ck_bytes = hash_of({text(spec::construction)});
    hash32 h = hash_of({ck_bytes, text(spec::identifier)});
    h = hash_of({h, s_r});
    h = hash_of({h, init.ephemeral});
    secret32 ck{std::span<const uint8_t, 32>(ck_bytes)};
    secret32 k;
    secret32 dh;
    {
        secret32* o[1] = {&ck};
        kdf(o, ck.span(), init.ephemeral);
    }
    public_key e_i{};
    std::memcpy(e_i.data(), init.ephemeral.data(), 32);
    ASSERT_TRUE(x25519(dh, pair.b.identity.static_private, e_i));
    {
        secret32* o[2] = {&ck, &k};
        kdf(o, ck.span(), dh.span());
    }
    h = hash_of({h, init.encrypted_static});
    ASSERT_TRUE(x25519(dh, pair.b.identity.static_private, pair.a.identity.static_public));
    {
        secret32* o[2] = {&ck, &k};
        kdf(o, ck.span(), dh.span());
    }
    h = hash_of({h, init.encrypted_timestamp});

    message_response resp;
    ASSERT_EQ(pair.b.hs->create_response(resp, 0x01020304), handshake_reason::ok);
    const secret32 e_r = test::fixed_key(6);
    const public_key e_r_pub = derive_public_key(e_r);
    h = hash_of({h, e_r_pub});
    {
        secret32* o[1] = {&ck};
        kdf(o, ck.span(), e_r_pub);
    }
    ASSERT_TRUE(x25519(dh, e_r, e_i));
    {
        secret32* o[1] = {&ck};
        kdf(o, ck.span(), dh.span());
    }
    ASSERT_TRUE(x25519(dh, e_r, pair.a.identity.static_public));
    {
        secret32* o[1] = {&ck};
        kdf(o, ck.span(), dh.span());
    }
    secret32 tau;
    {
        secret32* o[3] = {&ck, &tau, &k};
        kdf(o, ck.span(), psk.span());
    }
    h = hash_of({h, tau.span()});
    std::array<uint8_t, 16> empty{};
    aead_encrypt(empty, {}, 0, h, k);

    EXPECT_EQ(to_hex(as_bytes(resp).first(12)), "020000000403020101000000");
    EXPECT_EQ(resp.ephemeral, e_r_pub);
    EXPECT_EQ(to_hex(resp.encrypted_nothing), to_hex(empty));

    secret32 t1;
    secret32 t2;
    {
        secret32* o[2] = {&t1, &t2};
        kdf(o, ck.span(), {});
    }
    keypair kb;
    ASSERT_TRUE(pair.b.hs->begin_session(kb, pair.t0));
    EXPECT_TRUE(kb.recv_key == t1);
    EXPECT_TRUE(kb.send_key == t2);
    EXPECT_FALSE(kb.is_initiator);
    EXPECT_EQ(kb.local_index, 0x01020304u);
    EXPECT_EQ(kb.remote_index, 1u);

    ASSERT_EQ(pair.a.hs->consume_response(resp), handshake_reason::ok);
    keypair ka;
    ASSERT_TRUE(pair.a.hs->begin_session(ka, pair.t0));
    EXPECT_TRUE(ka.send_key == t1);
    EXPECT_TRUE(ka.recv_key == t2);
    EXPECT_TRUE(ka.is_initiator);
}

// ---------------------------------------------------------------------------------------------
// In-process handshakes.

void expect_transport_both_ways(keypair& ka, keypair& kb, mono_time now) {
    const std::vector<uint8_t> hello = {'h', 'e', 'l', 'l', 'o'};
    std::vector<uint8_t> wire(transport_message_size(hello.size()));
    std::vector<uint8_t> plain(wire.size());
    auto r = encapsulate(ka, hello, wire, now);
    ASSERT_EQ(r.reason, transport_reason::ok);
    auto d = decapsulate(kb, std::span<const uint8_t>(wire.data(), r.size), plain, now);
    ASSERT_EQ(d.reason, transport_reason::ok);
    EXPECT_EQ(d.size, 16u);
    EXPECT_TRUE(std::equal(hello.begin(), hello.end(), plain.begin()));
    r = encapsulate(kb, hello, wire, now);
    ASSERT_EQ(r.reason, transport_reason::ok);
    d = decapsulate(ka, std::span<const uint8_t>(wire.data(), r.size), plain, now);
    ASSERT_EQ(d.reason, transport_reason::ok);
    EXPECT_TRUE(std::equal(hello.begin(), hello.end(), plain.begin()));
}

TEST(Handshake, RoundTripWithoutPsk) {
    test::test_pair pair(10, 20);
    keypair ka;
    keypair kb;
    ASSERT_TRUE(pair.run_handshake(ka, kb, pair.t0, 1234, 5678));
    EXPECT_TRUE(ka.send_key == kb.recv_key);
    EXPECT_TRUE(ka.recv_key == kb.send_key);
    EXPECT_FALSE(ka.send_key == ka.recv_key);
    EXPECT_EQ(ka.local_index, 1234u);
    EXPECT_EQ(ka.remote_index, 5678u);
    EXPECT_EQ(kb.local_index, 5678u);
    EXPECT_EQ(kb.remote_index, 1234u);
    EXPECT_TRUE(ka.is_initiator);
    EXPECT_FALSE(kb.is_initiator);
    EXPECT_EQ(pair.a.hs->current_state(), handshake::state::zeroed);
    EXPECT_EQ(pair.b.hs->current_state(), handshake::state::zeroed);
    expect_transport_both_ways(ka, kb, pair.t0);
}

TEST(Handshake, RoundTripWithPsk) {
    const secret32 psk = test::fixed_key(42);
    test::test_pair pair(10, 20, &psk, &psk);
    keypair ka;
    keypair kb;
    ASSERT_TRUE(pair.run_handshake(ka, kb, pair.t0));
    EXPECT_TRUE(ka.send_key == kb.recv_key);
    EXPECT_TRUE(ka.recv_key == kb.send_key);
    expect_transport_both_ways(ka, kb, pair.t0);

    // The PSK changes the keys.
    test::test_pair plain(10, 20);
    keypair pa;
    keypair pb;
    ASSERT_TRUE(plain.run_handshake(pa, pb, plain.t0));
    EXPECT_FALSE(pa.send_key == ka.send_key);
}

// Both sides initiate at once (a mesh learning of a new node): each answers the other's
// initiation and keeps its own outstanding, so both responses complete, in one round trip, and
// each side ends with two working sessions (one per direction of initiation).
TEST(Handshake, CrossingInitiationsBothComplete) {
    test::test_pair pair(10, 20);
    message_initiation init_a;
    message_initiation init_b;
    ASSERT_EQ(pair.a.hs->create_initiation(init_a, 101), handshake_reason::ok);
    ASSERT_EQ(pair.b.hs->create_initiation(init_b, 201), handshake_reason::ok);

    // Each consumes the other's initiation and answers it.
    const auto ra = consume_initiation(pair.a.identity, init_b, pair.lookup_for_a(), pair.t0);
    ASSERT_EQ(ra.reason, handshake_reason::ok);
    ASSERT_EQ(ra.peer, pair.a.hs.get());
    const auto rb = consume_initiation(pair.b.identity, init_a, pair.lookup_for_b(), pair.t0);
    ASSERT_EQ(rb.reason, handshake_reason::ok);
    EXPECT_EQ(pair.a.hs->initiator_state(), handshake::state::created_initiation);
    EXPECT_EQ(pair.b.hs->initiator_state(), handshake::state::created_initiation);
    message_response resp_a;  // a answers b's initiation
    message_response resp_b;  // b answers a's initiation
    ASSERT_EQ(pair.a.hs->create_response(resp_a, 102), handshake_reason::ok);
    keypair a_responder;
    ASSERT_TRUE(pair.a.hs->begin_session(a_responder, pair.t0));
    ASSERT_EQ(pair.b.hs->create_response(resp_b, 202), handshake_reason::ok);
    keypair b_responder;
    ASSERT_TRUE(pair.b.hs->begin_session(b_responder, pair.t0));

    // The responses still complete the initiations they answer.
    ASSERT_EQ(pair.a.hs->consume_response(resp_b), handshake_reason::ok);
    keypair a_initiator;
    ASSERT_TRUE(pair.a.hs->begin_session(a_initiator, pair.t0));
    ASSERT_EQ(pair.b.hs->consume_response(resp_a), handshake_reason::ok);
    keypair b_initiator;
    ASSERT_TRUE(pair.b.hs->begin_session(b_initiator, pair.t0));

    EXPECT_TRUE(a_initiator.is_initiator);
    EXPECT_FALSE(a_responder.is_initiator);
    EXPECT_EQ(a_initiator.local_index, 101u);
    EXPECT_EQ(a_initiator.remote_index, 202u);
    EXPECT_EQ(b_responder.local_index, 202u);
    EXPECT_EQ(b_responder.remote_index, 101u);
    EXPECT_EQ(b_initiator.local_index, 201u);
    EXPECT_EQ(b_initiator.remote_index, 102u);
    EXPECT_EQ(pair.a.hs->current_state(), handshake::state::zeroed);
    EXPECT_EQ(pair.b.hs->current_state(), handshake::state::zeroed);
    expect_transport_both_ways(a_initiator, b_responder, pair.t0);
    expect_transport_both_ways(b_initiator, a_responder, pair.t0);
    EXPECT_FALSE(a_initiator.send_key == b_initiator.recv_key);
}

// The same crossing where both halves complete before the caller derives either session.
TEST(Handshake, CrossingBothHalvesCompleteBeforeBeginSession) {
    test::test_pair pair(10, 20);
    message_initiation init_a;
    message_initiation init_b;
    ASSERT_EQ(pair.a.hs->create_initiation(init_a, 101), handshake_reason::ok);
    ASSERT_EQ(pair.b.hs->create_initiation(init_b, 201), handshake_reason::ok);
    ASSERT_EQ(consume_initiation(pair.b.identity, init_a, pair.lookup_for_b(), pair.t0).reason, handshake_reason::ok);
    message_response resp_b;
    ASSERT_EQ(pair.b.hs->create_response(resp_b, 202), handshake_reason::ok);
    ASSERT_EQ(consume_initiation(pair.a.identity, init_b, pair.lookup_for_a(), pair.t0).reason, handshake_reason::ok);
    message_response resp_a;
    ASSERT_EQ(pair.a.hs->create_response(resp_a, 102), handshake_reason::ok);
    ASSERT_EQ(pair.a.hs->consume_response(resp_b), handshake_reason::ok);
    keypair first;
    keypair second;
    keypair none;
    ASSERT_TRUE(pair.a.hs->begin_session(first, pair.t0));
    ASSERT_TRUE(pair.a.hs->begin_session(second, pair.t0));
    EXPECT_FALSE(pair.a.hs->begin_session(none, pair.t0));
    EXPECT_TRUE(first.is_initiator);  // the step completed last comes first
    EXPECT_FALSE(second.is_initiator);
    EXPECT_EQ(second.local_index, 102u);
}

// A new initiation of ours replaces our old one, but not a responder half in progress.
TEST(Handshake, NewInitiationKeepsResponderHalf) {
    test::test_pair pair(10, 20);
    message_initiation init_b;
    ASSERT_EQ(pair.b.hs->create_initiation(init_b, 201), handshake_reason::ok);
    ASSERT_EQ(consume_initiation(pair.a.identity, init_b, pair.lookup_for_a(), pair.t0).reason, handshake_reason::ok);
    message_initiation init_a;
    ASSERT_EQ(pair.a.hs->create_initiation(init_a, 101), handshake_reason::ok);
    EXPECT_EQ(pair.a.hs->responder_state(), handshake::state::consumed_initiation);
    message_response resp_a;
    ASSERT_EQ(pair.a.hs->create_response(resp_a, 102), handshake_reason::ok);
    ASSERT_EQ(pair.b.hs->consume_response(resp_a), handshake_reason::ok);
    keypair ka;
    keypair kb;
    ASSERT_TRUE(pair.a.hs->begin_session(ka, pair.t0));
    ASSERT_TRUE(pair.b.hs->begin_session(kb, pair.t0));
    expect_transport_both_ways(kb, ka, pair.t0);
    EXPECT_EQ(pair.a.hs->initiator_state(), handshake::state::created_initiation);
}

TEST(Handshake, WrongPskFailsCleanlyAndKeepsInitiation) {
    const secret32 psk_a = test::fixed_key(42);
    const secret32 psk_b = test::fixed_key(43);
    test::test_pair pair(10, 20, &psk_a, &psk_b);
    message_initiation init;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 7), handshake_reason::ok);
    ASSERT_EQ(consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0).reason, handshake_reason::ok);
    message_response resp;
    ASSERT_EQ(pair.b.hs->create_response(resp, 8), handshake_reason::ok);
    EXPECT_EQ(pair.a.hs->consume_response(resp), handshake_reason::bad_response);
    EXPECT_EQ(pair.a.hs->current_state(), handshake::state::created_initiation);
    keypair ka;
    EXPECT_FALSE(pair.a.hs->begin_session(ka, pair.t0));
}

TEST(Handshake, OnePskMissingFails) {
    const secret32 psk = test::fixed_key(42);
    test::test_pair pair(10, 20, &psk, nullptr);
    keypair ka;
    keypair kb;
    message_initiation init;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 7), handshake_reason::ok);
    ASSERT_EQ(consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0).reason, handshake_reason::ok);
    message_response resp;
    ASSERT_EQ(pair.b.hs->create_response(resp, 8), handshake_reason::ok);
    EXPECT_EQ(pair.a.hs->consume_response(resp), handshake_reason::bad_response);
}

TEST(Handshake, WrongResponderStaticKeyFails) {
    test::test_pair pair(10, 20);
    // a believes the responder has another key: b cannot decrypt a's static.
    static_identity other;
    ASSERT_TRUE(other.set_private_key(test::fixed_key(30)));
    peer_config wrong;
    ASSERT_TRUE(wrong.init(pair.a.identity, other.static_public));
    handshake hs(pair.a.identity, wrong);
    message_initiation init;
    ASSERT_EQ(hs.create_initiation(init, 7), handshake_reason::ok);
    const auto r = consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0);
    EXPECT_EQ(r.reason, handshake_reason::bad_static);
    EXPECT_EQ(r.peer, nullptr);
    EXPECT_EQ(pair.b.hs->current_state(), handshake::state::zeroed);
}

TEST(Handshake, UnknownInitiatorRefused) {
    test::test_pair pair(10, 20);
    message_initiation init;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 7), handshake_reason::ok);
    const auto r = consume_initiation(pair.b.identity, init, [](const public_key&) -> handshake* { return nullptr; },
                                      pair.t0);
    EXPECT_EQ(r.reason, handshake_reason::unknown_peer);
}

TEST(Handshake, ResponderWithWrongInitiatorKeyFails) {
    // b's configuration for "a" holds another key (static_static differs): timestamp fails.
    test::test_pair pair(10, 20);
    static_identity other;
    ASSERT_TRUE(other.set_private_key(test::fixed_key(31)));
    peer_config cfg;
    ASSERT_TRUE(cfg.init(pair.b.identity, other.static_public));
    cfg.remote_static = pair.a.identity.static_public;  // lookup matches, DH does not
    handshake hs(pair.b.identity, cfg);
    message_initiation init;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 7), handshake_reason::ok);
    const auto r = consume_initiation(pair.b.identity, init, [&](const public_key&) { return &hs; }, pair.t0);
    EXPECT_EQ(r.reason, handshake_reason::bad_timestamp);
}

TEST(Handshake, TamperedInitiationAndResponseRefused) {
    test::test_pair pair(10, 20);
    message_initiation init;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 7), handshake_reason::ok);
    for (std::size_t i = 8; i < 116; i += 7) {
        message_initiation bad = init;
        as_writable_bytes(bad)[i] ^= 0x01;
        const auto r = consume_initiation(pair.b.identity, bad, pair.lookup_for_b(), pair.t0);
        EXPECT_NE(r.reason, handshake_reason::ok) << "byte " << i;
    }
    ASSERT_EQ(consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0).reason, handshake_reason::ok);
    message_response resp;
    ASSERT_EQ(pair.b.hs->create_response(resp, 8), handshake_reason::ok);
    for (std::size_t i = 12; i < 60; i += 5) {
        message_response bad = resp;
        as_writable_bytes(bad)[i] ^= 0x80;
        EXPECT_EQ(pair.a.hs->consume_response(bad), handshake_reason::bad_response) << "byte " << i;
    }
    message_response wrong_index = resp;
    wrong_index.receiver_index.set(99);
    EXPECT_EQ(pair.a.hs->consume_response(wrong_index), handshake_reason::wrong_index);
    EXPECT_EQ(pair.a.hs->consume_response(resp), handshake_reason::ok);
    // A second copy of the response finds no initiation outstanding.
    EXPECT_EQ(pair.a.hs->consume_response(resp), handshake_reason::wrong_state);
}

TEST(Handshake, WrongStateTransitions) {
    test::test_pair pair(10, 20);
    message_response resp;
    EXPECT_EQ(pair.b.hs->create_response(resp, 1), handshake_reason::wrong_state);
    EXPECT_EQ(pair.a.hs->consume_response(resp), handshake_reason::wrong_state);
    keypair kp;
    EXPECT_FALSE(pair.a.hs->begin_session(kp, pair.t0));
    static_identity none;
    peer_config cfg;
    EXPECT_FALSE(cfg.init(none, pair.a.identity.static_public));
    handshake hs(none, cfg);
    message_initiation init;
    EXPECT_EQ(hs.create_initiation(init, 1), handshake_reason::no_identity);
    EXPECT_EQ(consume_initiation(none, init, pair.lookup_for_b(), pair.t0).reason, handshake_reason::no_identity);
}

TEST(Handshake, LowOrderPeerKeyRejected) {
    test::test_pair pair(10, 20);
    public_key zero{};  // the identity point: DH is all zeros
    peer_config cfg;
    EXPECT_FALSE(cfg.init(pair.a.identity, zero));
    handshake hs(pair.a.identity, cfg);
    message_initiation init;
    EXPECT_EQ(hs.create_initiation(init, 1), handshake_reason::bad_dh);
    // A low-order ephemeral in an initiation.
    ASSERT_EQ(pair.a.hs->create_initiation(init, 7), handshake_reason::ok);
    init.ephemeral.fill(0);
    EXPECT_EQ(consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0).reason,
              handshake_reason::bad_static);
}

TEST(Handshake, ReplayedInitiationRefused) {
    test::test_pair pair(10, 20);
    message_initiation init;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 7, tai64n::from_unix(2000, 0)), handshake_reason::ok);
    ASSERT_EQ(consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0).reason, handshake_reason::ok);
    // The same bytes again, even much later: replayed.
    EXPECT_EQ(consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0 + 10s).reason,
              handshake_reason::replayed);
    // An older timestamp: replayed. The same second but an earlier whitened nanosecond: replayed.
    ASSERT_EQ(pair.a.hs->create_initiation(init, 8, tai64n::from_unix(1999, 999999999)), handshake_reason::ok);
    EXPECT_EQ(consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0 + 11s).reason,
              handshake_reason::replayed);
    // A newer one: accepted, and the response state belongs to it.
    ASSERT_EQ(pair.a.hs->create_initiation(init, 9, tai64n::from_unix(2000, 1u << 24)), handshake_reason::ok);
    const auto r = consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0 + 12s);
    EXPECT_EQ(r.reason, handshake_reason::ok);
    EXPECT_EQ(pair.b.hs->remote_index(), 9u);
    EXPECT_EQ(pair.b.hs->latest_timestamp(), tai64n::from_unix(2000, 1u << 24));
}

TEST(Handshake, InitiationFloodRefused) {
    test::test_pair pair(10, 20);
    message_initiation init;
    int64_t sec = 3000;
    ASSERT_EQ(pair.a.hs->create_initiation(init, 1, tai64n::from_unix(sec++, 0)), handshake_reason::ok);
    ASSERT_EQ(consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0).reason, handshake_reason::ok);
    // 19 ms later: flood (1/50 s = 20 ms).
    ASSERT_EQ(pair.a.hs->create_initiation(init, 2, tai64n::from_unix(sec++, 0)), handshake_reason::ok);
    EXPECT_EQ(consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0 + 19ms).reason,
              handshake_reason::flood);
    // The flood did not record the timestamp: the same message 20 ms after the first is accepted.
    EXPECT_EQ(consume_initiation(pair.b.identity, init, pair.lookup_for_b(), pair.t0 + 20ms).reason,
              handshake_reason::ok);
}

TEST(Handshake, SimultaneousInitiationsLastOneWins) {
    test::test_pair pair(10, 20);
    // b also has a handshake toward a; a's initiation replaces b's outstanding one.
    message_initiation from_b;
    ASSERT_EQ(pair.b.hs->create_initiation(from_b, 50), handshake_reason::ok);
    keypair ka;
    keypair kb;
    ASSERT_TRUE(pair.run_handshake(ka, kb, pair.t0));
    expect_transport_both_ways(ka, kb, pair.t0);
}

TEST(Handshake, ManyHandshakesDistinctKeys) {
    test::test_pair pair(10, 20);
    keypair first_a;
    keypair first_b;
    ASSERT_TRUE(pair.run_handshake(first_a, first_b, pair.t0, 1, 2, tai64n::from_unix(5000, 0)));
    keypair ka;
    keypair kb;
    // Within the same 2^24 ns timestamp bucket a second initiation is a replay (as in the kernel).
    message_initiation again;
    ASSERT_EQ(pair.a.hs->create_initiation(again, 3, tai64n::from_unix(5000, 100)), handshake_reason::ok);
    EXPECT_EQ(consume_initiation(pair.b.identity, again, pair.lookup_for_b(), pair.t0 + 1s).reason,
              handshake_reason::replayed);
    ASSERT_TRUE(pair.run_handshake(ka, kb, pair.t0 + 1s, 1, 2, tai64n::from_unix(5001, 0)));
    EXPECT_FALSE(ka.send_key == first_a.send_key);
    EXPECT_EQ(ka.birth, pair.t0 + 1s);
}

// ---------------------------------------------------------------------------------------------
// Parsers: every length, wrong type, oversize, garbage.

template <typename Message, typename Parse>
void check_parser(uint32_t type, Parse parse) {
    std::vector<uint8_t> buf(sizeof(Message) + 8, 0xee);
    store_le32(buf.data(), type);
    Message out;
    for (std::size_t len = 0; len < sizeof(Message); ++len) {
        const auto r = parse(std::span<const uint8_t>(buf.data(), len), out);
        if (len == 0) {
            EXPECT_EQ(r, message_reason::empty);
        } else {
            EXPECT_EQ(r, message_reason::truncated) << "len " << len;
        }
        EXPECT_NE(classify_message(std::span<const uint8_t>(buf.data(), len)).reason, message_reason::ok);
    }
    EXPECT_EQ(parse(std::span<const uint8_t>(buf.data(), sizeof(Message)), out), message_reason::ok);
    EXPECT_EQ(classify_message(std::span<const uint8_t>(buf.data(), sizeof(Message))).reason, message_reason::ok);
    EXPECT_EQ(static_cast<uint32_t>(classify_message(std::span<const uint8_t>(buf.data(), sizeof(Message))).kind),
              type);
    for (std::size_t extra = 1; extra <= 8; ++extra) {
        EXPECT_EQ(parse(std::span<const uint8_t>(buf.data(), sizeof(Message) + extra), out), message_reason::oversized);
        EXPECT_EQ(classify_message(std::span<const uint8_t>(buf.data(), sizeof(Message) + extra)).reason,
                  message_reason::oversized);
    }
    for (const uint32_t wrong : {0u, type + 1, type | 0x100u, type | 0x01000000u, 0xffffffffu}) {
        store_le32(buf.data(), wrong);
        EXPECT_EQ(parse(std::span<const uint8_t>(buf.data(), sizeof(Message)), out), message_reason::wrong_type);
    }
}

TEST(Messages, ParsersRejectEveryBadLength) {
    check_parser<message_initiation>(1, [](auto s, auto& o) { return parse_initiation(s, o); });
    check_parser<message_response>(2, [](auto s, auto& o) { return parse_response(s, o); });
    check_parser<message_cookie_reply>(3, [](auto s, auto& o) { return parse_cookie_reply(s, o); });
}

TEST(Messages, TransportHeaderParser) {
    std::vector<uint8_t> buf(64, 0);
    store_le32(buf.data(), 4);
    store_le32(buf.data() + 4, 0x11223344);
    store_le64(buf.data() + 8, 0x0102030405060708ULL);
    message_transport_header h;
    for (std::size_t len = 1; len < 32; ++len) {
        EXPECT_EQ(parse_transport_header(std::span<const uint8_t>(buf.data(), len), h), message_reason::truncated);
    }
    EXPECT_EQ(parse_transport_header({}, h), message_reason::empty);
    ASSERT_EQ(parse_transport_header(std::span<const uint8_t>(buf.data(), 32), h), message_reason::ok);
    EXPECT_EQ(h.receiver_index.get(), 0x11223344u);
    EXPECT_EQ(h.counter.get(), 0x0102030405060708ULL);
    std::vector<uint8_t> huge(32 + limits::max_transport_payload + 1, 0);
    store_le32(huge.data(), 4);
    EXPECT_EQ(parse_transport_header(huge, h), message_reason::oversized);
    buf[1] = 1;
    EXPECT_EQ(parse_transport_header(std::span<const uint8_t>(buf.data(), 32), h), message_reason::wrong_type);
    EXPECT_EQ(classify_message(std::span<const uint8_t>(buf.data(), 32)).reason, message_reason::unknown_type);
}

TEST(Messages, GarbageNeverCrashes) {
    std::mt19937_64 rng(7);
    std::vector<uint8_t> buf(300);
    message_initiation i;
    message_response r;
    message_cookie_reply c;
    message_transport_header t;
    for (int n = 0; n < 20000; ++n) {
        const std::size_t len = rng() % buf.size();
        for (auto& b : buf) {
            b = static_cast<uint8_t>(rng());
        }
        if (n % 3 == 0) {
            buf[0] = static_cast<uint8_t>(1 + rng() % 4);
            buf[1] = buf[2] = buf[3] = 0;
        }
        const auto cls = classify_message(std::span<const uint8_t>(buf.data(), len));
        const auto s = std::span<const uint8_t>(buf.data(), len);
        const bool any_ok = parse_initiation(s, i) == message_reason::ok || parse_response(s, r) == message_reason::ok ||
                            parse_cookie_reply(s, c) == message_reason::ok ||
                            parse_transport_header(s, t) == message_reason::ok;
        EXPECT_EQ(any_ok, cls.reason == message_reason::ok);
    }
}

TEST(Messages, ReasonNames) {
    EXPECT_EQ(to_string(message_reason::truncated), "truncated");
    EXPECT_EQ(to_string(handshake_reason::flood), "flood");
    EXPECT_EQ(n_handshake_reasons, 11u);
    EXPECT_FALSE(describe(handshake_reason::replayed).empty());
}

}  // namespace
}  // namespace meshfwd::crypto
