// Prometheus text exposition (format 0.0.4) of meshfwd's counters, built from the same JSON
// documents that GET /v1/status and GET /v1/peers return (schema in control/api_server.h), so
// the two views can never disagree. Pure function of its inputs: any thread (the API server
// calls it on the control thread, right after the providers).
//
// Families, each with # HELP and # TYPE even when it has no samples:
//   meshfwd_build_info{version,crypto}                 gauge    always 1
//   meshfwd_{rx,tx}_{packets,bytes}_total{worker}      counter  per worker
//   meshfwd_drops_total{worker,reason}                 counter  per worker and drop reason
//   meshfwd_handshakes_total{kind}                     counter  initiations_sent, ...
//   meshfwd_handshake_rejections_total{reason}         counter
//   meshfwd_peer_{rx,tx}_bytes_total{public_key[,name]}  counter  per peer (name: peers[].name, when set)
//   meshfwd_peer_latest_handshake_timestamp_seconds{public_key[,name]}  gauge  unix time, 0 = never
//   meshfwd_peers                                      gauge
//   meshfwd_uptime_seconds                             gauge
// Malformed or missing parts of the input are skipped, never thrown on: the text is best effort.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace meshfwd::control {

// The content type to answer /metrics with.
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

// The whole exposition, one line per sample, '\n'-terminated.
[[nodiscard]] std::string prometheus_text(const nlohmann::json& status, const nlohmann::json& peers);

// A label value escaped per the text format: '\' -> "\\", '"' -> "\"", newline -> "\n".
[[nodiscard]] std::string prometheus_escape_label(std::string_view value);

} // namespace meshfwd::control
