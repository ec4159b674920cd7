// Test support: a real meshcoord process on 127.0.0.1 (port 0, learnt from --ready-file; the
// binary is the build's, or $MESHCOORD_BIN when set: bench/coord_load compares builds) with an
// SQLite or PostgreSQL store, and a small synchronous HTTP/WebSocket client that signs requests as
// a node would. The process is stopped (SIGTERM, then SIGKILL) and its directory removed when the
// object goes away. Test thread only.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coord/store.h"
#include "crypto/secret.h"
#include "lib/result.h"

namespace meshfwd::test {

struct http_reply {
    unsigned status = 0;
    std::string body;
};

class meshcoord_process {
public:
    // db: "" for SQLite in the temporary directory, else a PostgreSQL URL.
    static result<std::unique_ptr<meshcoord_process>> start(const std::string& db = "",
                                                           const std::vector<std::string>& extra_args = {});
    ~meshcoord_process();

    uint16_t port() const { return _port; }
    uint16_t stun_port() const { return _stun_port; }
    const std::string& token() const { return _token; }
    const std::string& dir() const { return _dir; }
    const coord::node_key& server_key() const { return _server_key; }
    pid_t pid() const { return _pid; }
    void kill_hard(); // SIGKILL, as a crash

    http_reply request(const std::string& method, const std::string& target, const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {}) const;
    http_reply admin(const std::string& method, const std::string& target, const std::string& body = "") const;

private:
    std::string _dir;
    pid_t _pid = -1;
    uint16_t _port = 0;
    uint16_t _stun_port = 0;
    std::string _token;
    coord::node_key _server_key{};
};

// A node's identity and its signed requests.
class test_node {
public:
    test_node();
    std::string public_key_base64() const;
    const coord::node_key& key() const { return _public; }
    // The three signature headers for one request to `server`.
    std::map<std::string, std::string> sign(const meshcoord_process& server, const std::string& method,
                                            const std::string& target, const std::string& body);
    http_reply send(const meshcoord_process& server, const std::string& method, const std::string& target,
                    const std::string& body = "");
    uint64_t last_counter() const { return _counter; }

private:
    crypto::secret32 _secret;
    coord::node_key _public{};
    uint64_t _counter = 0;
    std::optional<crypto::secret32> _request_key;
    coord::node_key _request_key_server{};
};

// A WebSocket subscription to a network's events as `node`, or as the admin when node is null.
class event_stream {
public:
    static result<std::unique_ptr<event_stream>> open(const meshcoord_process& server, const std::string& network,
                                                      test_node* node, int64_t since_version);
    ~event_stream();
    // The next text message within timeout_ms, or an error (timeout, closed).
    result<std::string> next(int timeout_ms);

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

} // namespace meshfwd::test
