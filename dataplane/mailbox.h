// Messages from a worker to the control thread, over SPSC rings with a preallocated pool.
//
// Threads: each worker owns one mailbox as the producer of `to_control` and the consumer of the
// free lists; the control thread is the consumer of `to_control` and the producer of the free
// lists (it returns every message it has handled). Nothing is allocated after construction: a
// worker that finds no free message counts the drop (ring_full, staged_ring_full).
//
// Two sizes of message: `capacity` small ones with their payload inline (up to
// mailbox_small_payload: handshakes, notices, and packets of the usual MTUs), and, only when the
// MTU is larger than that, `large_capacity` more whose payload holds a packet of the MTU (staged
// packets and mesh frames of jumbo MTUs). So a default MTU costs exactly what it did, and a
// jumbo one 64 x MTU more per worker, not 1024 x MTU.
#pragma once
#include "dataplane/peer.h"
#include "lib/spsc_ring.h"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace meshfwd::dataplane {

enum class mailbox_kind : uint8_t {
    handshake,         // a handshake message (type 1, 2 or 3) with its source; mac1 checked
    staged_packet,     // an IP packet for a peer that has no usable session yet
    endpoint_changed,  // an authenticated packet came from a new source address
    session_confirmed, // the peer sent on our unconfirmed ("next") keypair
    mesh_frame,        // a decrypted non-IP payload from a meshfwd peer
    source_gone,       // a send from `local` failed: the address is no longer ours
};

// Which of the worker's sockets a datagram came in on (the control thread answers from it).
enum class socket_role : uint8_t { listen, lane };

// Payload bytes of a small message (the message is 2 KiB in all).
inline constexpr std::size_t mailbox_small_payload = 2048 - 128;

struct mailbox_message {
    mailbox_kind kind{};
    socket_role role = socket_role::listen;
    uint16_t worker = 0;
    uint32_t length = 0;           // payload bytes
    peer_runtime* peer = nullptr;  // staged_packet, endpoint_changed, session_confirmed, mesh_frame
    session* sess = nullptr;       // session_confirmed
    socket_address source;         // handshake, endpoint_changed
    local_address local;           // handshake, endpoint_changed: our address it came to;
                                   // source_gone: the address a send could not use
    uint8_t* payload = inline_payload;  // inline_payload, or a large message's own buffer
    alignas(16) uint8_t inline_payload[mailbox_small_payload];

    mailbox_message() = default;
    mailbox_message(const mailbox_message&) = delete;
    mailbox_message& operator=(const mailbox_message&) = delete;
    [[nodiscard]] bool large() const noexcept { return payload != inline_payload; }
};

class mailbox {
public:
    static constexpr std::size_t capacity = 1024;       // small messages
    static constexpr std::size_t large_capacity = 64;   // large ones, when the MTU needs them

    // Payloads up to max(max_payload, mailbox_small_payload) bytes fit a message.
    explicit mailbox(std::size_t max_payload = mailbox_small_payload)
        : _storage(std::make_unique<mailbox_message[]>(capacity)),
          _max_payload(max_payload > mailbox_small_payload ? (max_payload + 63) / 64 * 64 : mailbox_small_payload) {
        // Runs before the worker thread starts, so pushing as "control" here is safe.
        for (std::size_t i = 0; i < capacity; ++i) {
            (void)free_small.try_push(&_storage[i]);
        }
        if (_max_payload > mailbox_small_payload) {
            _large_storage = std::make_unique<mailbox_message[]>(large_capacity);
            _large_payloads = std::make_unique<uint8_t[]>(large_capacity * _max_payload);
            for (std::size_t i = 0; i < large_capacity; ++i) {
                _large_storage[i].payload = _large_payloads.get() + i * _max_payload;
                (void)free_large.try_push(&_large_storage[i]);
            }
        }
    }
    mailbox(const mailbox&) = delete;
    mailbox& operator=(const mailbox&) = delete;

    // The largest payload a message takes.
    [[nodiscard]] std::size_t max_payload() const noexcept { return _max_payload; }

    // Worker: a free message for a payload of `length` bytes, or nullptr when every message of
    // that size is in flight (or length > max_payload()).
    [[nodiscard]] mailbox_message* acquire(std::size_t length = 0) noexcept {
        mailbox_message* m = nullptr;
        if (length <= mailbox_small_payload) {
            return free_small.try_pop(m) ? m : nullptr;
        }
        return length <= _max_payload && free_large.try_pop(m) ? m : nullptr;
    }
    // Worker: hands a filled message over. Cannot fail: there are as many slots as messages.
    void post(mailbox_message* m) noexcept { (void)to_control.try_push(m); }

    // Control thread.
    [[nodiscard]] mailbox_message* receive() noexcept {
        mailbox_message* m = nullptr;
        return to_control.try_pop(m) ? m : nullptr;
    }
    void release(mailbox_message* m) noexcept { (void)(m->large() ? free_large.try_push(m) : free_small.try_push(m)); }
    [[nodiscard]] std::size_t pending() const noexcept { return to_control.size_approx(); }

private:
    std::unique_ptr<mailbox_message[]> _storage;
    std::unique_ptr<mailbox_message[]> _large_storage;
    std::unique_ptr<uint8_t[]> _large_payloads;
    std::size_t _max_payload;
    spsc_ring<mailbox_message*, 2 * capacity> to_control;  // room for every message of both kinds
    spsc_ring<mailbox_message*, capacity> free_small;
    spsc_ring<mailbox_message*, large_capacity> free_large;
    static_assert(capacity + large_capacity <= 2 * capacity);
};

}  // namespace meshfwd::dataplane
