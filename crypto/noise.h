// WireGuard's handshake: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s with prologue
// "WireGuard v1 zx2c4 Jason@zx2c4.com", a TAI64N payload in the initiation and an empty one in
// the response, framed in message types 1 and 2 (messages.h). Byte-compatible with the Linux
// module and wireguard-go.
//
// Threads: everything here belongs to the control thread (handshake objects are per-peer,
// mutable and unsynchronised). The keypair it produces is then published to the workers.
//
// mac1/mac2 are NOT computed here: cookie.h does them. Sender: create_* then
// cookie_maker::add_macs. Receiver: cookie_checker::check_mac1 (and mac2 under load) before
// consume_*.
//
// Initiator                                           Responder
//   handshake::create_initiation(msg, idx_i)
//   cookie_maker::add_macs(msg)            --type 1-->  cookie_checker::check_mac1 (+mac2)
//                                                      consume_initiation(identity, msg, lookup, now)
//                                                        -> {handshake* hs, reason}
//                                                      hs->create_response(resp, idx_r)
//                                          <--type 2--  cookie_maker::add_macs(resp)
//   check_mac1; handshake::consume_response(resp)      hs->begin_session(kp, now)  (is_initiator=false)
//   handshake::begin_session(kp, now)                   (must not send data until the first
//   (is_initiator=true; may send at once)               transport message from the initiator
//                                                        arrives on kp: key confirmation)
#pragma once

#include "lib/reasons.h"

#include "crypto/blake2s.h"
#include "crypto/keypair.h"
#include "crypto/messages.h"
#include "crypto/noise_core.h"
#include "crypto/secret.h"
#include "crypto/tai64n.h"
#include "crypto/x25519.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

namespace meshfwd::crypto {

#define MESHFWD_HANDSHAKE_REASONS(X)                                                         \
    X(ok, "accepted")                                                                        \
    X(no_identity, "no local private key configured")                                        \
    X(bad_dh, "a Diffie-Hellman result was all zeros (low-order point)")                     \
    X(bad_static, "static key did not authenticate (not for us, corrupted, low-order E)") \
    X(unknown_peer, "the initiator's static key belongs to no configured peer")              \
    X(bad_timestamp, "encrypted timestamp did not authenticate")                             \
    X(replayed, "timestamp not newer than the peer's last accepted initiation")             \
    X(flood, "initiation sooner than 1/INITIATIONS_PER_SECOND after the last one")          \
    X(wrong_state, "no initiation outstanding (or no initiation consumed) for this step")  \
    X(wrong_index, "receiver index is not the index of our outstanding initiation")         \
    X(bad_response, "response did not authenticate (wrong static key or PSK)")

MESHFWD_DEFINE_REASONS(handshake_reason, MESHFWD_HANDSHAKE_REASONS)

// HASH(label || public key): mac1 key (label "mac1----") and cookie key (label "cookie--").
[[nodiscard]] hash32 derive_mac1_key(const public_key& key) noexcept;
[[nodiscard]] hash32 derive_cookie_key(const public_key& key) noexcept;

// Our static key pair and the values every handshake reuses. Control thread.
struct static_identity {
    secret32 static_private;
    public_key static_public{};
    hash32 mac1_key{};    // HASH("mac1----" || static_public): checks mac1 of messages to us
    hash32 cookie_key{};  // HASH("cookie--" || static_public): encrypts our cookie replies

    // Clamps and stores the key, derives the rest. False for an all-zero key.
    [[nodiscard]] bool set_private_key(const secret32& private_key) noexcept;
    [[nodiscard]] bool has_identity() const noexcept { return !static_private.is_zero(); }
};

// One remote peer as the handshake needs it. Recompute (init) when our identity changes.
struct peer_config {
    public_key remote_static{};
    secret32 preshared_key;   // zeros when none (WireGuard's default)
    secret32 static_static;   // DH(our private, remote_static), precomputed
    hash32 mac1_key{};        // HASH("mac1----" || remote_static): mac1 of messages we send it
    hash32 cookie_key{};      // HASH("cookie--" || remote_static): decrypts its cookie replies

    // False when the DH is all zeros (low-order remote key): no handshake can succeed.
    [[nodiscard]] bool init(const static_identity& local, const public_key& remote,
                            const secret32* psk = nullptr) noexcept;
};

class handshake;

// Maps a decrypted initiator static key to that peer's handshake (nullptr: unknown peer).
using peer_lookup = std::function<handshake*(const public_key&)>;

struct initiation_result {
    handshake_reason reason = handshake_reason::ok;
    handshake* peer = nullptr;  // set when ok: call peer->create_response next
};

// Per-peer handshake state machine (kernel noise_handshake). Control thread. `local` and `peer`
// must outlive it. It holds two independent halves, so that a crossing handshake (both sides
// initiating at once, the normal case when a mesh learns of a new node) completes in one round
// trip: answering the peer's initiation keeps our own outstanding, and the peer's response to it
// still completes it. The messages and the protocol's rules are unchanged.
//   initiator half: zeroed → created_initiation → consumed_response → (begin_session)
//   responder half: zeroed → consumed_initiation → created_response → (begin_session)
class handshake {
public:
    enum class state : uint8_t { zeroed, created_initiation, consumed_initiation, created_response, consumed_response };

    handshake(const static_identity& local, const peer_config& peer) noexcept : _local(&local), _peer(&peer) {}
    ~handshake() { clear(); }
    handshake(const handshake&) = delete;
    handshake& operator=(const handshake&) = delete;

    // Initiator. Fills every field but the macs (zeroed); `local_index` becomes sender_index.
    // Replaces any initiation of ours still outstanding; leaves the responder half alone.
    // The timestamp overload is for tests; the other uses tai64n::now().
    [[nodiscard]] handshake_reason create_initiation(message_initiation& out, uint32_t local_index) noexcept;
    [[nodiscard]] handshake_reason create_initiation(message_initiation& out, uint32_t local_index,
                                                     const tai64n& timestamp) noexcept;
    // Initiator. The caller found this handshake by msg.receiver_index and checked mac1.
    [[nodiscard]] handshake_reason consume_response(const message_response& msg) noexcept;
    // Responder, after consume_initiation() returned this handshake. Macs left zeroed.
    [[nodiscard]] handshake_reason create_response(message_response& out, uint32_t local_index) noexcept;
    // Derives the keypair (keys, indexes, birth = now, role) of the half that just completed
    // (consume_response: initiator; create_response: responder) and wipes that half's secrets.
    // False when no half is complete.
    [[nodiscard]] bool begin_session(keypair& out, mono_time now) noexcept;

    // Forgets any handshake in progress, both halves (keeps the replay/flood memory of the peer).
    void clear() noexcept;

    // The responder half's state while it is in progress, else the initiator half's.
    [[nodiscard]] state current_state() const noexcept {
        return _responder.step != state::zeroed ? _responder.step : _initiator.step;
    }
    [[nodiscard]] state initiator_state() const noexcept { return _initiator.step; }
    [[nodiscard]] state responder_state() const noexcept { return _responder.step; }
    // Our outstanding initiation's sender index (initiator half).
    [[nodiscard]] uint32_t local_index() const noexcept { return _initiator.local_index; }
    // The initiator's index from the initiation we consumed (responder half).
    [[nodiscard]] uint32_t remote_index() const noexcept { return _responder.remote_index; }
    [[nodiscard]] const peer_config& peer() const noexcept { return *_peer; }
    [[nodiscard]] const tai64n& latest_timestamp() const noexcept { return _latest_timestamp; }

    // Test hook: the next ephemeral key generated is this one (then random again).
    void inject_ephemeral_for_testing(const secret32& ephemeral_private) noexcept;

private:
    friend initiation_result consume_initiation(const static_identity&, const message_initiation&,
                                                const peer_lookup&, mono_time) noexcept;

    // One direction's handshake in progress.
    struct half {
        state step = state::zeroed;
        noise::symmetric_state symmetric;
        secret32 ephemeral_private;
        public_key ephemeral_public{};
        public_key remote_ephemeral{};
        uint32_t local_index = 0;
        uint32_t remote_index = 0;
        void clear() noexcept;
    };

    void new_ephemeral(half& h) noexcept;

    const static_identity* _local;
    const peer_config* _peer;
    half _initiator;
    half _responder;
    half* _completed = nullptr;  // the half whose last step just completed, for begin_session
    // Replay and flood protection for initiations from this peer (survive clear()).
    tai64n _latest_timestamp{};
    std::optional<mono_time> _last_initiation_consumption;
    std::optional<secret32> _injected_ephemeral;
};

// Responder: decrypts and authenticates an initiation (whose mac1 the caller checked), finds the
// peer, refuses a timestamp not newer than that peer's last accepted one and an initiation within
// 1/INITIATIONS_PER_SECOND of the last accepted one (kernel semantics), then stores the state in
// the peer's handshake's responder half (consumed_initiation, remote index = msg.sender_index);
// an initiation of ours to that peer stays outstanding. On any refusal no handshake is changed.
[[nodiscard]] initiation_result consume_initiation(const static_identity& local, const message_initiation& msg,
                                                   const peer_lookup& lookup, mono_time now) noexcept;

}  // namespace meshfwd::crypto
