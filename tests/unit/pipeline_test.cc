// Unit tests of the pipeline stages (dataplane/pipeline.h), driven directly over an in-memory
// "port": encapsulate_burst on one node, the messages copied into fresh datagrams as the wire
// would deliver them, decapsulate_burst on the other. Covers round trips cross-checked against
// the single-packet reference (crypto/transport.h), counter reservation, every drop reason, the
// mailbox to the control thread, roaming, key confirmation, lanes and mixed-peer bursts.
//
// Threads: the test thread plays the worker and the control thread; one test also runs a
// second thread that reserves counters on the same keypair, like another worker would.
#include "dataplane/pipeline.h"

#include "crypto/cookie.h"
#include "crypto/messages.h"
#include "crypto/noise.h"
#include "crypto/transport.h"
#include "crypto/x25519.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace meshfwd::dataplane {
namespace {

using namespace std::chrono_literals;
using bytes = std::vector<uint8_t>;

// Two workers plus the control thread's block; the tests run as worker 1 so that a write into
// the wrong block (0 or 2) shows.
constexpr unsigned n_workers = 2;
constexpr unsigned this_worker = 1;
constexpr uint32_t mtu = 1420;
constexpr uint16_t wg_port = 51820;

crypto::secret32 test_key(uint32_t seed) {
    crypto::secret32 k;
    for (std::size_t i = 0; i < 32; ++i) {
        k.data()[i] = static_cast<uint8_t>(seed * 37 + i * 11 + 3);
    }
    return k;
}

int64_t ns_of(crypto::mono_time t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

ip_address parse_ip(std::string_view text) { return ip_address::parse(text).value(); }

socket_address udp(std::string_view ip, uint16_t port) {
    return socket_address::from(endpoint(parse_ip(ip), port), true);
}

// Overlay addresses of node n: 10.n.0.host and fd00:n::host; its allowed IPs are the /16 and /64.
ip_address overlay4(uint8_t n, uint8_t host) { return ip_address::v4(0x0a000000u | (uint32_t{n} << 16) | host); }
ip_address overlay6(uint8_t n, uint8_t host) {
    std::array<uint8_t, 16> b{};
    b[0] = 0xfd;
    b[3] = n;
    b[15] = host;
    return ip_address::v6(b);
}

void put16(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

// An IPv4 or IPv6 packet (by src's family) of `total` bytes with TCP/UDP ports when it has room.
bytes ip_packet(const ip_address& src, const ip_address& dst, std::size_t total, uint8_t proto = 17,
                uint16_t sport = 1000, uint16_t dport = 2000, uint32_t fill = 0) {
    bytes p(total);
    for (std::size_t i = 0; i < total; ++i) {
        p[i] = static_cast<uint8_t>(fill * 131 + i * 7 + 1);
    }
    std::size_t l4;
    if (src.is_v4()) {
        p[0] = 0x45;
        p[1] = 0;
        put16(&p[2], static_cast<uint32_t>(total));
        p[6] = p[7] = 0;  // not a fragment (flow_hash leaves fragments' ports out)
        p[8] = 64;
        p[9] = proto;
        std::memcpy(&p[12], src.bytes().data(), 4);
        std::memcpy(&p[16], dst.bytes().data(), 4);
        l4 = 20;
    } else {
        p[0] = 0x60;
        p[1] = p[2] = p[3] = 0;
        put16(&p[4], static_cast<uint32_t>(total - 40));
        p[6] = proto;
        p[7] = 64;
        std::memcpy(&p[8], src.bytes().data(), 16);
        std::memcpy(&p[24], dst.bytes().data(), 16);
        l4 = 40;
    }
    if (total >= l4 + 4) {
        put16(&p[l4], sport);
        put16(&p[l4 + 2], dport);
    }
    return p;
}

bytes contents(const packet* p) { return bytes(p->data, p->data + p->length); }

// One meshfwd node as one worker sees it: identity, receiver-index table, peers, snapshot,
// mailbox and counters. Owns everything the snapshot points to.
struct node {
    node(uint8_t id_, socket_address underlay_, crypto::mono_time now, packet_pool& pool, crypto::aead_burst* aead,
         uint32_t node_mtu = mtu)
        : id(id_), underlay(underlay_), box(node_mtu) {
        EXPECT_TRUE(identity.set_private_key(test_key(1000u + id)));
        cookies = std::make_unique<crypto::cookie_checker>(identity, now);
        ctx.worker = this_worker;
        ctx.snap = &snap;
        ctx.sessions = &sessions;
        ctx.cookies = cookies.get();
        ctx.aead = aead;
        ctx.pool = &pool;
        ctx.box = &box;
        ctx.counters = &counters;
        ctx.mtu = node_mtu;
        ctx.now = now;
        ctx.now_ns = ns_of(now);
    }

    peer_runtime& add_peer(const node& other, bool meshfwd) {
        const auto slot = static_cast<uint32_t>(peers.size());
        peers.push_back(std::make_unique<peer_runtime>(slot, other.identity.static_public, meshfwd, n_workers + 1));
        routes.push_back({ip_prefix::make(overlay4(other.id, 0), 16).value(), slot});
        routes.push_back({ip_prefix::make(overlay6(other.id, 0), 64).value(), slot});
        rebuild();
        set_endpoint(*peers.back(), other.underlay, {});
        return *peers.back();
    }
    void rebuild() {
        snap.peers.clear();
        for (auto& p : peers) {
            snap.peers.push_back(p.get());
        }
        snap.routes = allowed_ips::build(routes);
    }
    void set_endpoint(peer_runtime& peer, const socket_address& address, std::vector<uint16_t> lanes) {
        auto ep = std::make_unique<peer_endpoint>();
        ep->address = address;
        for (uint16_t port : lanes) {
            ep->lanes[ep->lane_count++] = port;
        }
        peer.endpoint.store(ep.get());
        endpoints.push_back(std::move(ep));
    }

    uint8_t id;
    socket_address underlay;  // where the others reach this node
    crypto::static_identity identity;
    std::unique_ptr<crypto::cookie_checker> cookies;
    index_table<session> sessions{8};
    std::vector<std::unique_ptr<peer_runtime>> peers;  // by slot
    std::vector<std::unique_ptr<session>> owned_sessions;
    std::vector<std::unique_ptr<peer_endpoint>> endpoints;
    std::vector<allowed_ips::entry> routes;
    snapshot snap;
    mailbox box;
    worker_counters counters;
    pipeline_context ctx;
};

// A link between two nodes: each one's peer object for the other and its session to it.
struct peer_link {
    peer_runtime* peer_at_x;  // y, as x sees it
    peer_runtime* peer_at_y;  // x, as y sees it
    session* x_to_y;          // x sends with it; y_to_x receives what it sends
    session* y_to_x;
};

// What the control thread found in a mailbox.
struct posted {
    mailbox_kind kind;
    socket_role role;
    uint16_t worker;
    peer_runtime* peer;
    session* sess;
    socket_address source;
    bytes payload;
};

using drop_counts = std::array<uint64_t, n_drop_reasons>;

class Pipeline : public ::testing::Test {
protected:
    Pipeline()
        : crypto_ready(crypto::crypto_init()), aead(crypto::make_aead_burst(crypto::aead_backend::automatic)),
          a(1, udp("192.0.2.1", wg_port), now, pool, aead.get()),
          b(2, udp("192.0.2.2", wg_port), now, pool, aead.get()),
          c(3, udp("2001:db8::3", wg_port), now, pool, aead.get()) {}

    void SetUp() override {
        ASSERT_TRUE(crypto_ready);
        ASSERT_NE(aead, nullptr);
    }

    void TearDown() override {
        // Every test hands back every packet; a leak in the stage under test shows here.
        EXPECT_EQ(pool.available(), pool.size()) << "packets leaked";
        EXPECT_EQ(pool.views_available(), pool.view_count()) << "views leaked";
        for (node* n : {&a, &b, &c}) {
            (void)drain(*n);
        }
    }

    peer_link connect(node& x, node& y, bool meshfwd = false) {
        peer_runtime& px = x.add_peer(y, meshfwd);
        peer_runtime& py = y.add_peer(x, meshfwd);
        session& sx = *x.owned_sessions.emplace_back(std::make_unique<session>());
        session& sy = *y.owned_sessions.emplace_back(std::make_unique<session>());
        const uint32_t k1 = ++key_seed, k2 = ++key_seed;
        sx.keypair.send_key = test_key(k1);
        sy.keypair.recv_key = test_key(k1);
        sx.keypair.recv_key = test_key(k2);
        sy.keypair.send_key = test_key(k2);
        sx.keypair.birth = sy.keypair.birth = now;
        sx.keypair.is_initiator = true;
        sx.peer = &px;
        sy.peer = &py;
        const auto ix = x.sessions.insert(&sx);
        const auto iy = y.sessions.insert(&sy);
        EXPECT_TRUE(ix && iy);
        sx.keypair.local_index = *ix;
        sy.keypair.local_index = *iy;
        sx.keypair.remote_index = *iy;
        sy.keypair.remote_index = *ix;
        px.current.store(&sx);
        py.current.store(&sy);
        return {&px, &py, &sx, &sy};
    }

    packet* load(const bytes& data) {
        packet* p = pool.alloc();
        EXPECT_NE(p, nullptr);
        if (p == nullptr) {
            return nullptr;
        }
        if (!data.empty()) {  // an empty vector's data() may be null, which memcpy must not get
            std::memcpy(p->data, data.data(), data.size());
        }
        p->length = static_cast<uint32_t>(data.size());
        return p;
    }
    std::vector<packet*> load_all(const std::vector<bytes>& packets) {
        std::vector<packet*> out;
        for (const auto& d : packets) {
            out.push_back(load(d));
        }
        return out;
    }
    // A datagram as the UDP port hands it over.
    packet* datagram(const bytes& data, const socket_address& from, socket_role role = socket_role::listen) {
        packet* p = load(data);
        p->remote = from;
        p->role = role;
        return p;
    }

    std::vector<packet*> encap(node& n, std::vector<packet*> burst) {
        n.ctx.posted = false;
        burst.resize(encapsulate_burst(n.ctx, burst));
        return burst;
    }
    std::vector<packet*> decap(node& n, std::vector<packet*> burst) {
        n.ctx.posted = false;
        burst.resize(decapsulate_burst(n.ctx, burst));
        return burst;
    }
    // The wire: each message arrives in a fresh buffer; the sent ones go back to the pool.
    std::vector<packet*> deliver(const std::vector<packet*>& messages, const socket_address& from,
                                 socket_role role = socket_role::listen) {
        std::vector<packet*> out;
        for (packet* m : messages) {
            out.push_back(datagram(contents(m), from, role));
            pool.free(m);
        }
        return out;
    }
    void release(const std::vector<packet*>& packets) {
        for (packet* p : packets) {
            pool.free(p);
        }
    }
    // Encapsulates `packets` on x and decapsulates them on y (from x's underlay address).
    std::vector<packet*> send(node& x, node& y, const std::vector<bytes>& packets) {
        return decap(y, deliver(encap(x, load_all(packets)), x.underlay));
    }
    // A transport message built by the reference path with the sender's keys.
    bytes reference_message(const session& s, uint64_t counter, const bytes& plain) {
        bytes out(crypto::transport_message_size(plain.size(), mtu));
        const auto r = crypto::encapsulate_with_counter(s.keypair, counter, plain, out, mtu);
        EXPECT_EQ(r.reason, crypto::transport_reason::ok);
        out.resize(r.size);
        return out;
    }

    static std::vector<posted> drain(node& n) {
        std::vector<posted> out;
        while (mailbox_message* m = n.box.receive()) {
            out.push_back({m->kind, m->role, m->worker, m->peer, m->sess, m->source,
                           bytes(m->payload, m->payload + m->length)});
            n.box.release(m);
        }
        return out;
    }
    // Takes every free message (a control thread that stopped answering).
    static std::vector<mailbox_message*> exhaust(node& n) {
        std::vector<mailbox_message*> taken;
        while (mailbox_message* m = n.box.acquire()) {
            taken.push_back(m);
        }
        EXPECT_EQ(taken.size(), mailbox::capacity);
        return taken;
    }
    static void give_back(node& n, const std::vector<mailbox_message*>& taken) {
        for (mailbox_message* m : taken) {
            n.box.release(m);
        }
    }

    static drop_counts drops(const node& n) {
        drop_counts d{};
        for (std::size_t i = 0; i < n_drop_reasons; ++i) {
            d[i] = n.counters.drops[i].get();
        }
        return d;
    }
    // Since `before`: exactly `count` drops for `why` and none for any other reason.
    static void expect_drops(const node& n, const drop_counts& before, drop_reason why, uint64_t count = 1) {
        const drop_counts now_ = drops(n);
        for (std::size_t i = 0; i < n_drop_reasons; ++i) {
            const uint64_t want = i == static_cast<std::size_t>(why) ? count : 0;
            EXPECT_EQ(now_[i] - before[i], want) << "reason " << drop_reason_names[i];
        }
    }
    static void expect_no_drops(const node& n) {
        for (std::size_t i = 0; i < n_drop_reasons; ++i) {
            EXPECT_EQ(n.counters.drops[i].get(), 0u) << "reason " << drop_reason_names[i];
        }
    }

    // Valid handshake messages for `to` (mac1 made with its public key), of the given type.
    bytes handshake_message(const node& from, const node& to, uint32_t type) {
        bytes m(type == crypto::spec::message_initiation_type ? sizeof(crypto::message_initiation)
                                                              : sizeof(crypto::message_response));
        for (std::size_t i = 0; i < m.size(); ++i) {
            m[i] = static_cast<uint8_t>(i * 5 + type);
        }
        crypto::store_le32(m.data(), type);
        crypto::peer_config cfg;
        EXPECT_TRUE(cfg.init(from.identity, to.identity.static_public));
        crypto::cookie_maker maker(cfg);
        maker.add_macs(std::span<uint8_t>(m), now);
        return m;
    }

    bool crypto_ready;
    crypto::mono_time now = crypto::mono_time{} + 1000s;
    packet_pool pool{1024, 64};
    std::unique_ptr<crypto::aead_burst> aead;
    node a, b, c;
    uint32_t key_seed = 0;
};

// ---------------------------------------------------------------------------------------------
// Round trip and the single-packet reference.

TEST_F(Pipeline, RoundTripAllSizesV4V6MatchesSinglePacketPath) {
    const peer_link l = connect(a, b);
    std::vector<bytes> originals;
    for (std::size_t len = 20; len <= mtu; ++len) {
        originals.push_back(ip_packet(overlay4(1, 9), overlay4(2, 7), len, 17, static_cast<uint16_t>(len), 53,
                                      static_cast<uint32_t>(len)));
        if (len >= 40) {
            originals.push_back(ip_packet(overlay6(1, 9), overlay6(2, 7), len, 6, 443, static_cast<uint16_t>(len),
                                          static_cast<uint32_t>(len) + 7));
        }
    }
    // Mix the sizes so every burst spans the whole range.
    std::shuffle(originals.begin(), originals.end(), std::mt19937(42));

    uint64_t next_counter = 0;
    for (std::size_t off = 0; off < originals.size(); off += max_burst) {
        const std::vector<bytes> chunk(originals.begin() + static_cast<long>(off),
                                       originals.begin() + static_cast<long>(std::min(off + max_burst, originals.size())));
        std::vector<packet*> messages = encap(a, load_all(chunk));
        ASSERT_EQ(messages.size(), chunk.size());
        for (std::size_t i = 0; i < chunk.size(); ++i) {
            const packet* m = messages[i];
            const std::size_t len = chunk[i].size();
            // Padded to 16, never past the MTU.
            const std::size_t padded = std::min<std::size_t>((len + 15) / 16 * 16, mtu);
            ASSERT_EQ(m->length, 16 + padded + 16) << len;
            EXPECT_EQ(crypto::load_le32(m->data), crypto::spec::message_transport_type);
            EXPECT_EQ(crypto::load_le32(m->data + 4), l.y_to_x->keypair.local_index);
            EXPECT_EQ(crypto::load_le64(m->data + 8), next_counter);
            EXPECT_EQ(m->counter, next_counter);
            EXPECT_EQ(contents(m), reference_message(*l.x_to_y, next_counter, chunk[i])) << "size " << len;
            EXPECT_TRUE(m->remote == b.underlay);
            EXPECT_EQ(m->role, socket_role::listen);
            EXPECT_EQ(m->peer, l.peer_at_x);
            ++next_counter;
        }
        std::vector<packet*> out = decap(b, deliver(messages, a.underlay));
        ASSERT_EQ(out.size(), chunk.size());
        for (std::size_t i = 0; i < chunk.size(); ++i) {
            EXPECT_EQ(contents(out[i]), chunk[i]) << "size " << chunk[i].size();
        }
        release(out);
    }
    EXPECT_EQ(l.x_to_y->keypair.send_counter.load(), originals.size());
    expect_no_drops(a);
    expect_no_drops(b);
    EXPECT_TRUE(drain(a).empty());
    EXPECT_TRUE(drain(b).empty());
}

// transport_padding is documented as the kernel's calculate_skb_padding, which
// crypto::transport_message_size implements (a packet over the MTU is padded as its remainder).
TEST_F(Pipeline, TransportPaddingMatchesReferenceIncludingOverMtu) {
    for (uint32_t m : {0u, 1280u, 1420u}) {
        for (uint32_t len = 0; len <= 3000; ++len) {
            const std::size_t reference = crypto::transport_message_size(len, m) - 32 - len;
            ASSERT_EQ(transport_padding(len, m), reference) << "length " << len << " mtu " << m;
        }
    }
}

TEST_F(Pipeline, KeepaliveCountedNotDelivered) {
    const peer_link l = connect(a, b);
    std::vector<packet*> in{datagram(reference_message(*l.x_to_y, 0, {}), a.underlay)};
    EXPECT_TRUE(decap(b, in).empty());
    const peer_worker_counters& pc = l.peer_at_y->counters[this_worker];
    EXPECT_EQ(pc.rx_packets.get(), 1u);
    EXPECT_EQ(pc.rx_bytes.get(), 32u);
    EXPECT_EQ(pc.last_rx_ns.load(), b.ctx.now_ns);
    EXPECT_EQ(pc.last_rx_data_ns.load(), 0);
    EXPECT_EQ(b.counters.rx_packets.get(), 1u);
    expect_no_drops(b);
}

// ---------------------------------------------------------------------------------------------
// Counters.

TEST_F(Pipeline, CountersConsecutiveAcrossBurstsAndAccounted) {
    const peer_link l = connect(a, b);
    b.ctx.now_ns = 777;  // the stage must take times from its context
    uint64_t next = 0, tx_bytes = 0, total = 0;
    for (std::size_t burst : {1u, 7u, 32u, 256u, 3u}) {
        std::vector<bytes> in;
        for (std::size_t i = 0; i < burst; ++i) {
            in.push_back(ip_packet(overlay4(1, 1), overlay4(2, 1), 60 + i));
        }
        std::vector<packet*> messages = encap(a, load_all(in));
        ASSERT_EQ(messages.size(), burst);
        for (packet* m : messages) {
            EXPECT_EQ(crypto::load_le64(m->data + 8), next++);
            tx_bytes += m->length;
        }
        total += burst;
        release(decap(b, deliver(messages, a.underlay)));
    }
    EXPECT_EQ(l.x_to_y->keypair.send_counter.load(), total);

    // Sender: its worker block and its per-peer block for this worker, nothing elsewhere.
    EXPECT_EQ(a.counters.tx_packets.get(), total);
    EXPECT_EQ(a.counters.tx_bytes.get(), tx_bytes);
    const peer_worker_counters& tx = l.peer_at_x->counters[this_worker];
    EXPECT_EQ(tx.tx_packets.get(), total);
    EXPECT_EQ(tx.tx_bytes.get(), tx_bytes);
    EXPECT_EQ(tx.last_tx_ns.load(), a.ctx.now_ns);
    EXPECT_EQ(tx.last_tx_data_ns.load(), a.ctx.now_ns);
    // Receiver.
    EXPECT_EQ(b.counters.rx_packets.get(), total);
    EXPECT_EQ(b.counters.rx_bytes.get(), tx_bytes);
    const peer_worker_counters& rx = l.peer_at_y->counters[this_worker];
    EXPECT_EQ(rx.rx_packets.get(), total);
    EXPECT_EQ(rx.rx_bytes.get(), tx_bytes);
    EXPECT_EQ(rx.last_rx_ns.load(), 777);
    EXPECT_EQ(rx.last_rx_data_ns.load(), 777);
    for (unsigned other : {0u, 2u}) {
        for (const peer_runtime* p : {l.peer_at_x, l.peer_at_y}) {
            const peer_worker_counters& o = p->counters[other];
            EXPECT_EQ(o.tx_packets.get() + o.rx_packets.get() + o.tx_bytes.get() + o.rx_bytes.get(), 0u) << other;
            EXPECT_EQ(o.last_rx_ns.load() + o.last_tx_ns.load(), 0) << other;
        }
    }
    EXPECT_EQ(a.counters.rx_packets.get(), 0u);
    EXPECT_EQ(b.counters.tx_packets.get(), 0u);
    expect_no_drops(a);
    expect_no_drops(b);
}

// Another worker reserves counters on the same keypair meanwhile: a burst's run must still get
// one consecutive range (one reservation), and no counter may be handed out twice. (Whether the
// threads overlap is up to the scheduler; the bursts repeat, within a time bound, so that a
// per-packet reservation is caught even on two loaded cores.)
TEST_F(Pipeline, CountersReservedOncePerRunUnderConcurrentReservation) {
    const peer_link l = connect(a, b);
    crypto::keypair& kp = l.x_to_y->keypair;
    std::atomic<bool> stop{false}, started{false};
    std::vector<uint64_t> theirs;  // the first ones, for the overlap check
    theirs.reserve(1u << 18);
    uint64_t their_count = 0;
    std::thread other([&] {
        started.store(true);
        while (!stop.load(std::memory_order_relaxed)) {
            const auto r = kp.reserve(1);
            if (r.count == 1) {
                if (theirs.size() < theirs.capacity()) {
                    theirs.push_back(r.first);
                }
                ++their_count;
            }
        }
    });
    while (!started.load()) {
        std::this_thread::yield();
    }
    std::vector<uint64_t> ours;
    bool consecutive = true;
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    for (int burst = 0; burst < 10000 && consecutive && std::chrono::steady_clock::now() < deadline; ++burst) {
        std::vector<bytes> in(64, ip_packet(overlay4(1, 1), overlay4(2, 1), 100));
        std::vector<packet*> messages = encap(a, load_all(in));
        EXPECT_EQ(messages.size(), 64u);
        for (std::size_t i = 0; i < messages.size(); ++i) {
            const uint64_t ctr = crypto::load_le64(messages[i]->data + 8);
            if (i > 0 && ctr != ours.back() + 1) {
                consecutive = false;
            }
            ours.push_back(ctr);
        }
        release(messages);
    }
    stop.store(true);
    other.join();
    EXPECT_TRUE(consecutive) << "a run of one session took more than one reservation";
    std::vector<uint64_t> all = ours;
    all.insert(all.end(), theirs.begin(), theirs.end());
    std::sort(all.begin(), all.end());
    EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "a counter was handed out twice";
    EXPECT_EQ(kp.send_counter.load(), ours.size() + their_count);
}

TEST_F(Pipeline, CounterExhaustionSendsWhatIsLeftStagesTheRestAndAsksForRekey) {
    const peer_link l = connect(a, b);
    const uint64_t limit = crypto::spec::reject_after_messages;
    l.x_to_y->keypair.send_counter.store(limit - 3);
    const drop_counts before = drops(a);
    std::vector<bytes> in(5, ip_packet(overlay4(1, 1), overlay4(2, 1), 64));
    std::vector<packet*> messages = encap(a, load_all(in));
    ASSERT_EQ(messages.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(crypto::load_le64(messages[i]->data + 8), limit - 3 + i);
    }
    // The two that found no counter wait for the next session, as the kernel queues them.
    expect_drops(a, before, drop_reason::expired_keypair, 0);
    const auto staged = drain(a);
    ASSERT_EQ(staged.size(), 2u);
    for (const auto& m : staged) {
        EXPECT_EQ(m.kind, mailbox_kind::staged_packet);
        EXPECT_EQ(m.peer, l.peer_at_x);
        EXPECT_EQ(m.payload, in[0]);
    }
    EXPECT_TRUE(l.peer_at_x->rekey_wanted.load());
    EXPECT_EQ(l.x_to_y->keypair.send_counter.load(), limit);
    release(messages);
}

TEST_F(Pipeline, OldInitiatorSessionStillSendsButAsksForRekey) {
    const peer_link l = connect(a, b);
    l.x_to_y->keypair.birth = now - 121s;
    std::vector<packet*> messages = encap(a, load_all({ip_packet(overlay4(1, 1), overlay4(2, 1), 64)}));
    EXPECT_EQ(messages.size(), 1u);
    EXPECT_TRUE(l.peer_at_x->rekey_wanted.load());
    release(messages);
}

// ---------------------------------------------------------------------------------------------
// Drops: each by its reason, counted once, the packet back in the pool.

TEST_F(Pipeline, EncapDropsNotIp) {
    connect(a, b);
    bytes v4_long_header = ip_packet(overlay4(1, 1), overlay4(2, 1), 60);
    put16(&v4_long_header[2], 61);  // claims more than is there
    bytes v4_short_total = ip_packet(overlay4(1, 1), overlay4(2, 1), 60);
    put16(&v4_short_total[2], 19);
    bytes v4_ihl = ip_packet(overlay4(1, 1), overlay4(2, 1), 60);
    v4_ihl[0] = 0x44;
    bytes v6_short = ip_packet(overlay6(1, 1), overlay6(2, 1), 60);
    v6_short.resize(39);
    const std::vector<bytes> cases = {bytes(30, 0x00), bytes(30, 0x55), bytes(1, 0x45), bytes{}, v4_long_header,
                                      v4_short_total, v4_ihl, v6_short};
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const drop_counts before = drops(a);
        EXPECT_TRUE(encap(a, load_all({cases[i]})).empty()) << i;
        expect_drops(a, before, drop_reason::not_ip);
        EXPECT_EQ(pool.available(), pool.size()) << i;
    }
    EXPECT_TRUE(drain(a).empty());
}

TEST_F(Pipeline, EncapDropsTooBig) {
    connect(a, b);
    for (const bytes& p : {ip_packet(overlay4(1, 1), overlay4(2, 1), mtu + 1),
                           ip_packet(overlay6(1, 1), overlay6(2, 1), mtu + 1)}) {
        const drop_counts before = drops(a);
        EXPECT_TRUE(encap(a, load_all({p})).empty());
        expect_drops(a, before, drop_reason::too_big);
        EXPECT_EQ(pool.available(), pool.size());
    }
}

TEST_F(Pipeline, EncapDropsNoRoute) {
    connect(a, b);
    // A route whose slot has no peer (as while a peer is being removed).
    a.routes.push_back({ip_prefix::parse("10.77.0.0/16").value(), 5});
    a.rebuild();
    for (const bytes& p : {ip_packet(overlay4(1, 1), overlay4(99, 1), 60),
                           ip_packet(overlay6(1, 1), overlay6(99, 1), 60),
                           ip_packet(overlay4(1, 1), overlay4(77, 1), 60)}) {
        const drop_counts before = drops(a);
        EXPECT_TRUE(encap(a, load_all({p})).empty());
        expect_drops(a, before, drop_reason::no_route);
        EXPECT_EQ(pool.available(), pool.size());
    }
}

// The host's own link-local and multicast packets on the device (router and neighbour
// solicitations, MLD reports, mDNS) are not routing failures: their own counter.
TEST_F(Pipeline, EncapCountsHostLocalTrafficApartFromNoRoute) {
    connect(a, b);
    const auto addr = [](const char* text) { return ip_address::parse(text).value(); };
    for (const char* dst : {"ff02::2", "ff02::16", "fe80::1", "224.0.0.251", "255.255.255.255", "169.254.1.1"}) {
        const ip_address d = addr(dst);
        const ip_address src = d.is_v6() ? addr("fe80::1234") : overlay4(1, 1);
        const drop_counts before = drops(a);
        EXPECT_TRUE(encap(a, load_all({ip_packet(src, d, 60)})).empty()) << dst;
        expect_drops(a, before, drop_reason::not_routable_local);
        EXPECT_EQ(pool.available(), pool.size());
    }
    // A global address nobody routes stays no_route.
    const drop_counts before = drops(a);
    EXPECT_TRUE(encap(a, load_all({ip_packet(addr("2001:db8::1"), addr("2001:db8::2"), 60)})).empty());
    expect_drops(a, before, drop_reason::no_route);
}

TEST_F(Pipeline, EncapDropsNoEndpoint) {
    const peer_link l = connect(a, b);
    l.peer_at_x->endpoint.store(nullptr);
    const drop_counts before = drops(a);
    EXPECT_TRUE(encap(a, load_all({ip_packet(overlay4(1, 1), overlay4(2, 1), 60)})).empty());
    expect_drops(a, before, drop_reason::no_endpoint);
    EXPECT_EQ(l.x_to_y->keypair.send_counter.load(), 0u);
    EXPECT_TRUE(drain(a).empty());
}

TEST_F(Pipeline, DecapDropsUnknownIndex) {
    const peer_link l = connect(a, b);
    bytes m = reference_message(*l.x_to_y, 0, ip_packet(overlay4(1, 1), overlay4(2, 1), 60));
    bytes wrong_high = m;
    crypto::store_le32(wrong_high.data() + 4, l.y_to_x->keypair.local_index ^ 0x80000000u);  // same slot
    bytes wrong_slot = m;
    crypto::store_le32(wrong_slot.data() + 4, l.y_to_x->keypair.local_index ^ 0x7u);
    for (const bytes& d : {wrong_high, wrong_slot}) {
        const drop_counts before = drops(b);
        EXPECT_TRUE(decap(b, {datagram(d, a.underlay)}).empty());
        expect_drops(b, before, drop_reason::unknown_index);
        EXPECT_EQ(pool.available(), pool.size());
    }
    // An erased session's index is unknown too.
    b.sessions.erase(l.y_to_x->keypair.local_index);
    const drop_counts before = drops(b);
    EXPECT_TRUE(decap(b, {datagram(m, a.underlay)}).empty());
    expect_drops(b, before, drop_reason::unknown_index);
}

TEST_F(Pipeline, DecapDropsBadAuthWithoutTouchingReplayWindow) {
    const peer_link l = connect(a, b);
    const bytes plain = ip_packet(overlay4(1, 1), overlay4(2, 1), 100);
    const bytes m = reference_message(*l.x_to_y, 0, plain);
    std::vector<bytes> forged;
    for (std::size_t at : {std::size_t{8}, std::size_t{16}, std::size_t{40}, m.size() - 1}) {
        bytes f = m;
        f[at] ^= 0x01;  // counter (nonce), first ciphertext byte, middle, tag
        forged.push_back(f);
    }
    bytes shorter = m;
    shorter.resize(m.size() - 1);
    forged.push_back(shorter);
    bytes min_size(32, 0);
    std::memcpy(min_size.data(), m.data(), 16);
    forged.push_back(min_size);
    for (std::size_t i = 0; i < forged.size(); ++i) {
        const drop_counts before = drops(b);
        EXPECT_TRUE(decap(b, {datagram(forged[i], a.underlay)}).empty()) << i;
        expect_drops(b, before, drop_reason::bad_auth);
        EXPECT_EQ(pool.available(), pool.size()) << i;
    }
    // Forgeries (the one with counter 1 included) moved nothing: the genuine messages pass.
    const bytes m1 = reference_message(*l.x_to_y, 1, plain);
    std::vector<packet*> out = decap(b, {datagram(m, a.underlay), datagram(m1, a.underlay)});
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(contents(out[0]), plain);
    release(out);
    EXPECT_EQ(b.counters.rx_packets.get(), 2u);
    EXPECT_TRUE(drain(b).empty());  // no roaming or other notice for forgeries
}

TEST_F(Pipeline, DecapDropsReplay) {
    const peer_link l = connect(a, b);
    const bytes plain = ip_packet(overlay4(1, 1), overlay4(2, 1), 100);
    const bytes m = reference_message(*l.x_to_y, 5, plain);
    // Twice in one burst: both authenticate, the window takes one.
    drop_counts before = drops(b);
    std::vector<packet*> out = decap(b, {datagram(m, a.underlay), datagram(m, a.underlay)});
    EXPECT_EQ(out.size(), 1u);
    release(out);
    expect_drops(b, before, drop_reason::replay);
    // Again in a later burst.
    before = drops(b);
    EXPECT_TRUE(decap(b, {datagram(m, a.underlay)}).empty());
    expect_drops(b, before, drop_reason::replay);
    // Far below the window after a jump ahead.
    release(decap(b, {datagram(reference_message(*l.x_to_y, 20000, plain), a.underlay)}));
    before = drops(b);
    EXPECT_TRUE(decap(b, {datagram(reference_message(*l.x_to_y, 6, plain), a.underlay)}).empty());
    expect_drops(b, before, drop_reason::replay);
    EXPECT_EQ(b.counters.rx_packets.get(), 2u);  // replays are not received traffic
}

TEST_F(Pipeline, ExpiredKeypair) {
    const peer_link l = connect(a, b);
    const bytes plain = ip_packet(overlay4(1, 1), overlay4(2, 1), 100);
    // Just inside REJECT_AFTER_TIME: accepted.
    l.y_to_x->keypair.birth = now - 179s;
    release(decap(b, {datagram(reference_message(*l.x_to_y, 0, plain), a.underlay)}));
    EXPECT_EQ(b.counters.rx_packets.get(), 1u);
    for (auto age : {180s, 181s, 3600s}) {
        l.y_to_x->keypair.birth = now - age;
        const drop_counts before = drops(b);
        EXPECT_TRUE(decap(b, {datagram(reference_message(*l.x_to_y, 1, plain), a.underlay)}).empty());
        expect_drops(b, before, drop_reason::expired_keypair);
        EXPECT_EQ(pool.available(), pool.size());
    }
    // A counter at REJECT_AFTER_MESSAGES is refused before any decryption.
    l.y_to_x->keypair.birth = now;
    bytes m = reference_message(*l.x_to_y, 2, plain);
    crypto::store_le64(m.data() + 8, crypto::spec::reject_after_messages);
    const drop_counts before = drops(b);
    EXPECT_TRUE(decap(b, {datagram(m, a.underlay)}).empty());
    expect_drops(b, before, drop_reason::expired_keypair);
}

TEST_F(Pipeline, DecapDropsBadSource) {
    const peer_link l = connect(a, b);
    connect(c, b);  // 10.3/16 belongs to c on b: a may not use it
    for (const bytes& p : {ip_packet(overlay4(99, 1), overlay4(2, 1), 60), ip_packet(overlay4(3, 1), overlay4(2, 1), 60),
                           ip_packet(overlay6(3, 1), overlay6(2, 1), 60)}) {
        const drop_counts before = drops(b);
        std::vector<packet*> messages = encap(a, load_all({p}));  // a routes by destination only
        ASSERT_EQ(messages.size(), 1u);
        EXPECT_TRUE(decap(b, deliver(messages, a.underlay)).empty());
        expect_drops(b, before, drop_reason::bad_source);
        EXPECT_EQ(pool.available(), pool.size());
    }
    EXPECT_EQ(l.peer_at_y->counters[this_worker].last_rx_data_ns.load(), 0);
}

TEST_F(Pipeline, DecapDropsNotIpFromPlainPeer) {
    const peer_link l = connect(a, b);
    bytes ip_long = ip_packet(overlay4(1, 1), overlay4(2, 1), 60);
    put16(&ip_long[2], 200);  // longer than the payload
    for (const bytes& plain : {bytes(40, 0x01), bytes(40, 0x00), ip_long}) {
        const drop_counts before = drops(b);
        EXPECT_TRUE(decap(b, {datagram(reference_message(*l.x_to_y, l.x_to_y->keypair.reserve(1).first, plain),
                                       a.underlay)})
                        .empty());
        expect_drops(b, before, drop_reason::not_ip);
        EXPECT_EQ(pool.available(), pool.size());
    }
    EXPECT_TRUE(drain(b).empty());
}

TEST_F(Pipeline, DecapDropsBadMessage) {
    const peer_link l = connect(a, b);
    const bytes good = reference_message(*l.x_to_y, 0, ip_packet(overlay4(1, 1), overlay4(2, 1), 60));
    auto typed = [](uint32_t type, std::size_t size) {
        bytes m(size, 0xab);
        crypto::store_le32(m.data(), type);
        return m;
    };
    bytes reserved = good;
    reserved[1] = 1;  // type word 0x104: not a transport message
    bytes truncated_transport = good;
    truncated_transport.resize(31);
    const std::vector<bytes> cases = {
        typed(7, 100), typed(0, 148), typed(5, 32),
        typed(1, 147), typed(1, 149), typed(2, 91), typed(2, 148), typed(3, 63), typed(3, 65),
        reserved, truncated_transport, bytes{1, 0, 0}, bytes{4}, bytes{},
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const drop_counts before = drops(b);
        EXPECT_TRUE(decap(b, {datagram(cases[i], a.underlay)}).empty()) << i;
        expect_drops(b, before, drop_reason::bad_message);
        EXPECT_EQ(pool.available(), pool.size()) << i;
    }
    EXPECT_TRUE(drain(b).empty());
    EXPECT_EQ(b.counters.handshake_messages.get(), 0u);
}

TEST_F(Pipeline, DecapDropsBadMac1) {
    connect(a, b);
    bytes init = handshake_message(a, b, crypto::spec::message_initiation_type);
    init[148 - 32] ^= 1;  // mac1
    bytes resp = handshake_message(a, b, crypto::spec::message_response_type);
    resp[10] ^= 1;  // covered by mac1
    const bytes for_c = handshake_message(a, c, crypto::spec::message_initiation_type);
    for (const bytes& m : {init, resp, for_c}) {
        const drop_counts before = drops(b);
        EXPECT_TRUE(decap(b, {datagram(m, a.underlay)}).empty());
        expect_drops(b, before, drop_reason::bad_mac1);
        EXPECT_EQ(pool.available(), pool.size());
    }
    EXPECT_TRUE(drain(b).empty());
}

// ---------------------------------------------------------------------------------------------
// The mailbox to the control thread.

TEST_F(Pipeline, NoSessionStagesPacketForControl) {
    const peer_link l = connect(a, b);
    l.peer_at_x->current.store(nullptr);
    const bytes p = ip_packet(overlay6(1, 1), overlay6(2, 1), 333);
    EXPECT_TRUE(encap(a, load_all({p})).empty());
    EXPECT_TRUE(a.ctx.posted);
    // An expired session stages too (the control thread starts a handshake).
    l.peer_at_x->current.store(l.x_to_y);
    l.x_to_y->keypair.birth = now - 181s;
    const bytes q = ip_packet(overlay4(1, 1), overlay4(2, 1), 1420);
    EXPECT_TRUE(encap(a, load_all({q})).empty());
    const auto got = drain(a);
    ASSERT_EQ(got.size(), 2u);
    for (std::size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(got[i].kind, mailbox_kind::staged_packet);
        EXPECT_EQ(got[i].peer, l.peer_at_x);
        EXPECT_EQ(static_cast<unsigned>(got[i].worker), this_worker);
    }
    EXPECT_EQ(got[0].payload, p);
    EXPECT_EQ(got[1].payload, q);
    EXPECT_EQ(l.x_to_y->keypair.send_counter.load(), 0u);
    expect_no_drops(a);
}

TEST_F(Pipeline, HandshakeMessagesGoToControlWithSource) {
    connect(a, b);
    const bytes init = handshake_message(a, b, crypto::spec::message_initiation_type);
    const bytes resp = handshake_message(a, b, crypto::spec::message_response_type);
    bytes cookie(sizeof(crypto::message_cookie_reply), 0x33);
    crypto::store_le32(cookie.data(), crypto::spec::message_cookie_reply_type);
    const socket_address from = udp("198.51.100.9", 40000);
    const socket_address lane_from = udp("2001:db8::77", 40001);
    EXPECT_TRUE(decap(b, {datagram(init, from), datagram(resp, lane_from, socket_role::lane), datagram(cookie, from)})
                    .empty());
    EXPECT_TRUE(b.ctx.posted);
    const auto got = drain(b);
    ASSERT_EQ(got.size(), 3u);
    const std::array<const bytes*, 3> want{&init, &resp, &cookie};
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(got[i].kind, mailbox_kind::handshake);
        EXPECT_EQ(got[i].payload, *want[i]);
        EXPECT_EQ(static_cast<unsigned>(got[i].worker), this_worker);
        EXPECT_EQ(got[i].peer, nullptr);
    }
    EXPECT_TRUE(got[0].source == from);
    EXPECT_TRUE(got[1].source == lane_from);
    EXPECT_EQ(got[1].role, socket_role::lane);
    EXPECT_EQ(got[0].role, socket_role::listen);
    EXPECT_EQ(b.counters.handshake_messages.get(), 3u);
    expect_no_drops(b);
}

// Packets up to the MTU are staged whole: past the small messages' 1920 bytes up to 1952 (what a
// 2 KiB buffer carries), and with a 9000-byte MTU up to 9000 (in large messages); one byte more is
// too big.
TEST_F(Pipeline, StagesPacketsUpToTheMtu) {
    for (const uint32_t node_mtu : {1952u, 9000u}) {
        SCOPED_TRACE(node_mtu);
        packet_pool own(4, 0, packet_buffer_size_for(node_mtu));
        node n(static_cast<uint8_t>(4 + node_mtu % 7), udp("192.0.2.4", wg_port), now, own, aead.get(), node_mtu);
        const peer_link l = connect(n, b);
        l.peer_at_x->current.store(nullptr);
        std::vector<bytes> want;
        std::vector<packet*> burst;
        for (const uint32_t len : {1921u, node_mtu - 1000, node_mtu, node_mtu + 1}) {
            const bytes p = ip_packet(overlay4(n.id, 1), overlay4(2, 1), len, 17, 1000, 2000, len);
            packet* q = own.alloc();
            ASSERT_NE(q, nullptr);
            ASSERT_LE(p.size(), own.data_capacity());
            std::memcpy(q->data, p.data(), p.size());
            q->length = len;
            burst.push_back(q);
            if (len <= node_mtu) {
                want.push_back(p);
            }
        }
        const drop_counts before = drops(n);
        EXPECT_TRUE(encap(n, burst).empty());
        expect_drops(n, before, drop_reason::too_big, 1);
        const auto got = drain(n);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            EXPECT_EQ(got[i].kind, mailbox_kind::staged_packet);
            EXPECT_EQ(got[i].payload, want[i]) << want[i].size();
        }
        EXPECT_EQ(own.available(), own.size());
    }
}

// The large messages (jumbo MTUs) run out on their own: a big staged packet is then counted as
// staged_ring_full while small ones still go through.
TEST_F(Pipeline, LargeMailboxMessagesRunOutSeparately) {
    packet_pool own(4, 0, packet_buffer_size_for(9000));
    node n(9, udp("192.0.2.9", wg_port), now, own, aead.get(), 9000);
    const peer_link l = connect(n, b);
    l.peer_at_x->current.store(nullptr);
    std::vector<mailbox_message*> taken;
    while (mailbox_message* m = n.box.acquire(9000)) {
        taken.push_back(m);
    }
    EXPECT_EQ(taken.size(), mailbox::large_capacity);
    const auto stage = [&](uint32_t len) {
        const bytes p = ip_packet(overlay4(9, 1), overlay4(2, 1), len);
        packet* q = own.alloc();
        std::memcpy(q->data, p.data(), p.size());
        q->length = len;
        return encap(n, {q}).empty();
    };
    drop_counts before = drops(n);
    EXPECT_TRUE(stage(8000));
    expect_drops(n, before, drop_reason::staged_ring_full);
    before = drops(n);
    EXPECT_TRUE(stage(1000));
    expect_drops(n, before, drop_reason::too_big, 0);
    ASSERT_EQ(drain(n).size(), 1u);
    give_back(n, taken);
    EXPECT_TRUE(stage(8000));
    const auto got = drain(n);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].payload.size(), 8000u);
    EXPECT_EQ(own.available(), own.size());
}

TEST(Mailbox, LargeMessagesOnlyWhenTheMtuNeedsThem) {
    mailbox usual(1420);
    EXPECT_EQ(usual.max_payload(), mailbox_small_payload);
    EXPECT_EQ(usual.acquire(mailbox_small_payload + 1), nullptr);
    mailbox jumbo(9000);
    EXPECT_GE(jumbo.max_payload(), 9000u);
    EXPECT_EQ(jumbo.acquire(jumbo.max_payload() + 1), nullptr);
    mailbox_message* big = jumbo.acquire(9000);
    ASSERT_NE(big, nullptr);
    EXPECT_TRUE(big->large());
    mailbox_message* small = jumbo.acquire(100);
    ASSERT_NE(small, nullptr);
    EXPECT_FALSE(small->large());
    std::memset(big->payload, 0xab, 9000);  // (ASan) the whole payload is the message's own
    // Through the control thread and back to the list each came from.
    jumbo.post(big);
    jumbo.post(small);
    EXPECT_EQ(jumbo.receive(), big);
    EXPECT_EQ(jumbo.receive(), small);
    jumbo.release(big);
    jumbo.release(small);
    std::vector<mailbox_message*> all_large;
    while (mailbox_message* m = jumbo.acquire(jumbo.max_payload())) {
        EXPECT_TRUE(m->large());
        all_large.push_back(m);
    }
    EXPECT_EQ(all_large.size(), mailbox::large_capacity);
}

TEST_F(Pipeline, MailboxExhausted) {
    const peer_link l = connect(a, b);
    l.peer_at_x->current.store(nullptr);
    const auto taken_a = exhaust(a);
    drop_counts before = drops(a);
    EXPECT_TRUE(encap(a, load_all({ip_packet(overlay4(1, 1), overlay4(2, 1), 60)})).empty());
    expect_drops(a, before, drop_reason::staged_ring_full);
    EXPECT_FALSE(a.ctx.posted);

    const auto taken_b = exhaust(b);
    before = drops(b);
    EXPECT_TRUE(decap(b, {datagram(handshake_message(a, b, crypto::spec::message_initiation_type), a.underlay)}).empty());
    expect_drops(b, before, drop_reason::ring_full);
    EXPECT_EQ(pool.available(), pool.size());

    // Once the control thread answers again, both paths work.
    give_back(a, taken_a);
    give_back(b, taken_b);
    EXPECT_TRUE(encap(a, load_all({ip_packet(overlay4(1, 1), overlay4(2, 1), 60)})).empty());
    EXPECT_TRUE(decap(b, {datagram(handshake_message(a, b, crypto::spec::message_initiation_type), a.underlay)}).empty());
    EXPECT_EQ(drain(a).size(), 1u);
    EXPECT_EQ(drain(b).size(), 1u);
}

// A stage takes at most max_burst packets; the rest are freed and counted under their own reason.
TEST_F(Pipeline, PacketsPastMaxBurstAreCountedAsBurstOverflow) {
    [[maybe_unused]] const peer_link l = connect(a, b);
    const std::vector<bytes> in(max_burst + 3, ip_packet(overlay4(1, 1), overlay4(2, 1), 60));
    const drop_counts before = drops(a);
    const std::vector<packet*> out = encap(a, load_all(in));
    EXPECT_EQ(out.size(), max_burst);
    expect_drops(a, before, drop_reason::burst_overflow, 3);
    release(out);
}

TEST_F(Pipeline, MeshFrameFromMeshfwdPeerGoesToControl) {
    const peer_link l = connect(a, b, /*meshfwd=*/true);
    bytes frame{mesh_frame_lanes, 1, 2, 0, 0x9c, 0x40, 0x9c, 0x41};
    std::vector<packet*> in{datagram(reference_message(*l.x_to_y, 0, frame), a.underlay)};
    EXPECT_TRUE(decap(b, in).empty());
    const auto got = drain(b);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, mailbox_kind::mesh_frame);
    EXPECT_EQ(got[0].peer, l.peer_at_y);
    ASSERT_GE(got[0].payload.size(), frame.size());
    EXPECT_TRUE(std::equal(frame.begin(), frame.end(), got[0].payload.begin()));
    expect_no_drops(b);
}

// ---------------------------------------------------------------------------------------------
// Roaming and key confirmation.

TEST_F(Pipeline, RoamingPostsEndpointChangedOncePerNewSource) {
    const peer_link l = connect(a, b);
    // b knows a at its main port and four lane ports.
    b.set_endpoint(*l.peer_at_y, a.underlay, {45000, 45001, 45002, 45003});
    const bytes plain = ip_packet(overlay4(1, 1), overlay4(2, 1), 80);
    auto from = [&](const socket_address& src) {
        const auto r = l.x_to_y->keypair.reserve(1);
        release(decap(b, {datagram(reference_message(*l.x_to_y, r.first, plain), src)}));
    };
    from(a.underlay);
    from(udp("192.0.2.1", 45002));  // a lane of the known endpoint
    EXPECT_TRUE(drain(b).empty());

    const socket_address moved = udp("203.0.113.5", 6000);
    from(moved);
    EXPECT_TRUE(b.ctx.posted);
    from(moved);
    from(moved);
    auto got = drain(b);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, mailbox_kind::endpoint_changed);
    EXPECT_TRUE(got[0].source == moved);
    EXPECT_EQ(got[0].peer, l.peer_at_y);
    EXPECT_EQ(static_cast<unsigned>(got[0].worker), this_worker);

    const socket_address moved_again = udp("203.0.113.5", 6001);  // NAT rebinding: new port
    from(moved_again);
    got = drain(b);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(got[0].source == moved_again);
    // A forgery from yet another source reports nothing.
    bytes forged = reference_message(*l.x_to_y, l.x_to_y->keypair.reserve(1).first, plain);
    forged[20] ^= 1;
    (void)decap(b, {datagram(forged, udp("203.0.113.66", 1))});
    EXPECT_TRUE(drain(b).empty());
    EXPECT_EQ(b.counters.rx_packets.get(), 6u);
}

// When the mailbox is full the report is lost (counted as ring_full); the next packet from the
// same new source must ask again, or the peer never roams.
TEST_F(Pipeline, RoamingReportRetriedAfterMailboxWasFull) {
    const peer_link l = connect(a, b);
    const bytes plain = ip_packet(overlay4(1, 1), overlay4(2, 1), 80);
    const socket_address moved = udp("203.0.113.5", 6000);
    const auto taken = exhaust(b);
    const drop_counts before = drops(b);
    std::vector<packet*> out = decap(b, {datagram(reference_message(*l.x_to_y, 0, plain), moved)});
    EXPECT_EQ(out.size(), 1u);  // the packet itself is fine
    release(out);
    expect_drops(b, before, drop_reason::ring_full);
    give_back(b, taken);
    release(decap(b, {datagram(reference_message(*l.x_to_y, 1, plain), moved)}));
    const auto got = drain(b);
    ASSERT_EQ(got.size(), 1u) << "endpoint change never reported after one full mailbox";
    EXPECT_EQ(got[0].kind, mailbox_kind::endpoint_changed);
}

TEST_F(Pipeline, AwaitingConfirmationPostsSessionConfirmedOnce) {
    const peer_link l = connect(a, b);
    l.y_to_x->awaiting_confirmation.store(true);
    const bytes plain = ip_packet(overlay4(1, 1), overlay4(2, 1), 80);
    std::vector<bytes> first(3, plain), second(2, plain);
    release(send(a, b, first));
    release(send(a, b, second));
    const auto got = drain(b);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, mailbox_kind::session_confirmed);
    EXPECT_EQ(got[0].sess, l.y_to_x);
    EXPECT_EQ(got[0].peer, l.peer_at_y);
    EXPECT_EQ(b.counters.rx_packets.get(), 5u);
    // A confirmed session (the control thread cleared the flag) posts nothing.
    l.y_to_x->awaiting_confirmation.store(false);
    release(send(a, b, first));
    EXPECT_TRUE(drain(b).empty());
}

// Same as roaming: a confirmation lost to a full mailbox must be asked for again, or the
// responder never promotes the session the initiator is already using.
TEST_F(Pipeline, ConfirmationRetriedAfterMailboxWasFull) {
    const peer_link l = connect(a, b);
    l.y_to_x->awaiting_confirmation.store(true);
    const bytes plain = ip_packet(overlay4(1, 1), overlay4(2, 1), 80);
    const auto taken = exhaust(b);
    release(send(a, b, {plain}));
    EXPECT_EQ(b.counters.drops[static_cast<unsigned>(drop_reason::ring_full)].get(), 1u);
    give_back(b, taken);
    release(send(a, b, {plain}));
    const auto got = drain(b);
    ASSERT_EQ(got.size(), 1u) << "session confirmation never asked for after one full mailbox";
    EXPECT_EQ(got[0].kind, mailbox_kind::session_confirmed);
}

// ---------------------------------------------------------------------------------------------
// Lanes and flow hashing.

// ---------------------------------------------------------------------------------------------
// Packets that are views into provided receive buffers (as the io_uring worker makes them).

// One UDP receive holding several datagrams, each a view into the same ring buffer, decrypted
// in place: the good ones come out where they landed, and whatever else happens to the others
// (bad_auth, unknown index, garbage, keepalive, a handshake copied for the control thread), the
// buffer goes back to its ring when the reader and the last packet have let go of it.
TEST_F(Pipeline, ViewsOfOneReceiveDecryptInPlaceAndGiveTheBufferBack) {
    const peer_link l = connect(a, b);
    buffer_ring ring(2, 65536 + 128, 64, 65536);
    ring.provide_all();
    ASSERT_TRUE(ring.take(1));  // the buffer the kernel filled; this reference is the reader's
    std::vector<bytes> plain;
    std::vector<bytes> wire;
    for (uint32_t i = 0; i < 4; ++i) {
        plain.push_back(ip_packet(overlay4(1, 1), overlay4(2, 1), 100 + 300 * i, 17, 1000, 53, i));
        wire.push_back(reference_message(*l.x_to_y, i, plain.back()));
    }
    bytes forged = reference_message(*l.x_to_y, 9, plain[0]);
    forged[20] ^= 1;
    bytes unknown = reference_message(*l.x_to_y, 10, plain[0]);
    crypto::store_le32(unknown.data() + 4, 0xdeadbeef);
    const bytes garbage(64, 0x77);
    const bytes keepalive = reference_message(*l.x_to_y, 11, {});
    const bytes init = handshake_message(a, b, crypto::spec::message_initiation_type);
    const std::vector<const bytes*> order{&wire[0], &forged,  &wire[1],    &init,   &unknown,
                                          &wire[2], &garbage, &keepalive, &wire[3]};
    const std::array<std::size_t, 4> good_at{0, 2, 5, 8};  // where wire[i] is in `order`
    constexpr uint32_t step = 2048;  // UDP_GRO segments sit back to back; spaced out here
    std::vector<packet*> burst;
    for (std::size_t i = 0; i < order.size(); ++i) {
        uint8_t* at = ring.kernel_data(1) + i * step;
        std::memcpy(at, order[i]->data(), order[i]->size());
        packet* p = pool.alloc_view(ring, 1, at, static_cast<uint32_t>(order[i]->size()));
        ASSERT_NE(p, nullptr);
        p->remote = a.underlay;
        burst.push_back(p);
    }
    EXPECT_EQ(ring.references(1), 1u + order.size());
    const drop_counts before = drops(b);
    std::vector<packet*> out = decap(b, burst);
    ASSERT_EQ(out.size(), plain.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
        EXPECT_EQ(contents(out[i]), plain[i]) << i;
        EXPECT_EQ(out[i]->ring, &ring);
        EXPECT_EQ(out[i]->data, ring.kernel_data(1) + good_at[i] * step + 16) << "decrypted where it landed";
    }
    const drop_counts after = drops(b);
    for (std::size_t r = 0; r < n_drop_reasons; ++r) {
        const auto why = static_cast<drop_reason>(r);
        const uint64_t want =
            why == drop_reason::bad_auth || why == drop_reason::unknown_index || why == drop_reason::bad_message ? 1 : 0;
        EXPECT_EQ(after[r] - before[r], want) << drop_reason_names[r];
    }
    const auto got = drain(b);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, mailbox_kind::handshake);
    EXPECT_EQ(got[0].payload, init) << "copied out of the buffer";
    EXPECT_EQ(ring.references(1), 1u + out.size()) << "the reader and the packets coming out";
    ring.release(1);
    EXPECT_EQ(ring.held(), 1u);
    const uint64_t published = ring.published();
    release(out);
    EXPECT_EQ(ring.held(), 0u);
    ring.publish();
    EXPECT_EQ(ring.published(), published + 1);
}

// Device reads, one packet per buffer, encrypted in place: the WireGuard header goes into the
// headroom and padding and tag behind. Packets that are staged for the control thread (copied)
// or dropped give their buffer back at once; the sent ones when they are freed.
TEST_F(Pipeline, ViewsOfDeviceReadsEncryptInPlaceAndGiveTheirBuffersBack) {
    const peer_link l = connect(a, b);
    a.add_peer(c, false);  // a route, but no session yet: its packets are staged
    constexpr uint32_t vnet = 10;
    buffer_ring ring(4, 65536 + 128, 64 - vnet, 65536 + vnet);
    ring.provide_all();
    const std::vector<bytes> plain{
        ip_packet(overlay4(1, 1), overlay4(2, 1), 1420, 6, 1, 2, 1),
        ip_packet(overlay4(1, 1), overlay4(3, 1), 200, 17, 1, 2, 2),    // to c: staged
        ip_packet(overlay4(1, 1), overlay4(9, 9), 300, 17, 1, 2, 3),    // nobody's: no_route
        ip_packet(overlay6(1, 1), overlay6(2, 1), 61, 17, 1, 2, 4),
    };
    std::vector<packet*> burst;
    for (uint16_t id = 0; id < plain.size(); ++id) {
        ASSERT_TRUE(ring.take(id));
        uint8_t* ip = ring.kernel_data(id) + vnet;  // behind the virtio-net header
        ASSERT_EQ(ip - ring.start(id), packet_headroom);
        std::memcpy(ip, plain[id].data(), plain[id].size());
        burst.push_back(pool.alloc_view(ring, id, ip, static_cast<uint32_t>(plain[id].size())));
        ASSERT_NE(burst.back(), nullptr);
        ring.release(id);  // the read is processed; the packet holds the buffer now
    }
    EXPECT_EQ(ring.held(), 4u);
    const drop_counts before = drops(a);
    std::vector<packet*> messages = encap(a, burst);
    ASSERT_EQ(messages.size(), 2u);
    const std::array<uint16_t, 2> sent{0, 3};
    for (std::size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(messages[i]->data, ring.start(sent[i]) + packet_headroom - 16) << "header in the headroom";
        EXPECT_EQ(contents(messages[i]), reference_message(*l.x_to_y, i, plain[sent[i]]));
    }
    expect_drops(a, before, drop_reason::no_route);
    const auto got = drain(a);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, mailbox_kind::staged_packet);
    EXPECT_EQ(got[0].payload, plain[1]);
    EXPECT_EQ(ring.held(), 2u) << "the staged and the dropped packet gave their buffers back";
    EXPECT_EQ(ring.references(1), 0u);
    EXPECT_EQ(ring.references(2), 0u);
    release(messages);
    EXPECT_EQ(ring.held(), 0u);
}

TEST_F(Pipeline, FlowHashSymmetricAndPortSensitive) {
    for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
        for (bool v6 : {false, true}) {
            const ip_address x = v6 ? overlay6(1, 5) : overlay4(1, 5), y = v6 ? overlay6(2, 9) : overlay4(2, 9);
            const bytes fwd = ip_packet(x, y, 100, proto, 1111, 2222);
            const bytes rev = ip_packet(y, x, 100, proto, 2222, 1111);
            EXPECT_EQ(flow_hash(fwd), flow_hash(rev));
            EXPECT_NE(flow_hash(fwd), flow_hash(ip_packet(x, y, 100, proto, 1112, 2222)));
            EXPECT_EQ(flow_hash(fwd), flow_hash(ip_packet(x, y, 1400, proto, 1111, 2222, 99)));  // size, payload
        }
    }
    EXPECT_EQ(flow_hash({}), 0u);
    const bytes garbage(3, 0x45);
    EXPECT_EQ(flow_hash(garbage), 0u);
}

// Fragments of one datagram must take one lane: only the first carries the ports (the others
// carry payload where ports would be), so none may hash them; whole packets still do.
TEST_F(Pipeline, FlowHashSameForAllFragmentsOfADatagram) {
    const ip_address x = overlay4(1, 5), y = overlay4(2, 9);
    for (uint8_t proto : {uint8_t{6}, uint8_t{17}}) {
        bytes first = ip_packet(x, y, 1420, proto, 1111, 2222);
        put16(&first[6], 0x2000);  // MF, offset 0: carries the ports
        bytes middle = ip_packet(x, y, 1420, proto, 0xabcd, 0x1234, 7);  // payload bytes where ports were
        put16(&middle[6], 0x2000 | 175);  // MF, offset 1400
        bytes last = ip_packet(x, y, 300, proto, 0x5555, 0x0101, 8);
        put16(&last[6], 350);  // offset 2800, no MF
        EXPECT_EQ(flow_hash(first), flow_hash(middle));
        EXPECT_EQ(flow_hash(first), flow_hash(last));
        bytes df_whole = ip_packet(x, y, 1420, proto, 1111, 2222);
        put16(&df_whole[6], 0x4000);  // DF only: not a fragment
        const bytes whole = ip_packet(x, y, 1420, proto, 1111, 2222);
        EXPECT_EQ(flow_hash(df_whole), flow_hash(whole));
        EXPECT_NE(flow_hash(whole), flow_hash(ip_packet(x, y, 1420, proto, 1112, 2222))) << "ports still count";
        // Different datagrams' fragments of one pair of hosts share the hash; another host does not.
        bytes other = ip_packet(x, overlay4(2, 10), 1420, proto, 1111, 2222);
        put16(&other[6], 0x2000);
        EXPECT_NE(flow_hash(first), flow_hash(other));
    }
    // IPv6: the Fragment header (next header 44) in every fragment, the first one's carrying the
    // ports behind it: all hash alike.
    const ip_address x6 = overlay6(1, 5), y6 = overlay6(2, 9);
    bytes first6 = ip_packet(x6, y6, 1280, 44, 0x1100, 0x0001, 1);  // next 17, offset 0, MF
    bytes last6 = ip_packet(x6, y6, 300, 44, 0x1100, 0x0af0, 2);    // next 17, offset 350, no MF
    EXPECT_EQ(flow_hash(first6), flow_hash(last6));
}

TEST_F(Pipeline, LanesPerFlowStableSymmetricAndAllUsed) {
    const peer_link ab = connect(a, b, true);
    const std::vector<uint16_t> b_lanes{41000, 41001, 41002, 41003}, a_lanes{42000, 42001, 42002, 42003};
    a.set_endpoint(*ab.peer_at_x, b.underlay, b_lanes);
    b.set_endpoint(*ab.peer_at_y, a.underlay, a_lanes);
    std::set<uint16_t> used;
    for (uint16_t flow = 0; flow < 64; ++flow) {
        const bool v6 = flow % 2 == 1;
        const uint8_t proto = flow % 4 < 2 ? 17 : 6;
        const ip_address x = v6 ? overlay6(1, 1) : overlay4(1, 1), y = v6 ? overlay6(2, 1) : overlay4(2, 1);
        const auto sport = static_cast<uint16_t>(30000 + flow * 7), dport = static_cast<uint16_t>(443 + flow % 3);
        // Five packets of the flow, different sizes, in one burst and then another.
        std::vector<bytes> fwd;
        for (std::size_t i = 0; i < 5; ++i) {
            fwd.push_back(ip_packet(x, y, 60 + 100 * i, proto, sport, dport, flow));
        }
        std::vector<packet*> m1 = encap(a, load_all(fwd)), m2 = encap(a, load_all({fwd[0]}));
        ASSERT_EQ(m1.size(), 5u);
        ASSERT_EQ(m2.size(), 1u);
        const uint16_t lane = m1[0]->remote.port();
        for (const packet* m : {m1[0], m1[1], m1[2], m1[3], m1[4], m2[0]}) {
            EXPECT_EQ(m->remote.port(), lane) << flow;
            EXPECT_EQ(m->role, socket_role::lane);
            EXPECT_TRUE(m->remote.same_host(b.underlay));
        }
        ASSERT_NE(std::find(b_lanes.begin(), b_lanes.end(), lane), b_lanes.end());
        used.insert(lane);
        // The reply direction from b takes the same lane index on a's lanes.
        std::vector<packet*> r = encap(b, load_all({ip_packet(y, x, 80, proto, dport, sport, flow)}));
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0]->remote.port() - a_lanes[0], lane - b_lanes[0]) << flow;
        EXPECT_EQ(r[0]->role, socket_role::lane);
        release(m1);
        release(m2);
        release(r);
    }
    EXPECT_EQ(used.size(), 4u);
}

// ---------------------------------------------------------------------------------------------
// Several peers in one burst.

TEST_F(Pipeline, MixedPeersInterleavedUseTheirOwnKeys) {
    const peer_link ab = connect(a, b);
    const peer_link ac = connect(a, c);
    const peer_link cb = connect(c, b);
    // a → b and a → c interleaved in one burst.
    std::vector<bytes> in;
    for (std::size_t i = 0; i < 40; ++i) {
        const bool to_b = i % 2 == 0 || i % 7 == 0;
        in.push_back(to_b ? ip_packet(overlay4(1, 1), overlay4(2, 1), 40 + i * 9, 17, 1, 2, static_cast<uint32_t>(i))
                          : ip_packet(overlay6(1, 1), overlay6(3, 1), 60 + i * 9, 17, 1, 2, static_cast<uint32_t>(i)));
    }
    std::vector<packet*> messages = encap(a, load_all(in));
    ASSERT_EQ(messages.size(), in.size());
    uint64_t next_b = 0, next_c = 0;
    std::vector<packet*> for_b, for_c;
    std::vector<bytes> plain_b, plain_c;
    for (std::size_t i = 0; i < in.size(); ++i) {
        packet* m = messages[i];
        const bool to_b = in[i][0] >> 4 == 4;
        const peer_link& l = to_b ? ab : ac;
        const uint64_t ctr = to_b ? next_b++ : next_c++;
        EXPECT_EQ(m->peer, l.peer_at_x) << i;
        EXPECT_TRUE(m->remote == (to_b ? b.underlay : c.underlay)) << i;
        EXPECT_EQ(contents(m), reference_message(*l.x_to_y, ctr, in[i])) << i;
        (to_b ? for_b : for_c).push_back(m);
        (to_b ? plain_b : plain_c).push_back(in[i]);
    }
    EXPECT_EQ(ab.peer_at_x->counters[this_worker].tx_packets.get(), plain_b.size());
    EXPECT_EQ(ac.peer_at_x->counters[this_worker].tx_packets.get(), plain_c.size());
    std::vector<packet*> out_c = decap(c, deliver(for_c, a.underlay));
    ASSERT_EQ(out_c.size(), plain_c.size());
    for (std::size_t i = 0; i < out_c.size(); ++i) {
        EXPECT_EQ(contents(out_c[i]), plain_c[i]);
    }
    release(out_c);

    // b receives from a and c interleaved, with some forgeries mixed in: the good ones come out
    // in order, each checked against its own sender's allowed IPs.
    std::vector<bytes> wire_b;
    std::vector<socket_address> src;
    for (packet* m : for_b) {
        wire_b.push_back(contents(m));
        src.push_back(a.underlay);
        pool.free(m);
    }
    std::vector<bytes> expected;
    std::vector<packet*> burst;
    for (std::size_t i = 0; i < wire_b.size(); ++i) {
        burst.push_back(datagram(wire_b[i], a.underlay));
        expected.push_back(plain_b[i]);
        const bytes from_c = ip_packet(overlay4(3, 4), overlay4(2, 1), 50 + i, 17, 3, 4, static_cast<uint32_t>(i));
        burst.push_back(datagram(reference_message(*cb.x_to_y, i, from_c), c.underlay));
        expected.push_back(from_c);
        if (i % 5 == 0) {
            bytes forged = reference_message(*cb.x_to_y, 1000 + i, from_c);
            forged[17] ^= 0x80;
            burst.push_back(datagram(forged, c.underlay));
        }
    }
    const drop_counts before = drops(b);
    const std::size_t forgeries = burst.size() - expected.size();
    std::vector<packet*> out_b = decap(b, burst);
    ASSERT_EQ(out_b.size(), expected.size());
    for (std::size_t i = 0; i < out_b.size(); ++i) {
        EXPECT_EQ(contents(out_b[i]), expected[i]) << i;
    }
    release(out_b);
    expect_drops(b, before, drop_reason::bad_auth, forgeries);
    EXPECT_EQ(ab.peer_at_y->counters[this_worker].rx_packets.get(), wire_b.size());
    EXPECT_EQ(cb.peer_at_y->counters[this_worker].rx_packets.get(), wire_b.size());
    EXPECT_TRUE(drain(b).empty());
}

}  // namespace
}  // namespace meshfwd::dataplane
