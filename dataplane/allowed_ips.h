// WireGuard cryptokey routing: an immutable longest-prefix-match table from IPv4 and IPv6
// prefixes to a uint32_t value (a peer slot). Outbound, the destination address picks the peer;
// inbound, the decrypted packet's source address must map back to the peer it came from.
//
// Threads: build() runs on the control thread (it allocates). The result is published inside an
// RCU snapshot and then only read: every const method may run on any number of workers at once,
// without locks, allocation or exceptions.
//
// Structure (one trie per family, families never mix: ::ffff:a.b.c.d is an IPv6 address like any
// other): a direct-indexed root over the first 8 or 16 address bits, then Poptrie-style nodes of
// 64 slots (6 address bits each) kept compact with two bitmaps and popcount, with leaf pushing
// (every slot holds its best match) and path compression (a node may start deeper than its
// parent's slot, guarded by a key check). See allowed_ips.cc for the layout and why.
#pragma once

#include "lib/ip_address.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace meshfwd::dataplane {

namespace allowed_ips_detail {
// The IPv6 trie's key: the address as one 128-bit integer, so one shift extracts any 6 bits.
__extension__ typedef unsigned __int128 uint128;

// 64 slots, one per value of the 6 address bits [depth, depth + 6). The children of one node are
// contiguous in trie::nodes and its leaf values in trie::leaves, so each is found by popcount.
template <typename Key>
struct node {
    uint64_t children;     // bit s: slot s leads to a child node
    uint64_t runs;         // bit s: slot s is a leaf whose value starts a new run of values
    Key key;               // the first `depth` bits of every address below this node, rest zero
    uint32_t first_child;  // index in nodes of the child of the lowest child slot
    uint32_t first_leaf;   // index in leaves of this node's first run
    uint32_t fallback;     // the value for addresses that fail the key check
    uint8_t depth;         // first address bit this node consumes (>= root_bits)
};

template <typename Key>
struct trie {
    static constexpr uint32_t node_flag = 0x80000000u;
    // 2^root_bits entries: node_flag | node index, or an index into leaves.
    std::vector<uint32_t> root;
    std::vector<node<Key>> nodes;
    std::vector<uint32_t> leaves;
    unsigned root_bits = 1;
};
} // namespace allowed_ips_detail

class allowed_ips {
public:
    static constexpr uint32_t no_match = UINT32_MAX;

    struct entry {
        ip_prefix prefix;
        uint32_t value;
    };

    // Host bits are cleared (10.1.2.3/8 is 10.0.0.0/8). When the same prefix appears more than
    // once, the entry that comes LATER in `entries` wins. A value equal to no_match is stored but
    // reads as "no match". Control thread only (allocates).
    static allowed_ips build(std::span<const entry> entries);

    // The empty table: every lookup gives no_match.
    allowed_ips();

    // Address in network byte order: 4 bytes for lookup_v4, 16 for lookup_v6.
    [[nodiscard]] uint32_t lookup_v4(const uint8_t* address4) const noexcept;
    [[nodiscard]] uint32_t lookup_v6(const uint8_t* address16) const noexcept;
    [[nodiscard]] uint32_t lookup(const ip_address& address) const noexcept;

    // For an IP packet (first nibble 4 with at least 20 bytes, or 6 with at least 40): the value
    // for its destination / source address. no_match for anything else. Reads only within
    // ip_packet.
    [[nodiscard]] uint32_t lookup_destination(std::span<const uint8_t> ip_packet) const noexcept;
    [[nodiscard]] uint32_t lookup_source(std::span<const uint8_t> ip_packet) const noexcept;

    // Distinct prefixes (after masking) in both families.
    [[nodiscard]] std::size_t size() const noexcept { return _size; }
    // Heap and object bytes held by the table.
    [[nodiscard]] std::size_t memory_bytes() const noexcept;

private:
    allowed_ips_detail::trie<uint32_t> _v4;
    allowed_ips_detail::trie<allowed_ips_detail::uint128> _v6;
    std::size_t _size = 0;
    bool _popcnt = false;  // the CPU has a popcount instruction (see allowed_ips.cc)
};

} // namespace meshfwd::dataplane
