// Fuzz target: arbitrary bytes as a burst of datagrams for decapsulate_burst, then the same bytes
// as a burst of IP packets for encapsulate_burst (dataplane/pipeline.h). Neither may crash, every
// packet must end up back in the pool, and what a stage returns must lie inside its buffer; a
// violation traps so the fuzzer reports it. Single-threaded (one fixed worker state, reused).
//
// Input: records of [kind][len] followed by len*8 bytes (fewer at the end of the input).
//   decapsulate, by kind % 4:  0 raw datagram
//                              1 the first 16 bytes become a type-4 header for a known index
//                                (counter from the input): reaches the AEAD, fails it; with
//                                kind & 0x80 the index from the input is kept (unknown index)
//                              2 the bytes are sealed as a valid transport message for a known
//                                session (fresh counter, or a repeated one when kind & 0x80):
//                                reaches replay, source check, mesh frames, keepalives
//                              3 a handshake message of the exact size for type 1, 2 or 3 (of
//                                the input's size when kind & 0x80), with a valid mac1 when
//                                kind & 0x40
//              source address, by (kind >> 4) & 3: the peer's endpoint, a lane, a new address
//   encapsulate, by kind % 4:  0 raw; 1 IPv4 header, 2 IPv6 header (valid lengths, destination
//                              in a peer's prefix chosen by kind >> 2); 3 raw with version 4
// Every IPv4 fragment among the encapsulate inputs must hash as if it had no ports.
// An input whose first byte is odd runs with every mailbox message held (a control thread that
// stopped answering), so the full-mailbox drops are reached too.
#include "crypto/cookie.h"
#include "crypto/messages.h"
#include "crypto/noise.h"
#include "crypto/transport.h"
#include "crypto/x25519.h"
#include "dataplane/pipeline.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace {

using namespace meshfwd;
using namespace meshfwd::dataplane;

constexpr uint32_t mtu = 1420;
constexpr std::size_t n_peers = 5;  // 0 plain, 1 meshfwd, 2 no session, 3 no endpoint, 4 expired

crypto::secret32 fuzz_key(uint32_t seed) {
    crypto::secret32 k;
    for (std::size_t i = 0; i < 32; ++i) {
        k.data()[i] = static_cast<uint8_t>(seed * 53 + i * 17 + 9);
    }
    return k;
}

socket_address udp(const char* text) { return socket_address::from(endpoint::parse(text).value(), true); }

struct state {
    crypto::mono_time now = crypto::mono_time{} + std::chrono::hours(1);
    crypto::static_identity identity;
    crypto::static_identity remote;
    std::unique_ptr<crypto::cookie_checker> cookies;
    std::unique_ptr<crypto::cookie_maker> maker;  // the remote's, for valid mac1
    std::unique_ptr<crypto::aead_burst> aead;
    packet_pool pool{2 * max_burst};
    index_table<session> sessions{8};
    std::array<std::unique_ptr<peer_runtime>, n_peers> peers;
    std::array<session, n_peers> sess;
    std::array<crypto::keypair, n_peers> senders;  // the peers' side of each session
    std::array<uint64_t, n_peers> next_counter{};
    std::array<peer_endpoint, n_peers> endpoints;
    snapshot snap;
    mailbox box;
    worker_counters counters;
    pipeline_context ctx;

    state() {
        crypto::peer_config cfg;
        if (!crypto::crypto_init() || !identity.set_private_key(fuzz_key(1)) || !remote.set_private_key(fuzz_key(2)) ||
            !cfg.init(remote, identity.static_public)) {
            std::abort();
        }
        cookies = std::make_unique<crypto::cookie_checker>(identity, now);
        maker = std::make_unique<crypto::cookie_maker>(cfg);
        // libsodium: the same on every machine, so a reproducer replays anywhere.
        aead = crypto::make_aead_burst(crypto::aead_backend::libsodium);
        if (!aead) {
            std::abort();
        }
        std::vector<allowed_ips::entry> routes;
        for (uint32_t i = 0; i < n_peers; ++i) {
            peers[i] = std::make_unique<peer_runtime>(i, remote.static_public, i == 1, 2);
            routes.push_back({ip_prefix::make(ip_address::v4(0x0a000000u | ((i + 2) << 16)), 16).value(), i});
            std::array<uint8_t, 16> v6{0xfd, 0, 0, static_cast<uint8_t>(i + 2)};
            routes.push_back({ip_prefix::make(ip_address::v6(v6), 64).value(), i});
            snap.peers.push_back(peers[i].get());
            session& s = sess[i];
            s.keypair.send_key = fuzz_key(10 + i);
            s.keypair.recv_key = fuzz_key(20 + i);
            senders[i].send_key = fuzz_key(20 + i);
            s.keypair.birth = senders[i].birth = i == 4 ? now - std::chrono::seconds(200) : now;
            s.peer = peers[i].get();
            s.keypair.local_index = sessions.insert(&s).value();
            senders[i].remote_index = s.keypair.local_index;
            s.keypair.remote_index = 0x100 + i;
            if (i != 2) {
                peers[i]->current.store(&s);
            }
            endpoints[i].address = udp("192.0.2.9:51820");
            endpoints[i].lane_count = i == 1 ? 3 : 0;
            endpoints[i].lanes = {40000, 40001, 40002};
            if (i != 3) {
                peers[i]->endpoint.store(&endpoints[i]);
            }
        }
        sess[1].awaiting_confirmation.store(true);
        snap.routes = allowed_ips::build(routes);
        ctx.worker = 0;
        ctx.snap = &snap;
        ctx.sessions = &sessions;
        ctx.cookies = cookies.get();
        ctx.aead = aead.get();
        ctx.pool = &pool;
        ctx.box = &box;
        ctx.counters = &counters;
        ctx.mtu = mtu;
        ctx.now = now;
        ctx.now_ns = 1;
    }

    std::vector<mailbox_message*> held;  // messages taken out of the mailbox (reserved at first use)

    void hold_all() {
        held.clear();
        held.reserve(mailbox::capacity + mailbox::large_capacity);
        while (mailbox_message* m = box.acquire()) {
            held.push_back(m);
        }
    }
    void release_held() {
        for (mailbox_message* m : held) {
            box.release(m);
        }
        held.clear();
    }
    void drain() {
        while (mailbox_message* m = box.receive()) {
            if (m->length > box.max_payload()) {
                __builtin_trap();
            }
            box.release(m);
        }
    }
};

struct record {
    uint8_t kind;
    std::span<const uint8_t> body;
};

// Splits the input into at most max_burst records.
std::vector<record> split(std::span<const uint8_t> in) {
    std::vector<record> out;
    std::size_t at = 0;
    while (at + 2 <= in.size() && out.size() < max_burst) {
        const uint8_t kind = in[at];
        const std::size_t want = std::size_t{in[at + 1]} * 8;
        at += 2;
        const std::size_t len = std::min({want, in.size() - at, std::size_t{packet_data_capacity}});
        out.push_back({kind, in.subspan(at, len)});
        at += len;
    }
    return out;
}

// Output must lie within the packet's own buffer.
void check_inside(packet* p) {
    if (p->data < p->buffer_start() || p->length > packet_buffer_size ||
        p->data + p->length > p->buffer_end()) {
        __builtin_trap();
    }
}

void run_decapsulate(state& s, const std::vector<record>& records) {
    std::vector<packet*> burst;
    const std::array<socket_address, 4> sources{udp("192.0.2.9:51820"), udp("192.0.2.9:40001"),
                                                udp("198.51.100.1:1234"), udp("[2001:db8::5]:51820")};
    for (const record& r : records) {
        packet* p = s.pool.alloc();
        if (p == nullptr) {
            __builtin_trap();
        }
        const std::size_t peer = (r.kind >> 2) % n_peers;
        std::size_t len = r.body.size();
        std::memcpy(p->data, r.body.data(), len);
        switch (r.kind % 4) {
        case 1:
            if (len < 16) {
                len = 16;
                std::memset(p->data + r.body.size(), 0, 16 - r.body.size());
            }
            crypto::store_le32(p->data, crypto::spec::message_transport_type);
            if ((r.kind & 0x80) == 0) {
                crypto::store_le32(p->data + 4, s.sess[peer].keypair.local_index);
            }
            break;
        case 2: {
            // Up to what fits with padding and tag (past the mailbox's capacity for mesh frames).
            const std::size_t plain = std::min<std::size_t>(len, packet_data_capacity - 48);
            uint64_t& next = s.next_counter[peer];
            const uint64_t counter = (r.kind & 0x80) != 0 && next > 0 ? next - 1 : next++;
            const auto e = crypto::encapsulate_with_counter(s.senders[peer], counter, r.body.first(plain),
                                                            std::span<uint8_t>(p->data, packet_data_capacity), mtu);
            if (e.reason != crypto::transport_reason::ok) {
                __builtin_trap();
            }
            len = e.size;
            break;
        }
        case 3: {
            static constexpr std::array<std::size_t, 3> sizes{sizeof(crypto::message_initiation),
                                                              sizeof(crypto::message_response),
                                                              sizeof(crypto::message_cookie_reply)};
            const uint32_t type = 1 + (r.kind >> 2) % 3;
            const std::size_t size = sizes[type - 1];
            if (len < size) {
                std::memset(p->data + len, 0, size - len);
            }
            if ((r.kind & 0x80) == 0 || len < 4) {
                len = size;
            }
            crypto::store_le32(p->data, type);
            if ((r.kind & 0x40) != 0 && type != 3 && len == size) {
                s.maker->add_macs(std::span<uint8_t>(p->data, len), s.now);
            }
            break;
        }
        default:
            break;
        }
        p->length = static_cast<uint32_t>(len);
        p->remote = sources[(r.kind >> 4) & 3];
        p->role = (r.kind & 0x20) != 0 ? socket_role::lane : socket_role::listen;
        burst.push_back(p);
    }
    const std::size_t n = decapsulate_burst(s.ctx, burst);
    for (std::size_t i = 0; i < n; ++i) {
        packet* p = burst[i];
        check_inside(p);
        if (p->length < 20 || (p->data[0] >> 4 != 4 && p->data[0] >> 4 != 6)) {
            __builtin_trap();  // only IP packets go to the device
        }
        s.pool.free(p);
    }
}

// An IPv4 fragment (MF or an offset) must hash without its would-be ports: the same with the
// four bytes behind the IP header changed, as a later fragment of the datagram carries there.
void check_fragment_hash(std::span<const uint8_t> ip) {
    if (ip.size() < 24 || (ip[0] >> 4) != 4 || ((ip[6] << 8 | ip[7]) & 0x3fff) == 0) {
        return;
    }
    const std::size_t l4 = (ip[0] & 0x0fu) * 4u;
    if (l4 < 20 || l4 + 4 > ip.size()) {  // IHL < 5: the "ports" would be address bytes
        return;
    }
    std::vector<uint8_t> other(ip.begin(), ip.end());
    for (std::size_t i = l4; i < l4 + 4; ++i) {
        other[i] = static_cast<uint8_t>(~other[i]);
    }
    if (flow_hash(ip) != flow_hash(other)) {
        __builtin_trap();
    }
}

void run_encapsulate(state& s, const std::vector<record>& records) {
    std::vector<packet*> burst;
    for (const record& r : records) {
        packet* p = s.pool.alloc();
        if (p == nullptr) {
            __builtin_trap();
        }
        std::size_t len = r.body.size();
        std::memcpy(p->data, r.body.data(), len);
        const auto peer = static_cast<uint8_t>((r.kind >> 2) % (n_peers + 1) + 2);  // n_peers + 2: no route
        const unsigned form = r.kind % 4;
        if (form == 1 && len >= 20) {
            p->data[0] = static_cast<uint8_t>(0x40 | (5 + (r.kind >> 6)));  // IHL 5..8
            p->data[2] = static_cast<uint8_t>(len >> 8);
            p->data[3] = static_cast<uint8_t>(len);
            p->data[16] = 10;
            p->data[17] = peer;
        } else if (form == 2 && len >= 40) {
            p->data[0] = static_cast<uint8_t>(0x60 | (p->data[0] & 0x0f));
            p->data[4] = static_cast<uint8_t>((len - 40) >> 8);
            p->data[5] = static_cast<uint8_t>(len - 40);
            const uint8_t dst[4] = {0xfd, 0, 0, peer};
            std::memcpy(p->data + 24, dst, 4);
        } else if (form == 3 && len > 0) {
            p->data[0] = static_cast<uint8_t>(0x40 | (p->data[0] & 0x0f));
        }
        p->length = static_cast<uint32_t>(len);
        check_fragment_hash({p->data, len});
        burst.push_back(p);
    }
    const std::size_t n = encapsulate_burst(s.ctx, burst);
    for (std::size_t i = 0; i < n; ++i) {
        packet* p = burst[i];
        check_inside(p);
        if (p->length < crypto::message_transport_min_size || crypto::load_le32(p->data) != crypto::spec::message_transport_type) {
            __builtin_trap();
        }
        s.pool.free(p);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static state s;
    const std::vector<record> records = split({data, size});
    if (size > 0 && (data[0] & 1) != 0) {
        s.hold_all();
    }
    run_decapsulate(s, records);
    if (s.pool.available() != s.pool.size()) {
        __builtin_trap();  // decapsulate_burst lost a packet
    }
    run_encapsulate(s, records);
    if (s.pool.available() != s.pool.size()) {
        __builtin_trap();  // encapsulate_burst lost a packet
    }
    s.drain();
    s.release_held();
    return 0;
}
