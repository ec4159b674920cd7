// The node's handshakes: initiations (with retransmission and give-up), responses, cookie
// replies under load, new sessions and their confirmation, packets staged meanwhile. Control thread.
#include "control/node_state.h"

#include "crypto/messages.h"
#include "lib/log.h"

#include <spdlog/spdlog.h>
#include <sodium.h>


namespace meshfwd::control {

namespace {
// Wall-clock time of the latest handshake, seconds and nanoseconds, as `wg show` reports it.
void note_handshake_time(peer_state& ps) {
    const auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::system_clock::now().time_since_epoch()).count();
    ps.latest_handshake_unix = since_epoch / 1'000'000'000;
    ps.latest_handshake_unix_nsec = since_epoch % 1'000'000'000;
}
}  // namespace

void node::state::send_initiation(peer_state& ps, mono_time now, bool retry) {
    const dataplane::peer_endpoint* ep = ps.endpoint_owner.get();
    if (ep == nullptr) {
        return;  // nowhere to send; the peer must reach us first
    }
    if (!identity.has_identity()) {
        return;  // meshfwd-wg before `wg set private-key`: nothing to handshake with
    }
    if (!retry) {
        // The kernel sends at most one initiation per REKEY_TIMEOUT unless retransmitting.
        if (ps.handshaking || (ps.last_initiation != mono_time{} && now - ps.last_initiation < spec::rekey_timeout)) {
            return;
        }
        ps.attempts = 0;
    } else {
        ++ps.attempts;  // the timers give up past max_handshake_retries
    }
    if (ps.pending_index) {
        sessions.erase(*ps.pending_index);
        pending.erase(*ps.pending_index);
        ps.pending_index.reset();
    }
    auto index = sessions.insert(nullptr);
    if (!index) {
        reject("index_table_full");
        return;
    }
    crypto::message_initiation msg;
    if (const auto r = ps.hs->create_initiation(msg, *index); r != crypto::handshake_reason::ok) {
        sessions.erase(*index);
        reject(crypto::to_string(r));
        return;
    }
    ps.cookie->add_macs(msg, now);
    send_raw(crypto::as_bytes(msg), ep->address, 0, dataplane::socket_role::listen, ep->local);
    ps.pending_index = *index;
    pending[*index] = &ps;
    ps.handshaking = true;
    ps.last_initiation = now;
    // REKEY_TIMEOUT plus up to a third of a second of jitter, as the kernel does.
    ps.retransmit_at = now + spec::rekey_timeout + std::chrono::milliseconds(randombytes_uniform(334));
    ++hs_counters.initiations_sent;
    spdlog::debug("peer {}: handshake initiation sent to {}{}", crypto::key_to_base64(ps.cfg.public_key),
                  ep->address.to_endpoint().to_string(), retry ? " (retry)" : "");
}

void node::state::give_up_handshake(peer_state& ps) {
    spdlog::info("peer {}: no handshake after {} initiations; dropping {} staged packet(s)",
                 crypto::key_to_base64(ps.cfg.public_key), ps.attempts + 1, ps.staged.size());
    control_counters.drop(dataplane::drop_reason::handshake_gave_up, ps.staged.size());
    ps.staged.clear();
    ps.hs->clear();  // its ephemeral key is of no more use: a late response finds no pending index
    ps.handshaking = false;
    ps.attempts = 0;
    if (ps.pending_index) {
        sessions.erase(*ps.pending_index);
        pending.erase(*ps.pending_index);
        ps.pending_index.reset();
    }
}

// A session became usable for sending: flush what waited for it, or confirm it with a keepalive.
// Lanes belong to a session: the peer's are forgotten here and used again only once it announces
// them in this session (we ask, and announce ours), so a peer that came back as a plain WireGuard
// with the same key is not sent mesh traffic on ports it no longer has.
void node::state::session_ready(peer_state& ps, mono_time now) {
    forget_lanes(ps);
    bool sent_any = false;
    while (!ps.staged.empty()) {
        sent_any = send_transport(ps, ps.staged.front(), now) || sent_any;
        ps.staged.pop_front();
    }
    send_lanes(ps, now, true);
    if (!sent_any && ps.current && ps.current->keypair.is_initiator) {
        send_transport(ps, {}, now);  // key confirmation for the responder
    }
}

void node::state::handle_handshake(const dataplane::mailbox_message& m, mono_time now) {
    const std::span<const uint8_t> bytes(m.payload, m.length);
    const endpoint source_ep = m.source.to_endpoint();
    const auto source = crypto::cookie_source::from(source_ep.address().bytes(), source_ep.port());
    const uint32_t type = crypto::load_le32(m.payload);
    if (!identity.has_identity()) {
        reject("no_private_key");
        return;
    }

    if (type == spec::message_cookie_reply_type) {
        crypto::message_cookie_reply reply;
        if (crypto::parse_cookie_reply(bytes, reply) != crypto::message_reason::ok) {
            reject("bad_cookie_reply");
            return;
        }
        auto it = pending.find(reply.receiver_index.get());
        if (it == pending.end()) {
            reject("cookie_reply_unknown_index");
            return;
        }
        const auto r = it->second->cookie->consume_cookie_reply(reply, now);
        if (r == crypto::cookie_reason::ok) {
            ++hs_counters.cookie_replies_received;
        } else {
            reject(crypto::to_string(r));
        }
        return;
    }

    // Under load, only sources that prove their address with a cookie (mac2) get work done,
    // and each source address is rate limited.
    if (now < under_load_until) {
        const auto r = cookies->check_macs(bytes, source, now);
        if (r == crypto::cookie_reason::no_cookie) {
            crypto::message_cookie_reply reply;
            const uint32_t sender = crypto::load_le32(m.payload + 4);
            if (cookies->create_cookie_reply(reply, bytes, sender, source, now)) {
                send_raw(crypto::as_bytes(reply), m.source, m.worker, m.role, m.local);
                ++hs_counters.cookie_replies_sent;
            }
            return;
        }
        if (r != crypto::cookie_reason::ok) {
            reject(crypto::to_string(r));
            return;
        }
        if (!limiter.allow(source_ep.address(), now)) {
            control_counters.drop(dataplane::drop_reason::rate_limited);
            return;
        }
    }

    if (type == spec::message_initiation_type) {
        crypto::message_initiation msg;
        if (crypto::parse_initiation(bytes, msg) != crypto::message_reason::ok) {
            reject("bad_initiation");
            return;
        }
        ++hs_counters.initiations_received;
        const auto result = crypto::consume_initiation(
            identity, msg,
            [this](const crypto::public_key& key) -> crypto::handshake* {
                auto it = peers.find(key);
                return it == peers.end() ? nullptr : it->second->hs.get();
            },
            now);
        if (result.reason != crypto::handshake_reason::ok) {
            reject(crypto::to_string(result.reason));
            static log_rate_limiter limit(5);
            if (limit.allow()) {
                spdlog::debug("handshake initiation from {} refused: {}", source_ep.to_string(),
                              crypto::describe(result.reason));
            }
            return;
        }
        auto it = peers.find(result.peer->peer().remote_static);
        if (it == peers.end()) {
            return;
        }
        peer_state& ps = *it->second;
        auto index = sessions.insert(nullptr);
        if (!index) {
            reject("index_table_full");
            ps.hs->clear();
            return;
        }
        crypto::message_response response;
        if (const auto r = ps.hs->create_response(response, *index); r != crypto::handshake_reason::ok) {
            sessions.erase(*index);
            reject(crypto::to_string(r));
            return;
        }
        ps.cookie->add_macs(response, now);
        auto s = std::make_unique<session>();
        s->peer = ps.rt.get();
        if (!ps.hs->begin_session(s->keypair, now)) {
            sessions.erase(*index);
            reject("begin_session");
            return;
        }
        // Endpoint first: the response goes where the initiation came from.
        if (!ps.endpoint_owner || !(ps.endpoint_owner->address == m.source) || !(ps.endpoint_owner->local == m.local)) {
            set_endpoint(ps, m.source, m.local);
        }
        // Responder: the new keypair waits in "next" until the initiator uses it. It must be in
        // the index table before the response leaves: the initiator sends data at once.
        s->awaiting_confirmation.store(true, std::memory_order_relaxed);
        retire(ps.previous);
        retire(ps.next);
        ps.next = std::move(s);
        sessions.assign(*index, ps.next.get());
        send_raw(crypto::as_bytes(response), m.source, m.worker, m.role, m.local);
        ++hs_counters.responses_sent;
        spdlog::debug("peer {}: handshake response sent to {}", crypto::key_to_base64(ps.cfg.public_key),
                      source_ep.to_string());
        return;
    }

    if (type == spec::message_response_type) {
        crypto::message_response msg;
        if (crypto::parse_response(bytes, msg) != crypto::message_reason::ok) {
            reject("bad_response");
            return;
        }
        auto it = pending.find(msg.receiver_index.get());
        if (it == pending.end()) {
            reject("wrong_index");
            return;
        }
        peer_state& ps = *it->second;
        if (const auto r = ps.hs->consume_response(msg); r != crypto::handshake_reason::ok) {
            reject(crypto::to_string(r));
            return;
        }
        ++hs_counters.responses_received;
        auto s = std::make_unique<session>();
        s->peer = ps.rt.get();
        if (!ps.hs->begin_session(s->keypair, now)) {
            reject("begin_session");
            return;
        }
        const uint32_t index = *ps.pending_index;
        pending.erase(index);
        ps.pending_index.reset();
        ps.handshaking = false;
        ps.attempts = 0;
        if (!ps.endpoint_owner || !ps.endpoint_owner->matches(m.source)) {
            set_endpoint(ps, m.source, m.local);
        } else if (!(ps.endpoint_owner->local == m.local)) {
            handle_endpoint_changed(ps, m.source, m.local);  // same peer address, our other address
        }
        // Initiator: the new keypair is current at once (kernel begin_session).
        if (ps.next) {
            retire(ps.previous);
            ps.previous = std::move(ps.next);
            retire(ps.current);
        } else {
            retire(ps.previous);
            ps.previous = std::move(ps.current);
        }
        ps.current = std::move(s);
        sessions.assign(index, ps.current.get());
        ps.rt->current.store(ps.current.get(), std::memory_order_release);
        ps.rt->rekey_wanted.store(false, std::memory_order_relaxed);
        ++ps.handshakes;
        ++hs_counters.sessions_established;
        note_handshake_time(ps);
        spdlog::info("peer {}: session established (we initiated) with {}", crypto::key_to_base64(ps.cfg.public_key),
                     source_ep.to_string());
        session_ready(ps, now);
        return;
    }
}

void node::state::handle_confirmed(peer_state& ps, session* s, mono_time now) {
    if (ps.next.get() != s) {
        return;  // superseded meanwhile
    }
    s->awaiting_confirmation.store(false, std::memory_order_relaxed);
    retire(ps.previous);
    ps.previous = std::move(ps.current);
    ps.current = std::move(ps.next);
    ps.rt->current.store(ps.current.get(), std::memory_order_release);
    ps.rt->rekey_wanted.store(false, std::memory_order_relaxed);
    ++ps.handshakes;
    ++hs_counters.sessions_established;
    note_handshake_time(ps);
    spdlog::info("peer {}: session established (peer initiated)", crypto::key_to_base64(ps.cfg.public_key));
    session_ready(ps, now);
}

void node::state::handle_staged(peer_state& ps, std::span<const uint8_t> packet, mono_time now) {
    if (ps.current && !ps.current->keypair.expired(now)) {
        // A session appeared while the packet was on its way here.
        send_transport(ps, packet, now);
        return;
    }
    if (ps.staged.size() >= max_staged_packets) {
        ps.staged.pop_front();
        control_counters.drop(dataplane::drop_reason::no_session_queue_full);
    }
    ps.staged.emplace_back(packet.begin(), packet.end());
    if (!ps.handshaking) {
        send_initiation(ps, now, false);
    }
}

}  // namespace meshfwd::control
