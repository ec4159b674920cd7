// `meshctl ping`: WireGuard handshake + ICMP echo through the tunnel. Main thread only.
//
// This file is a client of crypto/ (noise.h, cookie.h, transport.h); it holds no protocol
// crypto of its own. It plays the initiator of one session and never rekeys: the run is
// bounded to stay inside REKEY_AFTER_TIME, so one keypair always suffices.
#include "tools/meshctl_ping.h"

#include "control/key_file.h"
#include "crypto/cookie.h"
#include "crypto/keypair.h"
#include "crypto/messages.h"
#include "crypto/noise.h"
#include "crypto/transport.h"
#include "crypto/x25519.h"
#include "lib/ip_address.h"
#include "lib/units.h"
#include "tools/meshctl_icmp.h"
#include "tools/meshctl_keys.h"
#include "tools/meshctl_udp.h"

#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace meshfwd::meshctl {
namespace {

using clock = crypto::mono_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr int exit_ok = 0;
constexpr int exit_no_reply = 1;
constexpr int exit_usage = 2;

// Largest UDP datagram; a peer never sends more than its MTU, but we must not truncate.
constexpr size_t max_datagram = 65536;
// The kernel's REKEY_TIMEOUT_JITTER_MAX_JIFFIES is HZ / 3: up to 333 ms added per retransmit.
constexpr milliseconds max_rekey_jitter{333};

struct ping_config {
    crypto::secret32 private_key;
    crypto::public_key peer_key{};
    std::optional<crypto::secret32> psk;
    ip_address source;
    ip_address target;
    endpoint peer;
    unsigned count = 0;
    nanoseconds interval{};
    nanoseconds timeout{};
    uint16_t listen_port = 0;
};

// Failures of everything outside the handshake and the echoes: usage and config errors.
result<ping_config> make_config(const ping_options& opts) {
    ping_config cfg;
    auto key = control::read_key_file(opts.private_key_file);
    if (!key) {
        return make_error("--private-key-file: " + key.error_message());
    }
    cfg.private_key = std::move(key.value());
    if (!opts.psk_file.empty()) {
        auto psk = control::read_key_file(opts.psk_file);
        if (!psk) {
            return make_error("--psk-file: " + psk.error_message());
        }
        cfg.psk = std::move(psk.value());
    }
    auto peer_key = crypto::key_from_base64(opts.peer_key);
    if (!peer_key) {
        return make_error("--peer-key '" + opts.peer_key + "' is not a WireGuard public key (44 characters of base64)");
    }
    cfg.peer_key = *peer_key;
    auto source = ip_address::parse(opts.address);
    if (!source) {
        return make_error("--address: " + source.error_message());
    }
    auto target = ip_address::parse(opts.target);
    if (!target) {
        return make_error("target: " + target.error_message());
    }
    if (source->family() != target->family()) {
        return make_error("--address " + opts.address + " and target " + opts.target +
                          " are not the same IP version");
    }
    cfg.source = *source;
    cfg.target = *target;
    auto peer = endpoint::parse(opts.endpoint);
    if (!peer) {
        return make_error("--endpoint: " + peer.error_message());
    }
    cfg.peer = *peer;
    auto interval = parse_duration(opts.interval);
    if (!interval || *interval < milliseconds(1)) {
        return make_error("--interval '" + opts.interval + "' is not a duration of at least 1ms (e.g. 1s, 200ms)");
    }
    cfg.interval = *interval;
    auto timeout = parse_duration(opts.timeout);
    if (!timeout || *timeout < milliseconds(1)) {
        return make_error("--timeout '" + opts.timeout + "' is not a duration of at least 1ms (e.g. 5s)");
    }
    cfg.timeout = *timeout;
    if (opts.count < 1 || opts.count > 65535) {
        return make_error("--count must be 1 to 65535");
    }
    cfg.count = opts.count;
    // One session, no rekey: the whole run must end before the initiator would rekey.
    if (cfg.timeout + cfg.interval * (cfg.count - 1) + cfg.timeout >= crypto::spec::rekey_after_time) {
        return make_error("2 x --timeout + (--count - 1) x --interval must stay under " +
                          format_duration(crypto::spec::rekey_after_time) +
                          " (meshctl ping uses one session and never rekeys)");
    }
    cfg.listen_port = opts.listen_port;
    return cfg;
}

double to_ms(nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

// Counters for everything we received and did not print as a reply.
struct rx_counters {
    uint64_t malformed = 0;    // not a WireGuard message of the expected shape
    uint64_t auth_failed = 0;  // mac1, handshake or AEAD did not authenticate
    uint64_t replayed = 0;
    uint64_t keepalives = 0;
    uint64_t ignored = 0;      // authentic but not for us (other type, other index, not our echo)
    uint64_t duplicates = 0;
};

class pinger {
public:
    pinger(const ping_config& cfg, udp_socket sock) noexcept
        : _cfg(cfg), _sock(std::move(sock)), _buf(max_datagram), _plain(max_datagram), _out(max_datagram) {}

    // Returns the process exit status.
    int run();

private:
    enum class hs_outcome { done, timed_out, failed };
    hs_outcome handshake(clock::time_point deadline);
    void send_initiation();
    void handle_handshake_datagram(std::span<const uint8_t> datagram);
    bool send_echo(uint16_t seq);
    void handle_transport(std::span<const uint8_t> datagram);
    void print_summary(clock::time_point started) const;
    std::string our_public_key() const { return crypto::key_to_base64(_identity.static_public); }

    const ping_config& _cfg;
    udp_socket _sock;
    std::vector<uint8_t> _buf;
    std::vector<uint8_t> _plain;
    std::vector<uint8_t> _out;

    crypto::static_identity _identity;
    crypto::peer_config _peer;
    std::optional<crypto::handshake> _hs;
    std::optional<crypto::cookie_maker> _cookies;
    std::optional<crypto::cookie_checker> _checker;
    crypto::keypair _kp;
    bool _have_session = false;
    bool _response_failed = false;
    bool _cookie_seen = false;
    bool _refused = false;

    uint16_t _icmp_id = static_cast<uint16_t>(::getpid());
    std::vector<std::optional<clock::time_point>> _sent_at;  // by seq (index 0 unused)
    std::vector<bool> _answered;
    unsigned _transmitted = 0;
    unsigned _received = 0;
    nanoseconds _rtt_min = nanoseconds::max();
    nanoseconds _rtt_max{0};
    nanoseconds _rtt_sum{0};
    rx_counters _rx;
};

void pinger::send_initiation() {
    crypto::message_initiation msg;
    // A fresh index per attempt, as the kernel does: a late response to an old attempt is
    // then recognisably stale.
    if (_hs->create_initiation(msg, randombytes_random()) != crypto::handshake_reason::ok) {
        return;
    }
    _cookies->add_macs(msg, clock::now());
    if (auto sent = _sock.send(crypto::as_bytes(msg)); !sent) {
        std::fprintf(stderr, "meshctl: %s\n", sent.error_message().c_str());
    }
}

void pinger::handle_handshake_datagram(std::span<const uint8_t> datagram) {
    const auto kind = crypto::classify_message(datagram);
    if (kind.reason != crypto::message_reason::ok) {
        ++_rx.malformed;
        return;
    }
    const auto now = clock::now();
    if (kind.kind == crypto::message_kind::response) {
        crypto::message_response msg;
        if (crypto::parse_response(datagram, msg) != crypto::message_reason::ok) {
            ++_rx.malformed;
            return;
        }
        if (msg.receiver_index.get() != _hs->local_index() ||
            _hs->initiator_state() != crypto::handshake::state::created_initiation) {
            ++_rx.ignored;  // a late answer to an earlier attempt
            return;
        }
        if (_checker->check_mac1(datagram) != crypto::cookie_reason::ok ||
            _hs->consume_response(msg) != crypto::handshake_reason::ok) {
            ++_rx.auth_failed;
            _response_failed = true;
            return;
        }
        _have_session = _hs->begin_session(_kp, now);
        return;
    }
    if (kind.kind == crypto::message_kind::cookie_reply) {
        crypto::message_cookie_reply reply;
        if (crypto::parse_cookie_reply(datagram, reply) != crypto::message_reason::ok) {
            ++_rx.malformed;
            return;
        }
        if (reply.receiver_index.get() != _hs->local_index() ||
            _cookies->consume_cookie_reply(reply, now) != crypto::cookie_reason::ok) {
            ++_rx.auth_failed;
            return;
        }
        if (!_cookie_seen) {
            std::fprintf(stderr, "meshctl: %s is under load and sent a cookie; retrying with it\n",
                         _cfg.peer.to_string().c_str());
        }
        _cookie_seen = true;
        // The cookie makes our next initiation carry a valid mac2; send it now rather than
        // after a whole REKEY_TIMEOUT.
        send_initiation();
        return;
    }
    ++_rx.ignored;  // an initiation from the peer, or transport data before our session
}

pinger::hs_outcome pinger::handshake(clock::time_point deadline) {
    auto next_attempt = clock::now();
    while (!_have_session) {
        const auto now = clock::now();
        if (now >= deadline) {
            return _response_failed ? hs_outcome::failed : hs_outcome::timed_out;
        }
        if (now >= next_attempt) {
            send_initiation();
            next_attempt = now + crypto::spec::rekey_timeout +
                           milliseconds(randombytes_uniform(static_cast<uint32_t>(max_rekey_jitter.count()) + 1));
        }
        const auto wake = std::min(next_attempt, deadline);
        const auto got = _sock.recv(_buf, duration_cast<milliseconds>(wake - now) + milliseconds(1));
        if (got.status == udp_socket::recv_status::refused) {
            _refused = true;
        } else if (got.status == udp_socket::recv_status::ok) {
            handle_handshake_datagram(std::span<const uint8_t>(_buf.data(), got.len));
        }
    }
    return hs_outcome::done;
}

bool pinger::send_echo(uint16_t seq) {
    // ping(8)'s payload: bytes counting up, so a corrupted echo is visible in a capture.
    std::array<uint8_t, icmp::default_payload_len> payload{};
    for (size_t i = 0; i < payload.size(); ++i) {
        payload[i] = static_cast<uint8_t>(i + 8);
    }
    const size_t len = build_echo_request(_plain, _cfg.source, _cfg.target, _icmp_id, seq, payload);
    const auto now = clock::now();
    const auto sealed = crypto::encapsulate(_kp, std::span<const uint8_t>(_plain.data(), len), _out, now);
    if (sealed.reason != crypto::transport_reason::ok) {
        std::fprintf(stderr, "meshctl: cannot encrypt echo request: %s\n",
                     std::string(crypto::to_string(sealed.reason)).c_str());
        return false;
    }
    if (auto sent = _sock.send(std::span<const uint8_t>(_out.data(), sealed.size)); !sent) {
        std::fprintf(stderr, "meshctl: %s\n", sent.error_message().c_str());
    }
    _sent_at[seq] = now;
    ++_transmitted;
    return true;
}

void pinger::handle_transport(std::span<const uint8_t> datagram) {
    const auto now = clock::now();
    const auto kind = crypto::classify_message(datagram);
    if (kind.reason != crypto::message_reason::ok) {
        ++_rx.malformed;
        return;
    }
    if (kind.kind != crypto::message_kind::transport) {
        ++_rx.ignored;  // a handshake message: we keep our one session
        return;
    }
    const auto opened = crypto::decapsulate(_kp, datagram, _plain, now);
    switch (opened.reason) {
    case crypto::transport_reason::ok:
        break;
    case crypto::transport_reason::auth_failed:
        ++_rx.auth_failed;
        return;
    case crypto::transport_reason::replay_duplicate:
    case crypto::transport_reason::replay_too_old:
    case crypto::transport_reason::counter_limit:
        ++_rx.replayed;
        return;
    case crypto::transport_reason::wrong_index:
        ++_rx.ignored;
        return;
    default:
        ++_rx.malformed;
        return;
    }
    if (opened.size == 0) {
        ++_rx.keepalives;
        return;
    }
    const auto reply = parse_echo_reply(std::span<const uint8_t>(_plain.data(), opened.size));
    if (!reply || reply->from != _cfg.target || reply->to != _cfg.source || reply->id != _icmp_id ||
        reply->seq == 0 || reply->seq > _cfg.count || !_sent_at[reply->seq]) {
        ++_rx.ignored;
        return;
    }
    const nanoseconds rtt = now - *_sent_at[reply->seq];
    const bool dup = _answered[reply->seq];
    std::printf("%zu bytes from %s: icmp_seq=%u ttl=%u time=%.2f ms%s\n", reply->icmp_len,
                reply->from.to_string().c_str(), static_cast<unsigned>(reply->seq),
                static_cast<unsigned>(reply->ttl), to_ms(rtt), dup ? " (DUP!)" : "");
    std::fflush(stdout);
    if (dup) {
        ++_rx.duplicates;
        return;
    }
    _answered[reply->seq] = true;
    ++_received;
    _rtt_min = std::min(_rtt_min, rtt);
    _rtt_max = std::max(_rtt_max, rtt);
    _rtt_sum += rtt;
}

void pinger::print_summary(clock::time_point started) const {
    const unsigned loss = _transmitted == 0 ? 100 : (100 * (_transmitted - _received)) / _transmitted;
    std::printf("\n--- %s ping statistics ---\n", _cfg.target.to_string().c_str());
    std::printf("%u packets transmitted, %u received, %u%% packet loss, time %.0fms\n", _transmitted,
                _received, loss, to_ms(clock::now() - started));
    if (_received > 0) {
        std::printf("rtt min/avg/max = %.3f/%.3f/%.3f ms\n", to_ms(_rtt_min), to_ms(_rtt_sum / _received),
                    to_ms(_rtt_max));
    }
    if (_rx.auth_failed + _rx.replayed + _rx.malformed + _rx.duplicates > 0) {
        std::printf("skipped: %llu failed authentication, %llu replayed, %llu malformed, %llu duplicates\n",
                    static_cast<unsigned long long>(_rx.auth_failed),
                    static_cast<unsigned long long>(_rx.replayed),
                    static_cast<unsigned long long>(_rx.malformed),
                    static_cast<unsigned long long>(_rx.duplicates));
    }
    std::fflush(stdout);
}

int pinger::run() {
    if (!_identity.set_private_key(_cfg.private_key)) {
        std::fputs("meshctl: --private-key-file holds an all-zero key\n", stderr);
        return exit_usage;
    }
    if (!_peer.init(_identity, _cfg.peer_key, _cfg.psk ? &*_cfg.psk : nullptr)) {
        std::fputs("meshctl: --peer-key is a low-order point; no handshake with it can succeed\n", stderr);
        return exit_usage;
    }
    _hs.emplace(_identity, _peer);
    _cookies.emplace(_peer);
    _checker.emplace(_identity, clock::now());
    _sent_at.assign(_cfg.count + 1, std::nullopt);
    _answered.assign(_cfg.count + 1, false);

    const std::string target = _cfg.target.to_string();
    std::printf("PING %s from %s via %s: %zu data bytes\n", target.c_str(), _cfg.source.to_string().c_str(),
                _cfg.peer.to_string().c_str(), icmp::default_payload_len);
    std::fflush(stdout);

    const auto started = clock::now();
    const auto outcome = handshake(started + _cfg.timeout);
    if (outcome != hs_outcome::done) {
        const std::string within = format_duration(_cfg.timeout);
        if (outcome == hs_outcome::failed) {
            std::fprintf(stderr,
                         "meshctl: handshake with %s failed: its response did not authenticate (do both sides "
                         "use the same pre-shared key? see --psk-file)\n",
                         _cfg.peer.to_string().c_str());
        } else {
            std::fprintf(stderr,
                         "meshctl: no handshake response from %s within %s (is --peer-key the peer's public key, "
                         "and does the peer list our public key %s?)%s\n",
                         _cfg.peer.to_string().c_str(), within.c_str(), our_public_key().c_str(),
                         _refused ? "; the peer's host answered ICMP port unreachable: is WireGuard listening "
                                    "on that port?"
                                  : "");
        }
        return exit_no_reply;
    }
    std::printf("handshake with %s completed in %.2f ms\n", _cfg.peer.to_string().c_str(),
                to_ms(clock::now() - started));
    std::fflush(stdout);

    // Echo phase: one request per interval; after the last one, wait up to --timeout for the
    // outstanding replies. Every wait is bounded, so the whole loop is.
    const auto ping_started = clock::now();
    auto next_send = ping_started;
    std::optional<clock::time_point> last_deadline;
    for (;;) {
        auto now = clock::now();
        if (_transmitted < _cfg.count && now >= next_send) {
            if (!send_echo(static_cast<uint16_t>(_transmitted + 1))) {
                break;
            }
            next_send += _cfg.interval;
            if (_transmitted == _cfg.count) {
                last_deadline = now + _cfg.timeout;
            }
        }
        if (last_deadline && (_received == _transmitted || now >= *last_deadline)) {
            break;
        }
        const auto wake = last_deadline ? *last_deadline : next_send;
        now = clock::now();
        const auto wait = wake > now ? duration_cast<milliseconds>(wake - now) + milliseconds(1) : milliseconds(0);
        const auto got = _sock.recv(_buf, wait);
        if (got.status == udp_socket::recv_status::ok) {
            handle_transport(std::span<const uint8_t>(_buf.data(), got.len));
        }
    }
    print_summary(ping_started);
    return _received > 0 ? exit_ok : exit_no_reply;
}

} // namespace

void add_ping_options(CLI::App& cmd, ping_options& opts) {
    cmd.add_option("--private-key-file", opts.private_key_file,
                   "Our private key, base64 as `wg genkey` writes it (mode 600: refused if group/others can read it)")
        ->required();
    cmd.add_option("--address", opts.address, "Our source address inside the tunnel (in the peer's allowed-ips)")
        ->required();
    cmd.add_option("--peer-key", opts.peer_key, "The peer's public key (base64)")->required();
    cmd.add_option("--endpoint", opts.endpoint, "The peer's UDP endpoint, IP:PORT or [IPv6]:PORT")->required();
    cmd.add_option("--count,-c", opts.count, "Echo requests to send (1-65535)")->capture_default_str();
    cmd.add_option("--interval,-i", opts.interval, "Time between echo requests (e.g. 1s, 200ms)")
        ->capture_default_str();
    cmd.add_option("--timeout,-W", opts.timeout,
                   "Longest wait for the handshake, and for the replies after the last request")
        ->capture_default_str();
    cmd.add_option("--psk-file", opts.psk_file, "Pre-shared key, base64 as `wg genpsk` writes it (mode 600)");
    cmd.add_option("--listen-port", opts.listen_port, "Our UDP port (default: any free port)");
    cmd.add_option("target", opts.target, "Address to ping inside the tunnel (IPv4 or IPv6)")->required();
    cmd.footer("Exit codes: 0 at least one reply; 1 no reply (or no handshake); 2 usage or configuration error.");
}

int run_ping(const ping_options& opts) {
    auto cfg = make_config(opts);
    if (!cfg) {
        std::fprintf(stderr, "meshctl ping: %s\n", cfg.error_message().c_str());
        return exit_usage;
    }
    auto sock = udp_socket::open(cfg->peer, cfg->listen_port);
    if (!sock) {
        std::fprintf(stderr, "meshctl ping: %s\n", sock.error_message().c_str());
        return exit_usage;
    }
    pinger p(*cfg, std::move(sock.value()));
    return p.run();
}

} // namespace meshfwd::meshctl
