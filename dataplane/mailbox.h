// Messages from a worker to the control thread, over SPSC rings with a preallocated pool.
//
// Threads: each worker owns one mailbox as the producer of `to_control` and the consumer of
// `free_messages`; the control thread is the consumer of `to_control` and the producer of
// `free_messages` (it returns every message it has handled). Nothing is allocated after
// construction: a worker that finds no free message counts the drop as ring_full.
#pragma once
#include "dataplane/peer.h"
#include "lib/spsc_ring.h"

#include <cstdint>
#include <memory>

namespace meshfwd::dataplane {

enum class mailbox_kind : uint8_t {
    handshake,         // a handshake message (type 1, 2 or 3) with its source; mac1 checked
    staged_packet,     // an IP packet for a peer that has no usable session yet
    endpoint_changed,  // an authenticated packet came from a new source address
    session_confirmed, // the peer sent on our unconfirmed ("next") keypair
    mesh_frame,        // a decrypted non-IP payload from a meshfwd peer
};

// Which of the worker's sockets a datagram came in on (the control thread answers from it).
enum class socket_role : uint8_t { listen, lane };

inline constexpr std::size_t mailbox_payload_capacity = 2048 - 128;

struct mailbox_message {
    mailbox_kind kind{};
    socket_role role = socket_role::listen;
    uint16_t worker = 0;
    uint32_t length = 0;           // payload bytes
    peer_runtime* peer = nullptr;  // staged_packet, endpoint_changed, session_confirmed, mesh_frame
    session* sess = nullptr;       // session_confirmed
    socket_address source;         // handshake, endpoint_changed
    alignas(16) uint8_t payload[mailbox_payload_capacity];
};

class mailbox {
public:
    static constexpr std::size_t capacity = 1024;

    mailbox() : _storage(std::make_unique<mailbox_message[]>(capacity)) {
        // Runs before the worker thread starts, so pushing as "control" here is safe.
        for (std::size_t i = 0; i < capacity; ++i) {
            (void)free_messages.try_push(&_storage[i]);
        }
    }
    mailbox(const mailbox&) = delete;
    mailbox& operator=(const mailbox&) = delete;

    // Worker: a free message to fill, or nullptr when all are in flight.
    [[nodiscard]] mailbox_message* acquire() noexcept {
        mailbox_message* m = nullptr;
        return free_messages.try_pop(m) ? m : nullptr;
    }
    // Worker: hands a filled message over. Cannot fail: there are as many slots as messages.
    void post(mailbox_message* m) noexcept { (void)to_control.try_push(m); }

    // Control thread.
    [[nodiscard]] mailbox_message* receive() noexcept {
        mailbox_message* m = nullptr;
        return to_control.try_pop(m) ? m : nullptr;
    }
    void release(mailbox_message* m) noexcept { (void)free_messages.try_push(m); }
    [[nodiscard]] std::size_t pending() const noexcept { return to_control.size_approx(); }

private:
    std::unique_ptr<mailbox_message[]> _storage;
    spsc_ring<mailbox_message*, capacity> to_control;
    spsc_ring<mailbox_message*, capacity> free_messages;
};

}  // namespace meshfwd::dataplane
