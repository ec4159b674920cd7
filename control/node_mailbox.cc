// The node's side of the workers' mailboxes: roaming, mesh frames, and the drain that dispatches
// every message (handshakes, staged packets, confirmations). Control thread.
#include "control/node_state.h"

#include "dataplane/pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace meshfwd::control {

void node::state::handle_endpoint_changed(peer_state& ps, const dataplane::socket_address& source,
                                          const dataplane::local_address& local) {
    if (ps.endpoint_owner && ps.endpoint_owner->matches(source)) {
        if (!(ps.endpoint_owner->local == local)) {
            // The same peer address reached another of our addresses: answer from that one.
            spdlog::info("peer {}: local address {} -> {}", crypto::key_to_base64(ps.cfg.public_key),
                         ps.endpoint_owner->local.empty() ? std::string("(route's)") : ps.endpoint_owner->local.to_string(),
                         local.empty() ? std::string("(route's)") : local.to_string());
            auto ep = std::make_unique<dataplane::peer_endpoint>(*ps.endpoint_owner);
            ep->local = local;
            publish_endpoint(ps, std::move(ep));
        }
        return;
    }
    spdlog::info("peer {}: endpoint {} -> {}{}", crypto::key_to_base64(ps.cfg.public_key),
                 ps.endpoint_owner ? ps.endpoint_owner->address.to_endpoint().to_string() : std::string("(none)"),
                 source.to_endpoint().to_string(), local.empty() ? std::string() : " (to our " + local.to_string() + ")");
    // A meshfwd peer that moved to a new address without port translation keeps its ports: its
    // packets come from one of its lanes (or its main port), so keep both and only move the host.
    const dataplane::peer_endpoint* old = ps.endpoint_owner.get();
    // A meshfwd peer sending from another port of the same host: those are its lanes, and its
    // announcement did not reach us (lost, or it raced the session). Ask for it, at most once a second.
    if (ps.cfg.meshfwd && old != nullptr && old->lane_count == 0 && old->address.same_host(source)) {
        const mono_time now = mono_clock::now();
        if (now - ps.lanes_asked >= 1s) {
            ps.lanes_asked = now;
            send_lanes(ps, now, true);
        }
    }
    if (old != nullptr && old->lane_count > 0) {
        dataplane::peer_endpoint probe = *old;
        probe.address = source;
        probe.address.set_port(old->address.port());
        probe.local = local;
        if (probe.matches(source)) {
            auto ep = std::make_unique<dataplane::peer_endpoint>(probe);
            publish_endpoint(ps, std::move(ep));
            return;
        }
    }
    set_endpoint(ps, source, local);
}

void node::state::forget_local_source(const dataplane::local_address& gone) {
    unsigned changed = 0;
    for (auto& [key, ps] : peers) {
        if (!ps->endpoint_owner || !(ps->endpoint_owner->local == gone)) {
            continue;
        }
        auto ep = std::make_unique<dataplane::peer_endpoint>(*ps->endpoint_owner);
        ep->local = {};
        publish_endpoint(*ps, std::move(ep));
        ++changed;
    }
    if (changed > 0) {
        spdlog::info("local address {} is gone: {} peer(s) now sent to from the route's source", gone.to_string(),
                     changed);
    }
}

void node::state::handle_mesh_frame(peer_state& ps, std::span<const uint8_t> frame, mono_time now) {
    if (frame.size() >= 4 && frame[0] == dataplane::mesh_frame_lanes && frame[1] == 1) {
        const std::size_t count = std::min<std::size_t>(frame[2], dataplane::max_lanes);
        if (frame.size() < 4 + 2 * count || !ps.endpoint_owner) {
            reject("bad_lanes_frame");
            return;
        }
        auto ep = std::make_unique<dataplane::peer_endpoint>(*ps.endpoint_owner);
        ep->lane_count = 0;
        for (std::size_t i = 0; i < count; ++i) {
            const uint16_t port = static_cast<uint16_t>((frame[4 + 2 * i] << 8) | frame[5 + 2 * i]);
            if (port != 0) {
                ep->lanes[ep->lane_count++] = port;
            }
        }
        ps.lanes.assign(ep->lanes.begin(), ep->lanes.begin() + ep->lane_count);
        publish_endpoint(ps, std::move(ep));
        spdlog::debug("peer {}: {} lane(s) announced", crypto::key_to_base64(ps.cfg.public_key), ps.lanes.size());
        if ((frame[3] & dataplane::lanes_flag_request) != 0) {
            send_lanes(ps, now);
        }
        return;
    }
    reject("unknown_mesh_frame");
}

void node::state::handle(dataplane::mailbox_message& m) {
    const mono_time now = mono_clock::now();
    if (m.kind == dataplane::mailbox_kind::handshake) {
        handle_handshake(m, now);
        return;
    }
    if (m.kind == dataplane::mailbox_kind::source_gone) {
        forget_local_source(m.local);
        return;
    }
    peer_state* ps = find(m.peer);
    if (ps == nullptr) {
        // Removed meanwhile: a packet or frame for it is lost (a notice is not).
        if (m.kind == dataplane::mailbox_kind::staged_packet || m.kind == dataplane::mailbox_kind::mesh_frame) {
            control_counters.drop(dataplane::drop_reason::peer_removed);
        }
        return;
    }
    switch (m.kind) {
    case dataplane::mailbox_kind::staged_packet: handle_staged(*ps, {m.payload, m.length}, now); break;
    case dataplane::mailbox_kind::endpoint_changed: handle_endpoint_changed(*ps, m.source, m.local); break;
    case dataplane::mailbox_kind::session_confirmed: handle_confirmed(*ps, m.sess, now); break;
    case dataplane::mailbox_kind::mesh_frame: handle_mesh_frame(*ps, {m.payload, m.length}, now); break;
    case dataplane::mailbox_kind::handshake:
    case dataplane::mailbox_kind::source_gone: break;
    }
}

void node::state::drain_mailboxes() {
    unsigned handshakes = 0;
    for (auto& w : workers) {
        auto& box = w->box();
        // Bounded per call so one flooding worker cannot starve timers and the API.
        for (unsigned i = 0; i < dataplane::mailbox::capacity; ++i) {
            dataplane::mailbox_message* m = box.receive();
            if (m == nullptr) {
                break;
            }
            if (m->kind == dataplane::mailbox_kind::handshake) {
                ++handshakes;
                if (handshakes >= under_load_threshold) {
                    under_load_until = mono_clock::now() + under_load_hold;
                }
            }
            handle(*m);
            box.release(m);
        }
    }
}

}  // namespace meshfwd::control
