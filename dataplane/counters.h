// Data-plane counters: drops by named reason, per-worker totals, per-peer per-worker traffic.
//
// Threads: each worker writes only its own blocks (single writer: relaxed load + store, no
// read-modify-write on a shared line); the control thread reads them all (relaxed loads) for
// the API, metrics and timers. Blocks are cache-line aligned so workers never share a line.
#pragma once
#include "dataplane/local_address.h"
#include "dataplane/socket_address.h"
#include "lib/reasons.h"
#include "lib/spsc_ring.h"
#include <atomic>
#include <cstdint>

namespace meshfwd::dataplane {

#define MESHFWD_DROP_REASONS(X)                                                                   \
    X(no_route, "no peer's allowed IPs contain the destination")                                  \
    X(not_routable_local, "link-local or multicast from the host (IPv6 router/neighbour solicitation, MLD, mDNS), no peer's") \
    X(no_endpoint, "the peer has no known endpoint to send to")                                   \
    X(no_session_queue_full, "no session yet and the peer's staging queue was full (oldest dropped)") \
    X(staged_ring_full, "no session yet and no free mailbox message to hand the packet to control") \
    X(handshake_gave_up, "staged packet dropped: no handshake completed within REKEY_ATTEMPT_TIME") \
    X(peer_removed, "staged packet or message for a peer that a reload removed meanwhile")        \
    X(not_ip, "not an IPv4/IPv6 packet (from the device), or a mesh frame from a plain peer")     \
    X(too_big, "larger than the device MTU or a buffer")                                          \
    X(bad_offload, "malformed offload (virtio-net) header or super-packet from the device")       \
    X(unknown_index, "transport message for a receiver index we do not have")                    \
    X(bad_auth, "transport message did not authenticate")                                        \
    X(replay, "transport counter already seen or below the replay window")                        \
    X(expired_keypair, "keypair past REJECT_AFTER_TIME or its counter limit (received, or sent by control)") \
    X(bad_source, "decrypted packet's source is not in the sending peer's allowed IPs")            \
    X(bad_message, "datagram is no WireGuard message (unknown type, wrong size)")                  \
    X(bad_mac1, "handshake message with a wrong mac1 (not for us)")                                \
    X(ring_full, "no free mailbox message for a handshake, mesh frame or notice to control")      \
    X(rate_limited, "handshake message refused by the rate limiter under load")                   \
    X(no_packet, "the worker's packet pool was empty (a copy, or a TSO/USO segment)")             \
    X(no_view, "no free packet view of a receive buffer")                                         \
    X(no_tx_slot, "all of the worker's send/write slots were in flight")                          \
    X(no_sqe, "the io_uring submission queue stayed full")                                        \
    X(too_many_iov, "a coalesced device write had more pieces than a write slot holds")           \
    X(burst_overflow, "a burst stage was handed more than max_burst packets")                     \
    X(no_rx_buffer, "a read found its receive buffer ring empty (the data waited in the kernel)") \
    X(tx_error_udp, "the kernel refused a worker's UDP send (counted per datagram)")              \
    X(tx_error_device, "the kernel refused a device write (counted per packet)")                  \
    X(control_send_error, "the kernel refused a control-thread send (handshake, keepalive, staged packet)") \
    X(rx_error, "a receive or device read failed")
MESHFWD_DEFINE_REASONS(drop_reason, MESHFWD_DROP_REASONS)

// Single-writer counter: the owner adds with a relaxed load and store (no lock prefix); any
// thread may read.
struct counter {
    std::atomic<uint64_t> value{0};
    void add(uint64_t n) noexcept { value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    [[nodiscard]] uint64_t get() const noexcept { return value.load(std::memory_order_relaxed); }
};

struct alignas(cache_line_size) worker_counters {
    counter rx_packets;   // transport messages decrypted (incl. keepalives)
    counter rx_bytes;     // their WireGuard message bytes
    counter tx_packets;   // transport messages sent
    counter tx_bytes;
    counter handshake_messages;  // handshake messages passed to the control thread
    counter stale_source_resends;  // sends whose sticky source address was gone, resent without it
    counter drops[n_drop_reasons];
    void drop(drop_reason r, uint64_t n = 1) noexcept { drops[static_cast<unsigned>(r)].add(n); }
};

// One peer's traffic as seen by one worker (or by the control thread, which has a block too).
// Times are mono_clock nanoseconds since its epoch; 0 = never.
struct alignas(cache_line_size) peer_worker_counters {
    counter rx_packets;
    counter rx_bytes;
    counter tx_packets;
    counter tx_bytes;
    std::atomic<int64_t> last_rx_ns{0};       // any authenticated packet received
    std::atomic<int64_t> last_rx_data_ns{0};  // a non-keepalive one
    std::atomic<int64_t> last_tx_ns{0};       // any transport message sent
    std::atomic<int64_t> last_tx_data_ns{0};  // a non-keepalive one
    // The worker's own memory of the last new source it reported for this peer (roaming), so a
    // burst of packets from a new address asks the control thread once. Written and read only
    // by the owning worker.
    socket_address reported_source;
    local_address reported_local;
    void touch(std::atomic<int64_t>& t, int64_t now_ns) noexcept { t.store(now_ns, std::memory_order_relaxed); }
};

}  // namespace meshfwd::dataplane
