// The two halves of the per-packet path, as burst stages independent of how packets arrive:
//
//   encapsulate_burst:  IP packets from the device → cryptokey routing (allowed-IPs trie, longest
//                       prefix) → peer → current session → counters reserved per run → one batched
//                       AEAD encrypt → WireGuard transport messages addressed to the peer (and lane)
//   decapsulate_burst:  datagrams → demux (transport / handshake / garbage) → receiver-index table →
//                       one batched AEAD decrypt → replay window → keepalive / IP packet (source
//                       checked against the peer's allowed IPs) / mesh frame → device
//
// Handshake messages, packets for peers without a session, roaming and key confirmation go to the
// control thread through the worker's mailbox. Everything dropped is counted by reason.
//
// Threads: a worker thread, between two RCU quiescent states (it holds pointers from the snapshot
// and the index table). The io_uring worker and the in-memory micro-benchmark both drive these.
#pragma once
#include "crypto/aead_burst.h"
#include "crypto/cookie.h"
#include "dataplane/counters.h"
#include "dataplane/index_table.h"
#include "dataplane/mailbox.h"
#include "dataplane/packet_pool.h"
#include "dataplane/peer.h"
#include "dataplane/snapshot.h"

#include <cstddef>
#include <cstdint>
#include <span>

namespace meshfwd::dataplane {

// Mesh frames (decrypted payloads whose first nibble is neither 4 nor 6); control/README.md has
// the layouts. Only exchanged with peers marked meshfwd.
inline constexpr uint8_t mesh_frame_lanes = 0x01;  // [type, version 1, count, flags, count x be16 port]
inline constexpr uint8_t lanes_flag_request = 0x01; // flags: "send me yours" (ours did not arrive)

// Largest burst a stage takes (the config's dataplane.batch is at most this).
inline constexpr std::size_t max_burst = 256;

struct pipeline_context {
    unsigned worker = 0;
    const snapshot* snap = nullptr;
    const index_table<session>* sessions = nullptr;
    const crypto::cookie_checker* cookies = nullptr;  // mac1 of handshake messages
    crypto::aead_burst* aead = nullptr;
    packet_pool* pool = nullptr;
    mailbox* box = nullptr;
    worker_counters* counters = nullptr;
    uint32_t mtu = 1420;
    crypto::mono_time now{};
    int64_t now_ns = 0;
    bool posted = false;  // set when a message went to the control thread (wake it)
};

// Both work in place, in the packet's own buffer or, for a view (packet_pool.h), in the receive
// buffer it points into; what goes to the control thread is copied into a mailbox message first,
// so every packet not returned has been freed (a view's buffer reference dropped) by the time
// these return.
//
// Encrypts what can be sent now (at most max_burst packets; more are dropped as burst_overflow). On
// return packets[0, n) are transport messages (data, length, remote, role set) to transmit; every
// other packet was freed, handed to the control thread, or counted as a drop. Needs
// packet_headroom bytes in front of each packet's data and 31 behind it (padding and tag).
[[nodiscard]] std::size_t encapsulate_burst(pipeline_context& ctx, std::span<packet*> packets) noexcept;

// Decrypts what authenticates. On return packets[0, n) are IP packets (data, length) to write to
// the device; everything else was freed, handed to the control thread, or counted as a drop.
[[nodiscard]] std::size_t decapsulate_burst(pipeline_context& ctx, std::span<packet*> packets) noexcept;

// Symmetric hash of an IP packet's addresses, protocol and (TCP/UDP) ports: both directions of a
// flow give the same value, so a flow's packets always take the same lane. IP fragments (IPv4 MF
// or fragment offset, the first fragment too; IPv6 with a Fragment header) hash without ports,
// so all fragments of one datagram take the same lane.
[[nodiscard]] uint32_t flow_hash(std::span<const uint8_t> ip_packet) noexcept;

// Bytes of padding WireGuard adds to a payload of `length` under `mtu` (0: no MTU), exactly as
// the kernel's calculate_skb_padding: up to a multiple of 16, never past the MTU, and for a
// payload longer than the MTU the remainder modulo the MTU is what gets padded.
[[nodiscard]] inline uint32_t transport_padding(uint32_t length, uint32_t mtu) noexcept {
    uint32_t last_unit = length;
    if (mtu == 0) {
        return ((last_unit + 15u) & ~15u) - last_unit;
    }
    if (last_unit > mtu) {
        last_unit %= mtu;
    }
    uint32_t padded = (last_unit + 15u) & ~15u;
    if (padded > mtu) {
        padded = mtu;
    }
    return padded - last_unit;
}

}  // namespace meshfwd::dataplane
