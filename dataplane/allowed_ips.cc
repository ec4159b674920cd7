// Allowed-IPs longest-prefix match (see allowed_ips.h). build(): control thread. Lookups: any
// thread, read-only.
//
// Layout, per family, with the address as an unsigned integer Key (uint32_t for IPv4, 128 bits
// for IPv6) so that bit 0 is the first (most significant) address bit:
//   root[address >> (bits - root_bits)]   node_flag | node index, or an index into leaves
//   node: 64 slots for address bits [depth, depth + 6); `children` marks slots that lead to a
//         child node (found at nodes[first_child + rank]), the other slots are leaves whose values
//         are run-length coded: `runs` marks the slots that start a new value, the run's value is
//         leaves[first_leaf + rank] (rank = popcount of the bits up to the slot, minus one).
// This is Poptrie (Asai & Ohara, SIGCOMM 2015). Why not plain 256-way nodes: one IPv6 /128 per
// peer, random in its low bits (node ULAs are derived from keys), would cost a 1 KiB node per
// level per peer; here a node is 40-48 bytes plus its runs, and all nodes and leaves sit in two
// flat arrays.
//
// Leaf pushing: every leaf slot holds the longest match for its whole address range, so a lookup
// never backtracks. Path compression: a node's `depth` may be deeper than its parent slot ends;
// the bits in between are the same for every prefix below, so the node keeps them (`key`) and an
// address that differs there gets `fallback`, the parent slot's pushed value (no prefix ends in
// the skipped bits). The check compares all `depth` first bits, which is the same thing since the
// earlier ones already led here. A node starts where its prefixes first diverge, or one bit
// before its shortest prefix ends, whichever comes first; slots past the end of the address
// (depth + 6 > bits) read zero bits and are simply never reached.
#include "dataplane/allowed_ips.h"

#include <algorithm>
#include <array>
#include <bit>
#include <limits>
#include <stdexcept>

namespace meshfwd::dataplane {
namespace {

using allowed_ips_detail::node;
using allowed_ips_detail::trie;
using allowed_ips_detail::uint128;

template <typename Key>
constexpr unsigned key_bits = sizeof(Key) * 8;

constexpr unsigned stride = 6;

unsigned leading_zeros(uint32_t x) noexcept { return static_cast<unsigned>(std::countl_zero(x)); }
unsigned leading_zeros(uint128 x) noexcept {
    const auto hi = static_cast<uint64_t>(x >> 64);
    return hi != 0 ? static_cast<unsigned>(std::countl_zero(hi))
                   : 64 + static_cast<unsigned>(std::countl_zero(static_cast<uint64_t>(x)));
}

// The first `len` bits of key, the rest cleared (len 0..bits).
template <typename Key>
Key keep_bits(Key key, unsigned len) noexcept {
    if (len == 0) {
        return 0;
    }
    return key & static_cast<Key>(~Key{0} << (key_bits<Key> - len));
}

// The 6-bit slot of `key` at `depth` (bits past the end read as zero).
template <typename Key>
unsigned slot_of(Key key, unsigned depth) noexcept {
    return static_cast<unsigned>(static_cast<Key>(key << depth) >> (key_bits<Key> - stride));
}

uint32_t load_be32(const uint8_t* p) noexcept {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
uint64_t load_be64(const uint8_t* p) noexcept {
    return (uint64_t{load_be32(p)} << 32) | load_be32(p + 4);
}
uint128 load_be128(const uint8_t* p) noexcept {
    return (static_cast<uint128>(load_be64(p)) << 64) | load_be64(p + 8);
}

template <typename Key>
struct prefix {
    Key key;       // masked to len bits
    unsigned len;  // 0..bits
    uint32_t value;
};

template <typename Key>
class trie_builder {
public:
    explicit trie_builder(trie<Key>& t) : _t(t) {}

    // `prefixes`: masked, sorted by (key, len), no two equal.
    void build(std::span<prefix<Key>> prefixes) {
        constexpr unsigned bits = key_bits<Key>;
        // A small table gets a small root: 256 entries instead of 65536 (256 KiB per family).
        _t.root_bits = prefixes.empty() ? 1 : prefixes.size() < 256 ? 8 : 16;
        const unsigned rb = _t.root_bits;
        const std::size_t n_root = std::size_t{1} << rb;

        // Pushed value of each root slot from the prefixes of length <= root_bits, shortest
        // first so that longer ones overwrite.
        std::vector<uint32_t> pushed(n_root, allowed_ips::no_match);
        std::vector<prefix<Key>> shorts;
        for (const auto& p : prefixes) {
            if (p.len <= rb) {
                shorts.push_back(p);
            }
        }
        std::stable_sort(shorts.begin(), shorts.end(),
                         [](const prefix<Key>& a, const prefix<Key>& b) { return a.len < b.len; });
        for (const auto& p : shorts) {
            const auto first = static_cast<std::size_t>(p.key >> (bits - rb));
            const std::size_t count = std::size_t{1} << (rb - p.len);
            std::fill_n(pushed.begin() + static_cast<std::ptrdiff_t>(first), count, p.value);
        }

        // The longer prefixes, grouped by root slot (contiguous: the list is sorted by key).
        std::vector<prefix<Key>> longs;
        for (const auto& p : prefixes) {
            if (p.len > rb) {
                longs.push_back(p);
            }
        }
        _t.root.assign(n_root, 0);
        _t.leaves.clear();
        _t.nodes.clear();
        std::size_t next_long = 0;
        bool have_leaf = false;
        uint32_t last_leaf = 0;
        for (std::size_t s = 0; s < n_root; ++s) {
            std::size_t end = next_long;
            while (end < longs.size() && static_cast<std::size_t>(longs[end].key >> (bits - rb)) == s) {
                ++end;
            }
            if (end == next_long) {
                // Consecutive leaf slots with the same value share one leaves entry.
                if (!have_leaf || _t.leaves[last_leaf] != pushed[s]) {
                    last_leaf = push_leaf(pushed[s]);
                    have_leaf = true;
                }
                _t.root[s] = last_leaf;
                continue;
            }
            const auto index = static_cast<uint32_t>(_t.nodes.size());
            _t.nodes.emplace_back();
            check_index(_t.nodes.size());
            _t.root[s] = trie<Key>::node_flag | index;
            fill_node(index, std::span<prefix<Key>>(longs.data() + next_long, end - next_long), pushed[s]);
            next_long = end;
        }
        _t.nodes.shrink_to_fit();
        _t.leaves.shrink_to_fit();
    }

private:
    static void check_index(std::size_t count) {
        if (count >= trie<Key>::node_flag) {
            throw std::length_error("allowed_ips: too many trie nodes");
        }
    }

    uint32_t push_leaf(uint32_t value) {
        _t.leaves.push_back(value);
        check_index(_t.leaves.size());
        return static_cast<uint32_t>(_t.leaves.size() - 1);
    }

    // Fills nodes[index] for `range`: non-empty, every prefix longer than the region this node
    // hangs from and inside it; `inherited` is the best match from the prefixes above.
    void fill_node(uint32_t index, std::span<prefix<Key>> range, uint32_t inherited) {
        constexpr unsigned bits = key_bits<Key>;
        unsigned min_len = bits;
        for (const auto& p : range) {
            min_len = std::min(min_len, p.len);
        }
        // Sorted by key, so the common prefix of all is that of the first and the last.
        const unsigned common = std::min(bits, leading_zeros(static_cast<Key>(range.front().key ^ range.back().key)));
        const unsigned depth = std::min(common, min_len - 1);
        const unsigned end_bit = depth + stride;

        node<Key> n{};
        n.depth = static_cast<uint8_t>(depth);
        n.key = keep_bits(range.front().key, depth);
        n.fallback = inherited;

        // Prefixes ending in this node first (stable: the rest stay sorted), then the longer ones.
        const auto mid = std::stable_partition(range.begin(), range.end(),
                                               [&](const prefix<Key>& p) { return p.len <= end_bit; });
        std::array<uint32_t, 64> value;
        std::array<unsigned, 64> best_len;
        value.fill(inherited);
        best_len.fill(0);
        for (auto it = range.begin(); it != mid; ++it) {
            const unsigned first = slot_of(it->key, depth);
            const unsigned count = 1u << (end_bit - it->len);
            for (unsigned s = first; s < first + count; ++s) {
                if (it->len > best_len[s]) {
                    best_len[s] = it->len;
                    value[s] = it->value;
                }
            }
        }

        struct child {
            unsigned slot;
            std::size_t begin;
            std::size_t end;
        };
        std::vector<child> kids;
        const auto longs_begin = static_cast<std::size_t>(mid - range.begin());
        for (std::size_t i = longs_begin; i < range.size();) {
            const unsigned s = slot_of(range[i].key, depth);
            std::size_t j = i + 1;
            while (j < range.size() && slot_of(range[j].key, depth) == s) {
                ++j;
            }
            kids.push_back({s, i, j});
            n.children |= uint64_t{1} << s;
            i = j;
        }

        n.first_child = static_cast<uint32_t>(_t.nodes.size());
        _t.nodes.resize(_t.nodes.size() + kids.size());
        check_index(_t.nodes.size());
        n.first_leaf = static_cast<uint32_t>(_t.leaves.size());
        bool have_leaf = false;
        uint32_t last = 0;
        for (unsigned s = 0; s < 64; ++s) {
            if ((n.children >> s) & 1) {
                continue;
            }
            if (!have_leaf || value[s] != last) {
                n.runs |= uint64_t{1} << s;
                push_leaf(value[s]);
                last = value[s];
                have_leaf = true;
            }
        }
        _t.nodes[index] = n;

        for (std::size_t k = 0; k < kids.size(); ++k) {
            fill_node(n.first_child + static_cast<uint32_t>(k),
                      range.subspan(kids[k].begin, kids[k].end - kids[k].begin), value[kids[k].slot]);
        }
    }

    trie<Key>& _t;
};

template <typename Key>
[[gnu::always_inline]] inline uint32_t trie_find(const trie<Key>& t, Key address) noexcept {
    constexpr unsigned bits = key_bits<Key>;
    const uint32_t e = t.root[static_cast<std::size_t>(address >> (bits - t.root_bits))];
    if ((e & trie<Key>::node_flag) == 0) {
        return t.leaves[e];
    }
    const node<Key>* n = &t.nodes[e & ~trie<Key>::node_flag];
    for (;;) {
        // depth >= root_bits >= 1, so the shift is in range.
        if (static_cast<Key>((address ^ n->key) >> (bits - n->depth)) != 0) {
            return n->fallback;
        }
        const unsigned s = slot_of(address, n->depth);
        const uint64_t upto = (uint64_t{2} << s) - 1;  // slots 0..s (s == 63: all)
        if ((n->children >> s) & 1) {
            n = &t.nodes[n->first_child + static_cast<unsigned>(std::popcount(n->children & upto)) - 1];
        } else {
            return t.leaves[n->first_leaf + static_cast<unsigned>(std::popcount(n->runs & upto)) - 1];
        }
    }
}

// x86-64's baseline has no POPCNT instruction, and without it std::popcount is a libgcc call
// (two per level). Every x86-64 CPU since 2008 has it, so lookups go through a copy compiled
// for POPCNT when the CPU reports it (checked once per table, in build()).
#if defined(__x86_64__)
template <typename Key>
[[gnu::target("popcnt")]] uint32_t trie_find_popcnt(const trie<Key>& t, Key address) noexcept {
    return trie_find(t, address);
}
bool cpu_has_popcnt() noexcept {
    __builtin_cpu_init();
    return __builtin_cpu_supports("popcnt") != 0;
}
#else
template <typename Key>
uint32_t trie_find_popcnt(const trie<Key>& t, Key address) noexcept {
    return trie_find(t, address);
}
bool cpu_has_popcnt() noexcept { return true; }
#endif

template <typename Key>
uint32_t find(const trie<Key>& t, Key address, bool popcnt) noexcept {
    return popcnt ? trie_find_popcnt(t, address) : trie_find(t, address);
}

template <typename Key>
std::size_t trie_bytes(const trie<Key>& t) noexcept {
    return t.root.capacity() * sizeof(uint32_t) + t.nodes.capacity() * sizeof(node<Key>) +
           t.leaves.capacity() * sizeof(uint32_t);
}

// Sorts by (key, len) and keeps the last of equal prefixes in input order.
template <typename Key>
void sort_unique(std::vector<prefix<Key>>& v) {
    std::stable_sort(v.begin(), v.end(), [](const prefix<Key>& a, const prefix<Key>& b) {
        return a.key != b.key ? a.key < b.key : a.len < b.len;
    });
    std::size_t out = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const bool last_of_run = i + 1 == v.size() || v[i + 1].key != v[i].key || v[i + 1].len != v[i].len;
        if (last_of_run) {
            v[out++] = v[i];
        }
    }
    v.resize(out);
}

} // namespace

allowed_ips::allowed_ips() : _popcnt(cpu_has_popcnt()) {
    trie_builder<uint32_t>(_v4).build({});
    trie_builder<uint128>(_v6).build({});
}

allowed_ips allowed_ips::build(std::span<const entry> entries) {
    std::vector<prefix<uint32_t>> v4;
    std::vector<prefix<uint128>> v6;
    for (const auto& e : entries) {
        const ip_prefix p = e.prefix.masked();
        const auto bytes = p.address().bytes();
        if (p.address().is_v4()) {
            v4.push_back({load_be32(bytes.data()), p.length(), e.value});
        } else {
            v6.push_back({load_be128(bytes.data()), p.length(), e.value});
        }
    }
    sort_unique(v4);
    sort_unique(v6);
    allowed_ips table;
    table._size = v4.size() + v6.size();
    trie_builder<uint32_t>(table._v4).build(v4);
    trie_builder<uint128>(table._v6).build(v6);
    return table;
}

uint32_t allowed_ips::lookup_v4(const uint8_t* address4) const noexcept {
    return find(_v4, load_be32(address4), _popcnt);
}

uint32_t allowed_ips::lookup_v6(const uint8_t* address16) const noexcept {
    return find(_v6, load_be128(address16), _popcnt);
}

uint32_t allowed_ips::lookup(const ip_address& address) const noexcept {
    return address.is_v4() ? lookup_v4(address.bytes().data()) : lookup_v6(address.bytes().data());
}

namespace {
// Offsets of the source address in the IPv4 and IPv6 headers; the destination follows it.
constexpr std::size_t v4_header = 20, v4_source = 12;
constexpr std::size_t v6_header = 40, v6_source = 8;
} // namespace

uint32_t allowed_ips::lookup_destination(std::span<const uint8_t> ip_packet) const noexcept {
    if (ip_packet.empty()) {
        return no_match;
    }
    const unsigned version = ip_packet[0] >> 4;
    if (version == 4 && ip_packet.size() >= v4_header) {
        return lookup_v4(ip_packet.data() + v4_source + 4);
    }
    if (version == 6 && ip_packet.size() >= v6_header) {
        return lookup_v6(ip_packet.data() + v6_source + 16);
    }
    return no_match;
}

uint32_t allowed_ips::lookup_source(std::span<const uint8_t> ip_packet) const noexcept {
    if (ip_packet.empty()) {
        return no_match;
    }
    const unsigned version = ip_packet[0] >> 4;
    if (version == 4 && ip_packet.size() >= v4_header) {
        return lookup_v4(ip_packet.data() + v4_source);
    }
    if (version == 6 && ip_packet.size() >= v6_header) {
        return lookup_v6(ip_packet.data() + v6_source);
    }
    return no_match;
}

std::size_t allowed_ips::memory_bytes() const noexcept {
    return sizeof(*this) + trie_bytes(_v4) + trie_bytes(_v6);
}

} // namespace meshfwd::dataplane
