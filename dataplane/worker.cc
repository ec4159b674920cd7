// The worker thread's io_uring loop (see worker.h). Only the worker thread touches `io` after
// start(); start() and join() run on the control thread.
//
// Per loop iteration: one RCU quiescent state; harvest completions (device reads, UDP receives,
// finished sends/writes); cut device reads into packets (virtio-net: checksum completion or
// TSO/USO split) and UDP receives into datagrams (UDP_GRO: split by segment size); run the two
// pipeline stages in bursts of `batch`; queue UDP sends (grouped for UDP_SEGMENT) and device
// writes (TCP segments, and UDP datagrams where the device takes USO, coalesced for it, gro.h); start read rounds; one submit.
//
// Reads: each source (the TUN queue, the listen socket, the lane socket) has at most one read
// waiting for data at a time. When it completes, the worker reads on in rounds of non-blocking
// reads (RWF_NOWAIT / MSG_DONTWAIT), which complete inline in the same io_uring_enter with data
// or -EAGAIN, doubling the round while every read finds data; the first -EAGAIN ends the rounds
// and one waiting read is armed again. Leaving 16 reads waiting on one file instead makes every
// packet wake all 16: one wins, and io_uring punts each loser that finds the queue empty to an
// io-wq thread blocked in the read, so from then on each packet costs a dozen thread wake-ups
// (measured: ~150 us per packet on a 2-vCPU VM, a third of the tunnel's ping RTT).
//
// Buffers: reads name a provided buffer ring (buffer_ring.h; one for the TUN queue, one for both
// sockets, worker_settings::ring_buffers of 64 KiB each) and the kernel picks the buffer. A
// single packet from the device becomes one packet whose data is in that buffer (a view, see
// packet_pool.h): the WireGuard header goes into the 64 bytes in front, padding and tag behind.
// A UDP receive becomes one view per datagram (UDP_GRO segment), decrypted in place. The buffer
// goes back to its ring when the last packet in it is freed (sent, written, dropped, or copied
// into a mailbox message for the control thread, as handshakes and staged packets are), in
// batches before the next reads. TSO/USO super-packets are still split into pool packets (each
// segment needs its own headers), after which their buffer goes straight back. A read that
// finds its ring empty (-ENOBUFS) is counted (no_rx_buffer) and its source left without a read
// until a buffer has gone back (the data waits in the kernel queue meanwhile). Without provided
// buffer rings (kernel < 5.19, or turned off: chosen once at start), each read slot has a fixed
// buffer and every packet is copied out of it into a pool packet.
#include "dataplane/worker.h"

#include "crypto/messages.h"
#include "dataplane/buffer_ring.h"
#include "dataplane/gro.h"
#include "dataplane/gso.h"
#include "dataplane/packet_pool.h"
#include "dataplane/pipeline.h"
#include "dataplane/udp_socket.h"

#include <liburing.h>
#include <netinet/udp.h>
#include <sys/uio.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <future>
#include <new>
#include <string>
#include <vector>

namespace meshfwd::dataplane {
namespace {

constexpr unsigned tun_read_slots = 16;
constexpr unsigned udp_read_slots = 16;  // per socket
// Without provided buffer rings: one fixed buffer per read slot, copied out of.
constexpr uint32_t large_buffer_size = 65536 + 64;
// Provided buffer rings (worker_settings::ring_buffers each): one for device reads, one for both
// UDP sockets.
constexpr uint32_t ring_read_size = 65536;  // the most a read returns (past a virtio-net header)
// Headroom (the WireGuard header; the virtio-net header of a device read lands at its end), the
// read, then room for padding and the tag behind a packet encrypted in place.
constexpr uint32_t ring_buffer_stride = packet_headroom + ring_read_size + packet_headroom;
// So a read buffer holds any single packet or datagram of the largest MTU, as pool buffers sized
// from the MTU do (packet_buffer_size_for).
static_assert(ring_read_size >= crypto::limits::max_mtu + 32);
constexpr uint16_t tun_buffer_group = 0;
constexpr uint16_t udp_buffer_group = 1;
// Views: one per device-read buffer, up to UDP_GRO_CNT_MAX (64) datagrams per receive buffer.
constexpr uint32_t max_gro_segments = 64;
constexpr unsigned tx_slot_count = 512;
constexpr unsigned max_iov = 128;
// A coalesced device write has one iovec per packet in it.
static_assert(tcp_coalescer::default_max_segments <= max_iov);
constexpr unsigned max_udp_segments = 64;
constexpr uint32_t max_gso_bytes = 65000;

enum class op : uint64_t { tun_read = 1, udp_recv = 2, tx = 3 };
constexpr uint32_t waiting_read_bit = 0x8000'0000u;  // in a read's tag: the source's waiting read
inline uint64_t tag(op kind, uint32_t slot) noexcept { return (static_cast<uint64_t>(kind) << 32) | slot; }

int64_t to_ns(crypto::mono_time t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

struct worker::io {
    struct tun_slot {
        uint8_t* buffer = nullptr;
        bool armed = false;
    };
    struct recv_slot {
        msghdr msg{};
        iovec iov{};
        socket_address from;
        alignas(cmsghdr) std::byte control[receive_cmsg_space + 32];  // + slack: never MSG_CTRUNC
        uint8_t* buffer = nullptr;
        socket_role role = socket_role::listen;
        bool armed = false;
    };
    struct tx_slot {
        msghdr msg{};
        socket_address to;
        alignas(cmsghdr) std::byte control[send_cmsg_space];
        std::array<iovec, max_iov> iov{};
        std::array<packet*, max_iov> packets{};
        uint32_t packet_count = 0;
        int fd = -1;
        bool udp = false;
    };

    // One file the worker reads from; see "Reads" at the top.
    struct read_source {
        int fd = -1;
        bool waiting = false;      // the one waiting read is outstanding
        bool readable = false;     // go on with non-blocking rounds
        uint32_t burst = 1;        // reads per round: doubles while every read finds data
        uint32_t outstanding = 0;  // non-blocking reads of the current round
        uint32_t round_data = 0;   // reads of this round that returned data
        bool round_drained = false;  // a read of this round found the file empty (or failed)
        bool nowait = true;        // false: the file refused RWF_NOWAIT; one waiting read at a time
        bool starved = false;      // a read found its buffer ring empty: wait for a buffer back
        uint64_t starved_at = 0;   // the ring's published() then
    };
    enum source_index : uint32_t { source_tun = 0, source_listen = 1, source_lane = 2, source_count = 3 };

    io_uring ring{};
    bool ring_ready = false;
    bool deferred_taskrun = false;  // completions only run inside our io_uring_enter(GETEVENTS)
    bool taskrun_flag = false;      // the kernel flags pending completions in the SQ ring
    packet_pool pool;
    std::unique_ptr<crypto::aead_burst> aead;
    tcp_coalescer coalescer{max_burst, tcp_coalescer::default_max_segments};
    // Provided buffer rings (both or neither); without them, `large` holds the slots' buffers.
    std::unique_ptr<buffer_ring> tun_ring;
    std::unique_ptr<buffer_ring> udp_ring;
    std::unique_ptr<uint8_t[]> large;
    std::string receive_mode;  // what start() reports
    std::array<tun_slot, tun_read_slots> tun_slots{};
    std::array<recv_slot, 2 * udp_read_slots> recv_slots{};
    std::array<read_source, source_count> sources{};
    // The last sticky source reported gone, and when: one notice per address and 100 ms, not
    // one per failed send, while the control thread forgets it.
    local_address reported_gone;
    int64_t reported_gone_ns = 0;
    std::vector<tx_slot> tx{tx_slot_count};
    std::vector<uint32_t> tx_free;
    std::array<packet*, max_burst> tun_rx{};
    std::size_t tun_rx_count = 0;
    std::array<packet*, max_burst> udp_rx{};
    std::size_t udp_rx_count = 0;
    std::array<gro_packet, max_burst> gro_in{};
    pipeline_context ctx;
    bool pending_submit = false;
    // Largest IP packet a pool packet takes, leaving room for padding and the tag behind it.
    uint32_t segment_capacity;

    // Pool buffers sized for `mtu` (packet_pool.h).
    io(uint32_t views, uint32_t mtu)
        : pool(pool_packets_for(packet_buffer_size_for(mtu)), views, packet_buffer_size_for(mtu)),
          segment_capacity(pool.data_capacity() - packet_tailroom) {}

    ~io() {
        if (ring_ready) {
            io_uring_queue_exit(&ring);
        }
    }

    void submit() noexcept {
        // With deferred task work, also run what completed meanwhile (saves a later syscall).
        if (deferred_taskrun) {
            io_uring_submit_and_get_events(&ring);
        } else {
            io_uring_submit(&ring);
        }
    }

    io_uring_sqe* sqe() noexcept {
        io_uring_sqe* s = io_uring_get_sqe(&ring);
        if (s == nullptr) {
            submit();
            s = io_uring_get_sqe(&ring);
        }
        if (s != nullptr) {
            pending_submit = true;
        }
        return s;
    }
};

worker::worker(const worker_settings& settings, const worker_shared& shared)
    : _settings(settings), _shared(shared), _box(settings.mtu) {}

worker::~worker() { join(); }

std::string worker::aead_name() const { return _io && _io->aead ? std::string(_io->aead->name()) : std::string(); }

std::string worker::receive_buffers() const { return _io ? _io->receive_mode : std::string(); }

result<void> worker::start() {
    const uint32_t rings = _settings.provided_buffers ? _settings.ring_buffers : 0;
    if (_settings.provided_buffers && (rings > 32768 || !std::has_single_bit(rings))) {
        return make_error("worker " + std::to_string(_settings.id) + ": ring_buffers must be a power of two <= 32768");
    }
    auto state = std::make_unique<io>(rings * (1 + max_gro_segments), _settings.mtu);
    state->aead = crypto::make_aead_burst(_settings.crypto);
    if (!state->aead) {
        return make_error("worker " + std::to_string(_settings.id) + ": crypto backend " +
                          std::string(crypto::to_string(_settings.crypto)) + " is not available");
    }
    if (_settings.provided_buffers) {
        // Registered on the worker thread (setup_ring), which falls back to fixed buffers if the
        // kernel refuses. A device read's virtio-net header goes at the end of the headroom.
        const uint32_t vnet = _settings.vnet_hdr ? virtio_net_hdr_size : 0;
        state->tun_ring =
            std::make_unique<buffer_ring>(rings, ring_buffer_stride, packet_headroom - vnet, ring_read_size + vnet);
        state->udp_ring = std::make_unique<buffer_ring>(rings, ring_buffer_stride, packet_headroom, ring_read_size);
    }
    for (unsigned i = 0; i < 2 * udp_read_slots; ++i) {
        state->recv_slots[i].role = i < udp_read_slots ? socket_role::listen : socket_role::lane;
    }
    state->sources[io::source_tun].fd = _settings.tun_fd;
    state->sources[io::source_listen].fd = _settings.listen_fd;
    state->sources[io::source_lane].fd = _settings.lane_fd;
    state->tx_free.reserve(tx_slot_count);
    for (uint32_t i = 0; i < tx_slot_count; ++i) {
        state->tx_free.push_back(tx_slot_count - 1 - i);
    }
    state->coalescer.set_enabled(_settings.vnet_hdr);
    state->coalescer.set_udp(_settings.vnet_hdr && _settings.tun_uso);
    auto& ctx = state->ctx;
    ctx.worker = _settings.id;
    ctx.sessions = _shared.sessions;
    ctx.cookies = _shared.cookies;
    ctx.aead = state->aead.get();
    ctx.pool = &state->pool;
    ctx.box = &_box;
    ctx.counters = &_counters;
    ctx.mtu = _settings.mtu;
    _io = std::move(state);
    // The ring is created on the worker thread itself: with IORING_SETUP_SINGLE_ISSUER the creating
    // thread is the only one allowed to submit, and DEFER_TASKRUN needs SINGLE_ISSUER.
    std::promise<std::string> ready;
    auto ready_result = ready.get_future();
    _thread = std::thread([this, &ready] { run(ready); });
    const std::string error = ready_result.get();
    if (!error.empty()) {
        _thread.join();
        return make_error("worker " + std::to_string(_settings.id) + ": " + error);
    }
    return {};
}

// Worker thread. Completions are collected by our own io_uring_enter calls when the kernel allows
// it (DEFER_TASKRUN, 6.1+) or at least cooperatively (COOP_TASKRUN): either way a busy worker is
// not interrupted by an inter-processor interrupt for each completion; it sees IORING_SQ_TASKRUN
// and collects them itself. On VMs, where IPIs cost tens of microseconds, this decides latency.
std::string worker::setup_ring() noexcept {
    io& w = *_io;
    constexpr std::array<unsigned, 3> flag_sets{
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0u,
    };
    int rc = -EINVAL;
    for (const unsigned flags : flag_sets) {
        io_uring_params params{};
        params.cq_entries = 4096;
        params.flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        rc = io_uring_queue_init_params(1024, &w.ring, &params);
        if (rc == 0) {
            w.deferred_taskrun = (flags & IORING_SETUP_DEFER_TASKRUN) != 0;
            w.taskrun_flag = (flags & IORING_SETUP_TASKRUN_FLAG) != 0;
            break;
        }
    }
    if (rc < 0) {
        return std::string("io_uring set-up failed: ") + std::strerror(-rc);
    }
    w.ring_ready = true;
    return setup_receive_buffers();
}

// Registers the provided buffer rings (kernel 5.19+), or else gives every read slot a fixed
// buffer to copy packets out of. Worker thread, before the loop; the choice is for good.
std::string worker::setup_receive_buffers() noexcept {
    io& w = *_io;
    std::string why_not = "turned off";
    if (w.tun_ring && w.udp_ring) {
        const auto register_ring = [&w](buffer_ring& r, uint16_t group) {
            r.provide_all();
            io_uring_buf_reg reg{};
            reg.ring_addr = reinterpret_cast<uintptr_t>(r.shared());
            reg.ring_entries = r.count();
            reg.bgid = group;
            return io_uring_register_buf_ring(&w.ring, &reg, 0);
        };
        int rc = register_ring(*w.tun_ring, tun_buffer_group);
        if (rc == 0) {
            rc = register_ring(*w.udp_ring, udp_buffer_group);
            if (rc != 0) {
                io_uring_unregister_buf_ring(&w.ring, tun_buffer_group);
            }
        }
        if (rc == 0) {
            w.receive_mode = "provided buffer rings (" + std::to_string(w.tun_ring->count()) + " + " +
                             std::to_string(w.udp_ring->count()) + " x 64 KiB), packets processed in place";
            return {};
        }
        why_not = std::string("not available: ") + std::strerror(-rc);
    }
    w.tun_ring.reset();
    w.udp_ring.reset();
    try {
        const std::size_t large_count = tun_read_slots + 2 * udp_read_slots;
        w.large.reset(new uint8_t[large_count * large_buffer_size]);
    } catch (const std::bad_alloc&) {
        return "no memory for receive buffers";
    }
    for (unsigned i = 0; i < tun_read_slots; ++i) {
        w.tun_slots[i].buffer = w.large.get() + std::size_t{i} * large_buffer_size;
    }
    for (unsigned i = 0; i < 2 * udp_read_slots; ++i) {
        w.recv_slots[i].buffer = w.large.get() + std::size_t{tun_read_slots + i} * large_buffer_size;
    }
    w.receive_mode = "fixed buffers, packets copied out (provided buffer rings " + why_not + ")";
    return {};
}

void worker::join() {
    if (_thread.joinable()) {
        _thread.join();
    }
}

namespace {

using io_t = worker::io;

io_t::read_source& source_of(io_t& w, op kind, uint32_t slot) noexcept {
    if (kind == op::tun_read) {
        return w.sources[io_t::source_tun];
    }
    return w.sources[slot < udp_read_slots ? io_t::source_listen : io_t::source_lane];
}

// The provided buffer ring reads of a source take their buffers from (null without rings).
buffer_ring* ring_of(io_t& w, uint32_t source_index) noexcept {
    return source_index == io_t::source_tun ? w.tun_ring.get() : w.udp_ring.get();
}

// The first slot of `slots[first, first + count)` with no read in flight, or -1.
template <class Slots>
int free_slot(const Slots& slots, uint32_t first, uint32_t count) noexcept {
    for (uint32_t i = first; i < first + count; ++i) {
        if (!slots[i].armed) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

// One read into a free slot of `source`: non-blocking, or the source's waiting read. False when
// no slot is free or the SQ is full.
bool start_read(io_t& w, uint32_t source_index, bool waiting) noexcept {
    const bool tun = source_index == io_t::source_tun;
    const int found = tun ? free_slot(w.tun_slots, 0, tun_read_slots)
                          : free_slot(w.recv_slots, source_index == io_t::source_listen ? 0 : udp_read_slots,
                                      udp_read_slots);
    io_uring_sqe* q = found < 0 ? nullptr : w.sqe();
    if (q == nullptr) {
        return false;
    }
    const auto i = static_cast<uint32_t>(found);
    const int fd = w.sources[source_index].fd;
    const uint32_t waiting_bit = waiting ? waiting_read_bit : 0;
    buffer_ring* ring = ring_of(w, source_index);
    if (tun) {
        auto& slot = w.tun_slots[i];
        if (ring != nullptr) {
            io_uring_prep_read(q, fd, nullptr, ring->kernel_length(), static_cast<uint64_t>(-1));
            q->flags |= IOSQE_BUFFER_SELECT;
            q->buf_group = tun_buffer_group;
        } else {
            io_uring_prep_read(q, fd, slot.buffer, large_buffer_size, static_cast<uint64_t>(-1));
        }
        q->rw_flags = waiting ? 0 : RWF_NOWAIT;
        io_uring_sqe_set_data64(q, tag(op::tun_read, i | waiting_bit));
        slot.armed = true;
        return true;
    }
    auto& slot = w.recv_slots[i];
    // With a selected buffer, the kernel takes only the length from the one iovec (and still
    // fills in the name, control data and flags of the msghdr).
    slot.iov = ring != nullptr ? iovec{nullptr, ring->kernel_length()} : iovec{slot.buffer, large_buffer_size};
    slot.msg = {};
    slot.msg.msg_name = slot.from.get();
    slot.msg.msg_namelen = sizeof(slot.from.storage);
    slot.msg.msg_iov = &slot.iov;
    slot.msg.msg_iovlen = 1;
    slot.msg.msg_control = slot.control;
    slot.msg.msg_controllen = sizeof(slot.control);
    io_uring_prep_recvmsg(q, fd, &slot.msg, waiting ? 0 : MSG_DONTWAIT);
    if (ring != nullptr) {
        q->flags |= IOSQE_BUFFER_SELECT;
        q->buf_group = udp_buffer_group;
    }
    io_uring_sqe_set_data64(q, tag(op::udp_recv, i | waiting_bit));
    slot.armed = true;
    return true;
}

// Per source: a round of non-blocking reads while the last round found data everywhere,
// otherwise the one waiting read (see the top of the file). A source whose ring ran empty
// waits (without a read) until a buffer has gone back to the ring since, or until we hold none
// of them: the kernel then has them all, in the ring or in reads about to complete.
void arm_reads(io_t& w) noexcept {
    if (w.tun_ring) {
        w.tun_ring->publish();
        w.udp_ring->publish();
    }
    for (uint32_t i = 0; i < io_t::source_count; ++i) {
        auto& src = w.sources[i];
        if (src.fd < 0 || src.waiting || src.outstanding > 0) {
            continue;
        }
        if (src.starved) {
            const buffer_ring& ring = *ring_of(w, i);
            if (ring.published() == src.starved_at && ring.held() > 0) {
                continue;
            }
            src.starved = false;
        }
        if (!src.readable) {
            src.waiting = start_read(w, i, true);
            continue;
        }
        src.readable = false;
        src.round_data = 0;
        src.round_drained = false;
        while (src.outstanding < src.burst && start_read(w, i, false)) {
            ++src.outstanding;
        }
    }
}

// A read of `src` finished (`got_data`: it returned a packet or datagram). The waiting read
// starts rounds when it got data. When a round is complete, go on if every read found data
// (doubling the round), otherwise size the next round to what this one found.
void on_read_done(io_t::read_source& src, bool waiting, bool got_data) noexcept {
    constexpr uint32_t max_round = tun_read_slots;
    static_assert(tun_read_slots == udp_read_slots);
    if (waiting) {
        src.waiting = false;
        src.readable = got_data && src.nowait;
        return;
    }
    if (got_data) {
        ++src.round_data;
    } else {
        src.round_drained = true;
    }
    if (src.outstanding > 0 && --src.outstanding > 0) {
        return;
    }
    if (!src.round_drained) {
        src.readable = true;
        src.burst = std::min(max_round, src.burst * 2);
    } else {
        src.burst = std::clamp(src.round_data + 1, 1u, max_round);
    }
}

// A read of `src` found no buffer in its ring (-ENOBUFS): the data stays queued in the kernel
// (which drops what overflows the queue); no read until a buffer comes back (arm_reads).
void on_no_buffer(io_t& w, io_t::read_source& src, const buffer_ring& ring) noexcept {
    w.ctx.counters->drop(drop_reason::no_rx_buffer);
    src.starved = true;
    src.starved_at = ring.published();
}

// Counts `pkts` as dropped for `why` and frees them.
void drop_all(io_t& w, std::span<packet*> pkts, drop_reason why) noexcept {
    w.ctx.counters->drop(why, pkts.size());
    for (packet* p : pkts) {
        w.pool.free(p);
    }
}

void refresh_time(io_t& w) noexcept {
    w.ctx.now = crypto::mono_clock::now();
    w.ctx.now_ns = to_ns(w.ctx.now);
}

void send_udp(io_t& w, const worker_settings& s, std::span<packet*> pkts) noexcept {
    std::size_t i = 0;
    while (i < pkts.size()) {
        packet* first = pkts[i];
        std::size_t j = i + 1;
        uint32_t total = first->length;
        if (s.udp_gso) {
            while (j < pkts.size() && j - i < max_udp_segments && pkts[j - 1]->length == first->length &&
                   pkts[j]->length <= first->length && pkts[j]->role == first->role &&
                   pkts[j]->remote == first->remote && pkts[j]->local == first->local &&
                   total + pkts[j]->length <= max_gso_bytes) {
                total += pkts[j]->length;
                ++j;
            }
        }
        if (w.tx_free.empty()) {
            drop_all(w, pkts.subspan(i, j - i), drop_reason::no_tx_slot);
            i = j;
            continue;
        }
        io_uring_sqe* q = w.sqe();
        if (q == nullptr) {
            drop_all(w, pkts.subspan(i, j - i), drop_reason::no_sqe);
            i = j;
            continue;
        }
        const uint32_t slot_index = w.tx_free.back();
        w.tx_free.pop_back();
        auto& slot = w.tx[slot_index];
        slot.udp = true;
        slot.to = first->remote;
        slot.packet_count = static_cast<uint32_t>(j - i);
        for (std::size_t k = i; k < j; ++k) {
            slot.iov[k - i] = {pkts[k]->data, pkts[k]->length};
            slot.packets[k - i] = pkts[k];
        }
        slot.msg = {};
        slot.msg.msg_name = slot.to.get();
        slot.msg.msg_namelen = slot.to.length;
        slot.msg.msg_iov = slot.iov.data();
        slot.msg.msg_iovlen = j - i;
        write_send_cmsgs(slot.msg, j - i > 1 ? static_cast<uint16_t>(first->length) : 0, first->local, slot.control);
        slot.fd = first->role == socket_role::lane && s.lane_fd >= 0 ? s.lane_fd : s.listen_fd;
        io_uring_prep_sendmsg(q, slot.fd, &slot.msg, 0);
        io_uring_sqe_set_data64(q, tag(op::tx, slot_index));
        i = j;
    }
}

void write_device(io_t& w, const worker_settings& s, std::span<packet*> pkts) noexcept {
    if (pkts.empty()) {
        return;
    }
    if (!s.vnet_hdr) {
        for (std::size_t i = 0; i < pkts.size(); ++i) {
            if (w.tx_free.empty()) {
                drop_all(w, pkts.subspan(i), drop_reason::no_tx_slot);
                return;
            }
            io_uring_sqe* q = w.sqe();
            if (q == nullptr) {
                drop_all(w, pkts.subspan(i), drop_reason::no_sqe);
                return;
            }
            const uint32_t slot_index = w.tx_free.back();
            w.tx_free.pop_back();
            auto& slot = w.tx[slot_index];
            slot.udp = false;
            slot.packet_count = 1;
            slot.packets[0] = pkts[i];
            io_uring_prep_write(q, s.tun_fd, pkts[i]->data, pkts[i]->length, static_cast<uint64_t>(-1));
            io_uring_sqe_set_data64(q, tag(op::tx, slot_index));
        }
        return;
    }
    for (std::size_t i = 0; i < pkts.size(); ++i) {
        w.gro_in[i] = gro_packet{pkts[i]->data, pkts[i]->length};
    }
    const auto writes = w.coalescer.coalesce(std::span<const gro_packet>(w.gro_in.data(), pkts.size()));
    for (const auto& write : writes) {
        const drop_reason why = w.tx_free.empty()            ? drop_reason::no_tx_slot
                                : write.iov_count > max_iov ? drop_reason::too_many_iov
                                                            : drop_reason::no_sqe;
        io_uring_sqe* q = why == drop_reason::no_sqe ? w.sqe() : nullptr;
        if (q == nullptr) {
            w.ctx.counters->drop(why, write.iov_count);
            for (uint32_t k = 0; k < write.iov_count; ++k) {
                w.pool.free(pkts[write.members[k]]);
            }
            continue;
        }
        const uint32_t slot_index = w.tx_free.back();
        w.tx_free.pop_back();
        auto& slot = w.tx[slot_index];
        slot.udp = false;
        slot.packet_count = write.iov_count;
        for (uint32_t k = 0; k < write.iov_count; ++k) {
            slot.iov[k] = write.iov[k];
            slot.packets[k] = pkts[write.members[k]];
        }
        io_uring_prep_writev(q, s.tun_fd, slot.iov.data(), write.iov_count, static_cast<uint64_t>(-1));
        io_uring_sqe_set_data64(q, tag(op::tx, slot_index));
    }
}

void flush_device_rx(io_t& w, const worker_settings& s) noexcept {
    if (w.tun_rx_count == 0) {
        return;
    }
    const std::size_t n = encapsulate_burst(w.ctx, std::span(w.tun_rx.data(), w.tun_rx_count));
    w.tun_rx_count = 0;
    send_udp(w, s, std::span(w.tun_rx.data(), n));
}

void flush_udp_rx(io_t& w, const worker_settings& s) noexcept {
    if (w.udp_rx_count == 0) {
        return;
    }
    const std::size_t n = decapsulate_burst(w.ctx, std::span(w.udp_rx.data(), w.udp_rx_count));
    w.udp_rx_count = 0;
    write_device(w, s, std::span(w.udp_rx.data(), n));
}

void push_device_packet(io_t& w, const worker_settings& s, packet* p) noexcept {
    w.tun_rx[w.tun_rx_count++] = p;
    if (w.tun_rx_count >= s.batch) {
        flush_device_rx(w, s);
    }
}

// Where a read's data landed: a provided buffer that we hold one reference to (the reader's,
// dropped by release_read_buffer once the read is processed), or the read slot's fixed buffer.
// data == nullptr: the completion carries no buffer.
struct read_buffer {
    buffer_ring* ring = nullptr;
    uint16_t id = 0;
    uint8_t* data = nullptr;
};

read_buffer take_read_buffer(buffer_ring* ring, uint32_t cqe_flags, uint8_t* fixed) noexcept {
    if (ring == nullptr) {
        return {nullptr, 0, fixed};
    }
    const uint32_t id = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
    if ((cqe_flags & IORING_CQE_F_BUFFER) == 0 || !ring->take(id)) {
        return {};
    }
    return {ring, static_cast<uint16_t>(id), ring->kernel_data(static_cast<uint16_t>(id))};
}

void release_read_buffer(const read_buffer& b) noexcept {
    if (b.ring != nullptr) {
        b.ring->release(b.id);
    }
}

// A packet for the `length` bytes at `at` inside `from`: a view into the provided buffer, or a
// copy in a pool packet (then length <= pool.data_capacity()). nullptr when none is free.
packet* packet_for(io_t& w, const read_buffer& from, uint8_t* at, uint32_t length) noexcept {
    if (from.ring != nullptr) {
        return w.pool.alloc_view(*from.ring, from.id, at, length);
    }
    packet* p = w.pool.alloc();
    if (p != nullptr && length > 0) {
        std::memcpy(p->data, at, length);
    }
    if (p != nullptr) {
        p->length = length;
    }
    return p;
}

// Why packet_for() found nothing: no view left, or (copying) no pool packet.
drop_reason no_packet_reason(const read_buffer& from) noexcept {
    return from.ring != nullptr ? drop_reason::no_view : drop_reason::no_packet;
}

// One device read: a single packet becomes one packet in place (or copied, without rings); a
// TSO/USO super-packet is split into pool packets, since each segment needs its own headers.
void on_device_read(io_t& w, const worker_settings& s, const read_buffer& from, uint32_t length) noexcept {
    worker_counters& c = *w.ctx.counters;
    uint8_t* buffer = from.data;
    if (!s.vnet_hdr) {
        if (length > w.segment_capacity) {
            c.drop(drop_reason::too_big);
            return;
        }
        packet* p = packet_for(w, from, buffer, length);
        if (p == nullptr) {
            c.drop(no_packet_reason(from));
            return;
        }
        push_device_packet(w, s, p);
        return;
    }
    if (length < virtio_net_hdr_size) {
        c.drop(drop_reason::bad_offload);
        return;
    }
    const vnet_header h = parse_vnet_header(std::span<const uint8_t, virtio_net_hdr_size>(buffer, virtio_net_hdr_size));
    std::span<uint8_t> ip(buffer + virtio_net_hdr_size, length - virtio_net_hdr_size);
    if (h.gso_type == vnet::gso_none) {
        if (complete_checksum(h, ip) != gso_reason::ok) {
            c.drop(drop_reason::bad_offload);
            return;
        }
        if (ip.size() > w.segment_capacity) {
            c.drop(drop_reason::too_big);
            return;
        }
        packet* p = packet_for(w, from, ip.data(), static_cast<uint32_t>(ip.size()));
        if (p == nullptr) {
            c.drop(no_packet_reason(from));
            return;
        }
        push_device_packet(w, s, p);
        return;
    }
    // A TSO/USO super-packet: split into MTU-sized IP packets, each in its own buffer, in parts
    // of up to split_chunk segments (a 64 KiB packet of a small MSS has hundreds; each part
    // goes into the burst, which flushes at `batch`, before the next is split).
    constexpr uint32_t split_chunk = 128;
    std::array<packet*, split_chunk> seg{};
    std::array<uint8_t*, split_chunk> out{};
    std::array<uint32_t, split_chunk> lengths{};
    // Until the first part says: an upper bound (every segment carries at least one byte).
    uint32_t total = h.gso_size == 0 ? 1 : static_cast<uint32_t>(ip.size() / h.gso_size + 1);
    uint32_t done = 0;
    while (done < total) {
        const uint32_t want = std::min(split_chunk, total - done);
        uint32_t have = 0;
        for (; have < want; ++have) {
            seg[have] = w.pool.alloc();
            if (seg[have] == nullptr) {
                break;
            }
            out[have] = seg[have]->data;
        }
        const gso_split_result r =
            have == 0 ? gso_split_result{gso_reason::too_many_segments, 0, 0}
                      : split_super_packet_from(h, ip, done, std::span<uint8_t* const>(out.data(), have),
                                                w.segment_capacity, std::span<uint32_t>(lengths.data(), have));
        const uint32_t used = r.reason == gso_reason::ok ? r.segments : 0;
        for (uint32_t i = used; i < have; ++i) {
            w.pool.free(seg[i]);
        }
        if (have == 0) {
            c.drop(drop_reason::no_packet, total - done);  // the rest (an upper bound before the first part)
            return;
        }
        if (r.reason != gso_reason::ok) {
            c.drop(drop_reason::bad_offload);  // only the first part can fail: nothing was sent
            return;
        }
        total = r.total;
        if (used == 0) {
            return;  // cannot happen while done < total; never spin
        }
        done += used;
        for (uint32_t i = 0; i < used; ++i) {
            seg[i]->length = lengths[i];
            push_device_packet(w, s, seg[i]);
        }
    }
}

// One receive: each datagram (UDP_GRO segment) becomes a packet, in place or copied.
void on_udp_receive(io_t& w, const worker_settings& s, io_t::recv_slot& slot, const read_buffer& from,
                    uint32_t length) noexcept {
    worker_counters& c = *w.ctx.counters;
    if ((slot.msg.msg_flags & MSG_TRUNC) != 0) {
        c.drop(drop_reason::too_big);
        return;
    }
    slot.from.length = slot.msg.msg_namelen;
    const uint16_t gro = read_udp_gro_cmsg(slot.msg);
    const local_address local = read_pktinfo_cmsg(slot.msg);
    const uint32_t step = gro != 0 ? gro : std::max<uint32_t>(length, 1);
    for (uint32_t offset = 0; offset < length || (length == 0 && offset == 0); offset += step) {
        const uint32_t n = std::min(step, length - offset);
        if (n > w.pool.data_capacity()) {
            c.drop(drop_reason::too_big);
            if (length == 0) {
                break;
            }
            continue;
        }
        packet* p = packet_for(w, from, from.data + offset, n);
        if (p == nullptr) {
            // This datagram and the rest of the receive.
            c.drop(no_packet_reason(from), length == 0 ? 1 : (length - offset + step - 1) / step);
            break;
        }
        p->remote = slot.from;
        p->local = local;
        p->role = slot.role;
        w.udp_rx[w.udp_rx_count++] = p;
        if (w.udp_rx_count >= s.batch) {
            flush_udp_rx(w, s);
        }
        if (length == 0) {
            break;
        }
    }
}

// A UDP send from a sticky source that is no longer ours: tells the control thread (which
// forgets the source for every peer that has it) and sends the same datagrams again from the
// routing table's choice. False when that cannot be done (the slot is then finished as failed).
bool resend_without_source(io_t& w, io_t::tx_slot& slot, uint32_t slot_index) noexcept {
    const local_address gone = slot.packets[0]->local;
    w.ctx.counters->stale_source_resends.add(slot.packet_count);
    if (!(w.reported_gone == gone) || w.ctx.now_ns - w.reported_gone_ns > 100'000'000) {
        if (mailbox_message* m = w.ctx.box->acquire(); m != nullptr) {
            m->kind = mailbox_kind::source_gone;
            m->worker = static_cast<uint16_t>(w.ctx.worker);
            m->peer = nullptr;
            m->sess = nullptr;
            m->local = gone;
            m->length = 0;
            w.ctx.box->post(m);
            w.ctx.posted = true;
            w.reported_gone = gone;
            w.reported_gone_ns = w.ctx.now_ns;
        }  // else: the next failed send asks again
    }
    io_uring_sqe* q = w.sqe();
    if (q == nullptr) {
        return false;
    }
    for (uint32_t k = 0; k < slot.packet_count; ++k) {
        slot.packets[k]->local = {};
    }
    const uint16_t gso = slot.packet_count > 1 ? static_cast<uint16_t>(slot.packets[0]->length) : 0;
    write_send_cmsgs(slot.msg, gso, local_address{}, slot.control);
    io_uring_prep_sendmsg(q, slot.fd, &slot.msg, 0);
    io_uring_sqe_set_data64(q, tag(op::tx, slot_index));
    return true;
}

void on_tx_done(io_t& w, uint32_t slot_index, int result) noexcept {
    auto& slot = w.tx[slot_index];
    if (result < 0 && slot.udp && slot.packet_count > 0 && !slot.packets[0]->local.empty() &&
        stale_source_is(-result) && resend_without_source(w, slot, slot_index)) {
        return;  // completes again when the resend does
    }
    if (result < 0) {
        w.ctx.counters->drop(slot.udp ? drop_reason::tx_error_udp : drop_reason::tx_error_device, slot.packet_count);
    }
    // A device write's iov entries may share a packet (never today, but free each once).
    packet* last = nullptr;
    for (uint32_t k = 0; k < slot.packet_count; ++k) {
        if (slot.packets[k] != last) {
            w.pool.free(slot.packets[k]);
            last = slot.packets[k];
        }
    }
    slot.packet_count = 0;
    w.tx_free.push_back(slot_index);
}

void pin_to_cpu(unsigned cpu) noexcept {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

}  // namespace

void worker::run(std::promise<std::string>& ready) noexcept {
    pin_to_cpu(_settings.cpu);
    if (std::string error = setup_ring(); !error.empty()) {
        ready.set_value(std::move(error));
        return;
    }
    ready.set_value({});
    const std::string name = "meshfwd-w" + std::to_string(_settings.id);
    pthread_setname_np(pthread_self(), name.c_str());
    rcu_thread_registration rcu;
    io& w = *_io;
    const worker_settings& s = _settings;
    arm_reads(w);
    w.submit();
    w.pending_submit = false;
    auto last_work = crypto::mono_clock::now();
    std::array<io_uring_cqe*, 256> cqes{};

    while (_shared.running->load(std::memory_order_relaxed)) {
        rcu_quiescent();
        refresh_time(w);
        w.ctx.snap = _shared.snap->read();
        w.ctx.posted = false;
        if (w.ctx.snap == nullptr) {
            // No snapshot yet: the control thread publishes one before starting workers.
            continue;
        }
        if (w.taskrun_flag && (IO_URING_READ_ONCE(*w.ring.sq.kflags) & IORING_SQ_TASKRUN) != 0) {
            io_uring_get_events(&w.ring);  // completions are waiting for us to run them
        }
        const unsigned n = io_uring_peek_batch_cqe(&w.ring, cqes.data(), cqes.size());
        for (unsigned i = 0; i < n; ++i) {
            const uint64_t data = io_uring_cqe_get_data64(cqes[i]);
            const int res = cqes[i]->res;
            const uint32_t flags = cqes[i]->flags;
            const auto kind = static_cast<op>(data >> 32);
            const bool waiting = (static_cast<uint32_t>(data) & waiting_read_bit) != 0;
            const auto slot = static_cast<uint32_t>(data) & ~waiting_read_bit;
            switch (kind) {
            case op::tun_read: {
                w.tun_slots[slot].armed = false;
                auto& src = source_of(w, kind, slot);
                const read_buffer from = take_read_buffer(w.tun_ring.get(), flags, w.tun_slots[slot].buffer);
                on_read_done(src, waiting, res > 0);
                if (res > 0 && from.data != nullptr) {
                    on_device_read(w, s, from, static_cast<uint32_t>(res));
                } else if (res == -ENOBUFS && w.tun_ring) {
                    on_no_buffer(w, src, *w.tun_ring);
                } else if (res == -EOPNOTSUPP && !waiting) {
                    // A file without RWF_NOWAIT support (a TUN on an old kernel): from now on only the
                    // waiting read, one at a time.
                    src.nowait = false;
                } else if (res > 0 || (res != -EAGAIN && res != -EINTR && res != -ECANCELED)) {
                    _counters.drop(drop_reason::rx_error);
                }
                release_read_buffer(from);
                break;
            }
            case op::udp_recv: {
                auto& rs = w.recv_slots[slot];
                rs.armed = false;
                auto& src = source_of(w, kind, slot);
                const read_buffer from = take_read_buffer(w.udp_ring.get(), flags, rs.buffer);
                on_read_done(src, waiting, res >= 0);
                if (res >= 0 && from.data != nullptr) {
                    on_udp_receive(w, s, rs, from, static_cast<uint32_t>(res));
                } else if (res == -ENOBUFS && w.udp_ring) {
                    on_no_buffer(w, src, *w.udp_ring);
                } else if (res >= 0 || (res != -EAGAIN && res != -EINTR && res != -ECANCELED)) {
                    _counters.drop(drop_reason::rx_error);
                }
                release_read_buffer(from);
                break;
            }
            case op::tx:
                on_tx_done(w, slot, res);
                break;
            }
        }
        io_uring_cq_advance(&w.ring, n);
        flush_device_rx(w, s);
        flush_udp_rx(w, s);
        arm_reads(w);
        if (w.pending_submit) {
            w.submit();
            w.pending_submit = false;
        }
        if (w.ctx.posted) {
            const uint64_t one = 1;
            [[maybe_unused]] const ssize_t written = ::write(_shared.wake_fd, &one, sizeof(one));
        }
        if (n > 0) {
            last_work = w.ctx.now;
            continue;
        }
        if (s.busy_poll) {
            continue;
        }
        if (w.ctx.now - last_work <= s.spin_budget) {
            // Spinning, but politely: a worker of another node, the application or the
            // kernel's softirq work on this CPU may be what we are waiting for, and the
            // scheduler would otherwise let it wait until our spin ends.
            sched_yield();
        } else {
            // Nothing to do for a while: sleep in the kernel until a completion (or 50 ms, to
            // notice shutdown), offline for RCU so the control thread never waits for us.
            rcu_thread_offline();
            __kernel_timespec timeout{0, 50'000'000};
            io_uring_cqe* cqe = nullptr;
            io_uring_wait_cqe_timeout(&w.ring, &cqe, &timeout);
            rcu_thread_online();
        }
    }
}

}  // namespace meshfwd::dataplane
