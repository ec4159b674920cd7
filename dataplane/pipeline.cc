// Encapsulate and decapsulate bursts (see pipeline.h). Worker threads only; nothing here
// allocates, locks, logs or throws.
#include "dataplane/pipeline.h"

#include "crypto/messages.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace meshfwd::dataplane {
namespace {

constexpr std::size_t header_size = sizeof(crypto::message_transport_header);  // 16
constexpr std::size_t tag_size = crypto::spec::tag_size;                        // 16

inline uint16_t load_be16(const uint8_t* p) noexcept { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

void drop(pipeline_context& ctx, packet* p, drop_reason why) noexcept {
    ctx.counters->drop(why);
    ctx.pool->free(p);
}

// Copies the packet into a mailbox message for the control thread and frees the packet.
void hand_to_control(pipeline_context& ctx, packet* p, mailbox_kind kind, peer_runtime* peer,
                     session* sess = nullptr) noexcept {
    if (p->length > ctx.box->max_payload()) {
        drop(ctx, p, drop_reason::too_big);
        return;
    }
    mailbox_message* m = ctx.box->acquire(p->length);
    if (m == nullptr) {
        drop(ctx, p, kind == mailbox_kind::staged_packet ? drop_reason::staged_ring_full : drop_reason::ring_full);
        return;
    }
    m->kind = kind;
    m->role = p->role;
    m->worker = static_cast<uint16_t>(ctx.worker);
    m->peer = peer;
    m->sess = sess;
    m->source = p->remote;
    m->local = p->local;
    m->length = p->length;
    std::memcpy(m->payload, p->data, p->length);
    ctx.box->post(m);
    ctx.posted = true;
    ctx.pool->free(p);
}

// A message without a packet (roaming, confirmation). False when the mailbox was full (counted;
// the caller asks again with a later packet).
bool notify_control(pipeline_context& ctx, mailbox_kind kind, peer_runtime* peer, session* sess,
                    const socket_address& source, const local_address& local, socket_role role) noexcept {
    mailbox_message* m = ctx.box->acquire();
    if (m == nullptr) {
        ctx.counters->drop(drop_reason::ring_full);
        return false;
    }
    m->kind = kind;
    m->role = role;
    m->worker = static_cast<uint16_t>(ctx.worker);
    m->peer = peer;
    m->sess = sess;
    m->source = source;
    m->local = local;
    m->length = 0;
    ctx.box->post(m);
    ctx.posted = true;
    return true;
}

inline uint32_t mix(uint32_t h, uint32_t v) noexcept {
    h ^= v;
    h *= 0x9e3779b1u;
    return h ^ (h >> 15);
}

// Validates an IP packet's header against the bytes present; returns its length or 0.
inline uint32_t ip_packet_length(const uint8_t* p, uint32_t available) noexcept {
    if (available == 0) {
        return 0;
    }
    const unsigned version = p[0] >> 4;
    if (version == 4) {
        if (available < 20 || (p[0] & 0x0f) < 5) {
            return 0;
        }
        const uint32_t total = load_be16(p + 2);
        return total >= 20 && total <= available ? total : 0;
    }
    if (version == 6) {
        if (available < 40) {
            return 0;
        }
        const uint32_t total = 40u + load_be16(p + 4);
        return total <= available ? total : 0;
    }
    return 0;
}

}  // namespace

uint32_t flow_hash(std::span<const uint8_t> ip) noexcept {
    if (ip.empty()) {
        return 0;
    }
    const uint8_t* p = ip.data();
    const unsigned version = p[0] >> 4;
    uint32_t a = 0, b = 0, ports_a = 0, ports_b = 0, proto = 0;
    std::size_t l4 = 0;
    bool fragment = false;
    if (version == 4 && ip.size() >= 20) {
        std::memcpy(&a, p + 12, 4);
        std::memcpy(&b, p + 16, 4);
        proto = p[9];
        l4 = static_cast<std::size_t>(p[0] & 0x0f) * 4;
        // MF or an offset: only the first fragment has ports, so no fragment may use them, or
        // one datagram's fragments would take different lanes (and arrive reordered).
        fragment = (load_be16(p + 6) & 0x3fffu) != 0;
    } else if (version == 6 && ip.size() >= 40) {
        uint32_t w[8];
        std::memcpy(w, p + 8, 32);
        a = w[0] ^ w[1] ^ w[2] ^ w[3];
        b = w[4] ^ w[5] ^ w[6] ^ w[7];
        proto = p[6];
        l4 = 40;
    } else {
        return 0;
    }
    // IPv6: a Fragment header (44), like any extension header, leaves proto != TCP/UDP, so all
    // fragments of a datagram hash alike (by addresses and 44).
    if ((proto == 6 || proto == 17) && !fragment && ip.size() >= l4 + 4) {
        ports_a = load_be16(p + l4);
        ports_b = load_be16(p + l4 + 2);
    }
    // Order each pair so both directions hash alike.
    const uint32_t lo = std::min(a, b), hi = std::max(a, b);
    const uint32_t plo = std::min(ports_a, ports_b), phi = std::max(ports_a, ports_b);
    return mix(mix(mix(mix(0x1234567u, lo), hi), (plo << 16) | phi), proto);
}

// Whether the IP packet at `ip` (length already checked) goes to a link-local or multicast
// address: IPv6 fe80::/10 or ff00::/8, IPv4 169.254.0.0/16, 224.0.0.0/4 or 255.255.255.255.
// Only asked for packets that no peer's allowed IPs contain.
static bool host_local_destination(const uint8_t* ip) noexcept {
    if ((ip[0] >> 4) == 6) {
        const uint8_t* dst = ip + 24;
        return dst[0] == 0xff || (dst[0] == 0xfe && (dst[1] & 0xc0) == 0x80);
    }
    const uint8_t* dst = ip + 16;
    return (dst[0] & 0xf0) == 0xe0 || (dst[0] == 169 && dst[1] == 254) ||
           (dst[0] == 255 && dst[1] == 255 && dst[2] == 255 && dst[3] == 255);
}

// Callers pass at most max_burst packets; anything beyond is dropped (counted), never leaked.
static void drop_excess(pipeline_context& ctx, std::span<packet*> packets) noexcept {
    for (std::size_t i = max_burst; i < packets.size(); ++i) {
        drop(ctx, packets[i], drop_reason::burst_overflow);
    }
}

std::size_t encapsulate_burst(pipeline_context& ctx, std::span<packet*> packets) noexcept {
    const snapshot& snap = *ctx.snap;
    const std::size_t n_in = std::min(packets.size(), max_burst);
    drop_excess(ctx, packets);
    // 1. Route each packet to a peer and its current session.
    std::size_t kept = 0;
    for (std::size_t i = 0; i < n_in; ++i) {
        packet* p = packets[i];
        if (p->length == 0 || ip_packet_length(p->data, p->length) != p->length) {
            drop(ctx, p, drop_reason::not_ip);
            continue;
        }
        if (p->length > ctx.mtu) {
            drop(ctx, p, drop_reason::too_big);
            continue;
        }
        const uint32_t slot = snap.routes.lookup_destination({p->data, p->length});
        if (slot >= snap.peers.size() || snap.peers[slot] == nullptr) {
            // The host's own link-local and multicast traffic on the device (the kernel's IPv6
            // autoconfiguration, MLD) is no routing failure: counted apart so no_route means one.
            drop(ctx, p, host_local_destination(p->data) ? drop_reason::not_routable_local : drop_reason::no_route);
            continue;
        }
        peer_runtime* peer = snap.peers[slot];
        session* s = peer->current.load(std::memory_order_acquire);
        if (s == nullptr || s->keypair.expired(ctx.now)) {
            // The control thread stages it and starts (or waits for) a handshake.
            hand_to_control(ctx, p, mailbox_kind::staged_packet, peer);
            continue;
        }
        const peer_endpoint* ep = peer->endpoint.load(std::memory_order_acquire);
        if (ep == nullptr) {
            drop(ctx, p, drop_reason::no_endpoint);
            continue;
        }
        p->peer = peer;
        p->sess = s;
        p->remote = ep->address;
        p->local = ep->local;
        if (ep->lane_count > 0) {
            p->flow_hash = flow_hash({p->data, p->length});
            p->remote.set_port(ep->lanes[p->flow_hash % ep->lane_count]);
            p->role = socket_role::lane;
        } else {
            p->role = socket_role::listen;
        }
        packets[kept++] = p;
    }

    // 2. Reserve send counters once per run of packets on the same session.
    for (std::size_t i = 0; i < kept;) {
        session* s = packets[i]->sess;
        std::size_t j = i + 1;
        while (j < kept && packets[j]->sess == s) {
            ++j;
        }
        const crypto::counter_range range = s->keypair.reserve(j - i);
        for (std::size_t k = i; k < j; ++k) {
            if (k - i < range.count) {
                packets[k]->counter = range.first + (k - i);
            } else {
                packets[k]->sess = nullptr;  // keypair exhausted: dropped below
            }
        }
        if (s->keypair.needs_rekey_on_send(ctx.now) || range.count < j - i) {
            s->peer->rekey_wanted.store(true, std::memory_order_relaxed);
        }
        i = j;
    }

    // 3. Header in the headroom, zero padding, then one batched encryption.
    std::array<crypto::aead_op, max_burst> ops;
    std::size_t out = 0;
    for (std::size_t i = 0; i < kept; ++i) {
        packet* p = packets[i];
        session* s = p->sess;
        if (s == nullptr) {
            // The keypair ran out of counters: wait for the new session, as the kernel queues.
            hand_to_control(ctx, p, mailbox_kind::staged_packet, p->peer);
            continue;
        }
        const uint32_t padding = transport_padding(p->length, ctx.mtu);
        std::memset(p->data + p->length, 0, padding);
        uint8_t* header = p->data - header_size;
        crypto::store_le32(header, crypto::spec::message_transport_type);
        crypto::store_le32(header + 4, s->keypair.remote_index);
        crypto::store_le64(header + 8, p->counter);
        ops[out] = crypto::aead_op{p->data, p->length + padding, p->counter, &s->keypair.send_key};
        packets[out++] = p;
    }
    ctx.aead->encrypt_burst(std::span(ops.data(), out));

    // 4. Account, and turn each packet into its transport message.
    worker_counters& wc = *ctx.counters;
    uint64_t bytes = 0;
    for (std::size_t i = 0; i < out; ++i) {
        packet* p = packets[i];
        const bool data = p->length > 0;
        const uint32_t message = static_cast<uint32_t>(header_size + ops[i].length + tag_size);
        peer_worker_counters& pc = p->peer->counters[ctx.worker];
        pc.tx_packets.add(1);
        pc.tx_bytes.add(message);
        pc.touch(pc.last_tx_ns, ctx.now_ns);
        if (data) {
            pc.touch(pc.last_tx_data_ns, ctx.now_ns);
        }
        p->data -= header_size;
        p->length = message;
        bytes += message;
    }
    wc.tx_packets.add(out);
    wc.tx_bytes.add(bytes);
    return out;
}

std::size_t decapsulate_burst(pipeline_context& ctx, std::span<packet*> packets) noexcept {
    const snapshot& snap = *ctx.snap;
    const std::size_t n_in = std::min(packets.size(), max_burst);
    drop_excess(ctx, packets);
    std::array<crypto::aead_op, max_burst> ops;  // owner: the op's packet
    std::size_t n_ops = 0;

    // 1. Demultiplex: transport messages to decrypt, handshake messages to the control thread.
    for (std::size_t i = 0; i < n_in; ++i) {
        packet* p = packets[i];
        if (p->length < 4) {
            drop(ctx, p, drop_reason::bad_message);
            continue;
        }
        const uint32_t type = crypto::load_le32(p->data);
        switch (type) {
        case crypto::spec::message_transport_type: {
            if (p->length < crypto::message_transport_min_size) {
                drop(ctx, p, drop_reason::bad_message);
                break;
            }
            session* s = ctx.sessions->lookup(crypto::load_le32(p->data + 4));
            if (s == nullptr) {
                drop(ctx, p, drop_reason::unknown_index);
                break;
            }
            const uint64_t counter = crypto::load_le64(p->data + 8);
            if (counter >= crypto::spec::reject_after_messages || s->keypair.expired(ctx.now)) {
                drop(ctx, p, drop_reason::expired_keypair);
                break;
            }
            p->sess = s;
            p->counter = counter;
            ops[n_ops++] = crypto::aead_op{p->data + header_size, p->length - static_cast<uint32_t>(header_size),
                                           counter, &s->keypair.recv_key, p};
            break;
        }
        case crypto::spec::message_initiation_type:
        case crypto::spec::message_response_type: {
            const std::size_t expected = type == crypto::spec::message_initiation_type
                                             ? sizeof(crypto::message_initiation)
                                             : sizeof(crypto::message_response);
            if (p->length != expected) {
                drop(ctx, p, drop_reason::bad_message);
                break;
            }
            if (ctx.cookies->check_mac1({p->data, p->length}) != crypto::cookie_reason::ok) {
                drop(ctx, p, drop_reason::bad_mac1);
                break;
            }
            ctx.counters->handshake_messages.add(1);
            hand_to_control(ctx, p, mailbox_kind::handshake, nullptr);
            break;
        }
        case crypto::spec::message_cookie_reply_type:
            if (p->length != sizeof(crypto::message_cookie_reply)) {
                drop(ctx, p, drop_reason::bad_message);
                break;
            }
            ctx.counters->handshake_messages.add(1);
            hand_to_control(ctx, p, mailbox_kind::handshake, nullptr);
            break;
        default:
            drop(ctx, p, drop_reason::bad_message);
            break;
        }
    }

    // 2. One batched decryption; the authentic ones come first, in order.
    const std::size_t good = ctx.aead->decrypt_burst(std::span(ops.data(), n_ops));
    for (std::size_t i = good; i < n_ops; ++i) {
        drop(ctx, static_cast<packet*>(ops[i].owner), drop_reason::bad_auth);
    }

    // 3. Replay window, bookkeeping, then what the payload is.
    worker_counters& wc = *ctx.counters;
    std::size_t out = 0;
    uint64_t rx_packets = 0, rx_bytes = 0;
    for (std::size_t i = 0; i < good; ++i) {
        packet* p = static_cast<packet*>(ops[i].owner);
        session* s = p->sess;
        peer_runtime* peer = s->peer;
        if (s->keypair.replay.check_and_set(p->counter) != crypto::replay_reason::ok) {
            drop(ctx, p, drop_reason::replay);
            continue;
        }
        const uint32_t plain = ops[i].length - static_cast<uint32_t>(tag_size);
        const uint32_t message = plain + static_cast<uint32_t>(header_size + tag_size);
        peer_worker_counters& pc = peer->counters[ctx.worker];
        pc.rx_packets.add(1);
        pc.rx_bytes.add(message);
        pc.touch(pc.last_rx_ns, ctx.now_ns);
        ++rx_packets;
        rx_bytes += message;

        // Roaming: an authenticated packet from somewhere new, or to another of our addresses,
        // moves the endpoint (asked once); replies then leave from the address it came to.
        const peer_endpoint* ep = peer->endpoint.load(std::memory_order_acquire);
        if ((ep == nullptr || !ep->matches(p->remote) || !(ep->local == p->local)) &&
            !(pc.reported_source == p->remote && pc.reported_local == p->local) &&
            notify_control(ctx, mailbox_kind::endpoint_changed, peer, s, p->remote, p->local, p->role)) {
            pc.reported_source = p->remote;
            pc.reported_local = p->local;
        }
        // Key confirmation: the initiator used our new responder keypair.
        if (s->awaiting_confirmation.load(std::memory_order_relaxed) &&
            !s->confirm_requested.exchange(true, std::memory_order_relaxed) &&
            !notify_control(ctx, mailbox_kind::session_confirmed, peer, s, p->remote, p->local, p->role)) {
            s->confirm_requested.store(false, std::memory_order_relaxed);  // ask again next packet
        }
        if (peer->current.load(std::memory_order_relaxed) == s && s->keypair.needs_rekey_on_receive(ctx.now)) {
            peer->rekey_wanted.store(true, std::memory_order_relaxed);
        }

        if (plain == 0) {  // keepalive
            ctx.pool->free(p);
            continue;
        }
        uint8_t* payload = p->data + header_size;
        const uint32_t ip_length = ip_packet_length(payload, plain);
        if (ip_length == 0) {
            const unsigned version = payload[0] >> 4;
            if (version != 4 && version != 6 && peer->meshfwd.load(std::memory_order_relaxed)) {
                p->data = payload;
                p->length = plain;
                hand_to_control(ctx, p, mailbox_kind::mesh_frame, peer);
            } else {
                drop(ctx, p, drop_reason::not_ip);
            }
            continue;
        }
        if (snap.routes.lookup_source({payload, ip_length}) != peer->slot) {
            drop(ctx, p, drop_reason::bad_source);
            continue;
        }
        pc.touch(pc.last_rx_data_ns, ctx.now_ns);
        p->data = payload;
        p->length = ip_length;
        packets[out++] = p;
    }
    wc.rx_packets.add(rx_packets);
    wc.rx_bytes.add(rx_bytes);
    return out;
}

}  // namespace meshfwd::dataplane
