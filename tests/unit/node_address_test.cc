// Unit tests for coord/node_address: pinned vectors (computed once, and cross-checked with
// Python hashlib.blake2s(data, key=label), so
// any change to the derivation, which would move every node's address, fails here) and the
// properties: fd00::/8, a /48 stable per network id, the low 80 bits from the key only.
// Test thread only.
#include "coord/node_address.h"

#include <gtest/gtest.h>

namespace meshfwd::coord {
namespace {

node_key key_of(uint8_t fill) {
    node_key k{};
    k.fill(fill);
    return k;
}

TEST(node_address_test, pinned_vectors) {
    EXPECT_EQ(network_ula_prefix("home").to_string(), "fdf3:f51e:25a8::/48");
    EXPECT_EQ(network_ula_prefix("office-2").to_string(), "fd54:f20f:33a3::/48");
    EXPECT_EQ(node_ipv6("home", key_of(0x01)).to_string(), "fdf3:f51e:25a8:545d:3234:1f4b:6f9a:d8ae");
    EXPECT_EQ(node_ipv6("home", key_of(0xab)).to_string(), "fdf3:f51e:25a8:44b7:3ad0:d2c2:5796:71d");
}

TEST(node_address_test, prefix_is_ula_48_and_stable) {
    for (const char* id : {"a", "home", "office-2", "x-very-long-network-id-0123456789"}) {
        const ip_prefix p = network_ula_prefix(id);
        EXPECT_TRUE(p.address().is_v6());
        EXPECT_EQ(p.length(), 48);
        EXPECT_EQ(p.address().bytes()[0], 0xfd);
        EXPECT_EQ(p.masked(), p);
        EXPECT_EQ(network_ula_prefix(id), p);
    }
    EXPECT_NE(network_ula_prefix("home"), network_ula_prefix("home2"));
}

TEST(node_address_test, node_address_in_prefix_from_key) {
    const ip_address a = node_ipv6("home", key_of(1));
    EXPECT_TRUE(network_ula_prefix("home").contains(a));
    EXPECT_EQ(node_ipv6("home", key_of(1)), a);                          // stable
    EXPECT_NE(node_ipv6("home", key_of(2)), a);                          // differs per key
    EXPECT_EQ(node_ipv6_in(network_ula_prefix("home"), key_of(1)), a);   // same either way
    // The low 80 bits depend on the key only: the same key in another network keeps them.
    const ip_address b = node_ipv6("office-2", key_of(1));
    EXPECT_TRUE(std::equal(a.bytes().begin() + 6, a.bytes().end(), b.bytes().begin() + 6));
    EXPECT_FALSE(std::equal(a.bytes().begin(), a.bytes().begin() + 6, b.bytes().begin()));
}

} // namespace
} // namespace meshfwd::coord
