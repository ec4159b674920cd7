// Tests for lib/ip_address: addresses, prefixes, endpoints, sockaddr conversion.
#include "lib/ip_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

namespace meshfwd {
namespace {

ip_address addr(std::string_view text) {
    auto r = ip_address::parse(text);
    EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error_message());
    return r.ok() ? *r : ip_address();
}

std::string addr_err(std::string_view text) {
    auto r = ip_address::parse(text);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error_message();
}

ip_prefix prefix(std::string_view text) {
    auto r = ip_prefix::parse(text);
    EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error_message());
    return r.ok() ? *r : ip_prefix();
}

std::string prefix_err(std::string_view text) {
    auto r = ip_prefix::parse(text);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error_message();
}

std::string endpoint_err(std::string_view text) {
    auto r = endpoint::parse(text);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error_message();
}

TEST(ip_address, parse_v4) {
    const ip_address a = addr("192.0.2.1");
    EXPECT_TRUE(a.is_v4());
    EXPECT_FALSE(a.is_v6());
    ASSERT_EQ(a.bytes().size(), 4u);
    EXPECT_EQ(a.bytes()[0], 192);
    EXPECT_EQ(a.bytes()[3], 1);
    EXPECT_EQ(a.v4_host_order(), 0xc0000201u);
    EXPECT_EQ(a.to_string(), "192.0.2.1");
    EXPECT_EQ(a, ip_address::v4(0xc0000201u));
    EXPECT_EQ(addr("0.0.0.0"), ip_address());
    EXPECT_EQ(addr("255.255.255.255").to_string(), "255.255.255.255");
}

TEST(ip_address, parse_v6) {
    const ip_address a = addr("2001:db8::1");
    EXPECT_TRUE(a.is_v6());
    ASSERT_EQ(a.bytes().size(), 16u);
    EXPECT_EQ(a.bytes()[0], 0x20);
    EXPECT_EQ(a.bytes()[1], 0x01);
    EXPECT_EQ(a.bytes()[15], 1);
    EXPECT_EQ(a.to_string(), "2001:db8::1");
    EXPECT_EQ(addr("2001:0DB8:0000:0000:0000:0000:0000:0001"), a);
    EXPECT_EQ(addr("::").to_string(), "::");
    EXPECT_EQ(addr("fd00::").to_string(), "fd00::");
    const ip_address mapped = addr("::ffff:192.0.2.1");
    EXPECT_TRUE(mapped.is_v6());
    EXPECT_TRUE(mapped.is_v4_mapped());
    EXPECT_EQ(mapped.unmapped(), addr("192.0.2.1"));
    EXPECT_EQ(mapped.to_string(), "::ffff:192.0.2.1");
    EXPECT_FALSE(a.is_v4_mapped());
    EXPECT_EQ(a.unmapped(), a);
    EXPECT_EQ(a.v4_host_order(), 0u);
}

TEST(ip_address, parse_errors) {
    EXPECT_EQ(addr_err(""), "IP address is empty");
    EXPECT_EQ(addr_err("300.1.1.1"), "'300.1.1.1' is not a valid IPv4 address");
    EXPECT_EQ(addr_err("10.1"), "'10.1' is not a valid IPv4 address");
    EXPECT_EQ(addr_err("010.0.0.1"), "'010.0.0.1' is not a valid IPv4 address");
    EXPECT_EQ(addr_err("1.2.3.4."), "'1.2.3.4.' is not a valid IPv4 address");
    EXPECT_EQ(addr_err("0x0a.0.0.1"), "'0x0a.0.0.1' is not an IP address (host names are not resolved)");
    EXPECT_EQ(addr_err("example.com"), "'example.com' is not an IP address (host names are not resolved)");
    EXPECT_EQ(addr_err(" 1.2.3.4"), "' 1.2.3.4' is not an IP address (host names are not resolved)");
    EXPECT_EQ(addr_err("2001:db8::g"), "'2001:db8::g' is not a valid IPv6 address");
    EXPECT_EQ(addr_err("1:2:3:4:5:6:7:8:9"), "'1:2:3:4:5:6:7:8:9' is not a valid IPv6 address");
    EXPECT_EQ(addr_err("1::2::3"), "'1::2::3' is not a valid IPv6 address");
    EXPECT_EQ(addr_err("fe80::1%eth0"), "'fe80::1%eth0': IPv6 zone indexes (%...) are not supported");
    EXPECT_EQ(addr_err("[::1]"), "'[::1]': brackets belong only around the address in an endpoint");
    EXPECT_NE(addr_err(std::string(60, '1')).find("is too long for an IP address"), std::string::npos);
    // An embedded NUL must not let inet_pton stop early and accept the prefix.
    EXPECT_NE(addr_err(std::string_view("1.2.3.4\0x", 9)).find("is not an IP address"), std::string::npos);
    EXPECT_FALSE(ip_address::parse(std::string_view("::1\0", 4)).ok());
}

TEST(ip_address, from_bytes) {
    const uint8_t v4[4] = {10, 0, 0, 1};
    EXPECT_EQ(ip_address::from_bytes(v4), addr("10.0.0.1"));
    uint8_t v6[16] = {};
    v6[0] = 0xfd;
    v6[15] = 2;
    EXPECT_EQ(ip_address::from_bytes(v6), addr("fd00::2"));
    const uint8_t odd[5] = {1, 2, 3, 4, 5};
    EXPECT_EQ(ip_address::from_bytes(odd), ip_address());
    std::array<uint8_t, 16> arr{};
    arr[15] = 1;
    EXPECT_EQ(ip_address::v6(arr), addr("::1"));
}

TEST(ip_address, ordering_and_hash) {
    std::vector<ip_address> v = {addr("::1"), addr("10.0.0.2"), addr("9.255.255.255"), addr("10.0.0.1"), addr("::")};
    std::sort(v.begin(), v.end());
    std::vector<std::string> s;
    for (const auto& a : v) {
        s.push_back(a.to_string());
    }
    EXPECT_EQ(s, (std::vector<std::string>{"9.255.255.255", "10.0.0.1", "10.0.0.2", "::", "::1"}));
    // 0.0.0.0 and :: differ, as do 1.2.3.4 and ::102:304 (same leading bytes, other family).
    EXPECT_NE(addr("0.0.0.0"), addr("::"));
    std::unordered_set<ip_address> set = {addr("0.0.0.0"), addr("::"), addr("10.0.0.1"), addr("10.0.0.1")};
    EXPECT_EQ(set.size(), 3u);
    EXPECT_TRUE(set.contains(addr("::")));
    EXPECT_EQ(std::hash<ip_address>{}(addr("10.0.0.1")), std::hash<ip_address>{}(ip_address::v4(0x0a000001)));
}

TEST(ip_prefix, parse) {
    const ip_prefix p = prefix("10.100.0.1/16");
    EXPECT_EQ(p.address(), addr("10.100.0.1"));
    EXPECT_EQ(p.length(), 16);
    EXPECT_EQ(p.to_string(), "10.100.0.1/16");
    EXPECT_EQ(p.masked().to_string(), "10.100.0.0/16");
    EXPECT_EQ(prefix("0.0.0.0/0").length(), 0);
    EXPECT_EQ(prefix("::/0").to_string(), "::/0");
    EXPECT_EQ(prefix("2001:db8::1/128").length(), 128);
    EXPECT_EQ(prefix("2001:db8:ffff::1/35").masked().to_string(), "2001:db8:e000::/35");
    EXPECT_EQ(prefix("192.0.2.255/25").masked().to_string(), "192.0.2.128/25");
    EXPECT_EQ(prefix("192.0.2.255/32").masked(), prefix("192.0.2.255/32"));
    EXPECT_NE(prefix("10.0.0.0/8"), prefix("10.0.0.0/9"));
}

TEST(ip_prefix, parse_errors) {
    EXPECT_EQ(prefix_err("10.0.0.0/33"), "prefix length 33 is too long for IPv4");
    EXPECT_EQ(prefix_err("::/129"), "prefix length 129 is too long for IPv6");
    EXPECT_EQ(prefix_err("::/99999999999999999999"), "prefix length 99999999999999999999 is too long for IPv6");
    EXPECT_EQ(prefix_err("10.0.0.1"), "prefix '10.0.0.1' needs a length (e.g. 10.0.0.1/32)");
    EXPECT_EQ(prefix_err("10.0.0.1/"), "prefix '10.0.0.1/' has no length after '/'");
    EXPECT_EQ(prefix_err("10.0.0.1/x"), "prefix length 'x' is not a number");
    EXPECT_EQ(prefix_err("10.0.0.1/-1"), "prefix length '-1' is not a number");
    EXPECT_EQ(prefix_err("10.0.0.256/8"), "'10.0.0.256' is not a valid IPv4 address");
    EXPECT_EQ(prefix_err("10.0.0.1/8/8"), "prefix length '8/8' is not a number");
    auto bad = ip_prefix::make(addr("1.2.3.4"), 40);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error_message(), "prefix length 40 is too long for IPv4");
    auto good = ip_prefix::make(addr("1.2.3.4"), 24);
    ASSERT_TRUE(good.ok());
    EXPECT_EQ(*good, prefix("1.2.3.4/24"));
}

TEST(ip_prefix, contains) {
    const ip_prefix p = prefix("10.100.0.1/16");
    EXPECT_TRUE(p.contains(addr("10.100.0.1")));
    EXPECT_TRUE(p.contains(addr("10.100.255.255")));
    EXPECT_FALSE(p.contains(addr("10.101.0.0")));
    EXPECT_FALSE(p.contains(addr("::ffff:10.100.0.1"))); // other family
    EXPECT_TRUE(prefix("0.0.0.0/0").contains(addr("255.1.2.3")));
    EXPECT_FALSE(prefix("0.0.0.0/0").contains(addr("::")));
    EXPECT_TRUE(prefix("::/0").contains(addr("2001:db8::1")));
    EXPECT_TRUE(prefix("2001:db8::/32").contains(addr("2001:db8:ffff::1")));
    EXPECT_FALSE(prefix("2001:db8::/33").contains(addr("2001:db8:8000::1")));
    EXPECT_TRUE(prefix("192.0.2.7/32").contains(addr("192.0.2.7")));
    EXPECT_FALSE(prefix("192.0.2.7/32").contains(addr("192.0.2.6")));
}

// Differential check of contains() against a bit-by-bit reference over random prefixes.
TEST(ip_prefix, contains_matches_reference) {
    std::mt19937 rng(7);
    auto bit = [](std::span<const uint8_t> b, unsigned i) { return (b[i / 8] >> (7 - i % 8)) & 1; };
    for (int iter = 0; iter < 20000; ++iter) {
        const bool v6 = rng() & 1;
        std::array<uint8_t, 16> a{};
        std::array<uint8_t, 16> b{};
        for (size_t i = 0; i < 16; ++i) {
            a[i] = static_cast<uint8_t>(rng());
            // Mostly share a prefix so both outcomes occur.
            b[i] = (rng() % 8 == 0) ? static_cast<uint8_t>(rng()) : a[i];
        }
        const size_t n = v6 ? 16 : 4;
        const ip_address aa = ip_address::from_bytes(std::span<const uint8_t>(a.data(), n));
        const ip_address bb = ip_address::from_bytes(std::span<const uint8_t>(b.data(), n));
        const unsigned len = static_cast<unsigned>(rng() % (n * 8 + 1));
        auto p = ip_prefix::make(aa, len);
        ASSERT_TRUE(p.ok());
        bool expect = true;
        for (unsigned i = 0; i < len; ++i) {
            expect = expect && bit(aa.bytes(), i) == bit(bb.bytes(), i);
        }
        ASSERT_EQ(p->contains(bb), expect) << p->to_string() << " " << bb.to_string();
        ASSERT_TRUE(p->contains(aa));
        ASSERT_TRUE(p->masked().contains(aa));
    }
}

TEST(endpoint, parse) {
    auto a = endpoint::parse("192.0.2.1:51820");
    ASSERT_TRUE(a.ok()) << a.error_message();
    EXPECT_EQ(a->address(), addr("192.0.2.1"));
    EXPECT_EQ(a->port(), 51820);
    EXPECT_EQ(a->to_string(), "192.0.2.1:51820");
    auto b = endpoint::parse("[2001:db8::1]:51820");
    ASSERT_TRUE(b.ok()) << b.error_message();
    EXPECT_EQ(b->address(), addr("2001:db8::1"));
    EXPECT_EQ(b->port(), 51820);
    EXPECT_EQ(b->to_string(), "[2001:db8::1]:51820");
    auto c = endpoint::parse("1.2.3.4:65535");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->port(), 65535);
    EXPECT_EQ(*c, endpoint(addr("1.2.3.4"), 65535));
    EXPECT_NE(*c, endpoint(addr("1.2.3.4"), 1));
}

TEST(endpoint, parse_errors) {
    EXPECT_EQ(endpoint_err(""), "endpoint is empty");
    EXPECT_EQ(endpoint_err("192.0.2.1"), "endpoint '192.0.2.1' needs a port (e.g. 192.0.2.1:51820)");
    EXPECT_EQ(endpoint_err("192.0.2.1:"), "endpoint '192.0.2.1:' needs a port (e.g. 192.0.2.1:51820)");
    EXPECT_EQ(endpoint_err("[2001:db8::1]"), "endpoint '[2001:db8::1]' needs a port (e.g. [2001:db8::1]:51820)");
    EXPECT_EQ(endpoint_err("192.0.2.1:70000"), "port 70000 out of range 1-65535");
    EXPECT_EQ(endpoint_err("192.0.2.1:0"), "port 0 out of range 1-65535");
    EXPECT_EQ(endpoint_err("192.0.2.1:99999999999999999999999"), "port 99999999999999999999999 out of range 1-65535");
    EXPECT_EQ(endpoint_err("192.0.2.1:http"), "endpoint '192.0.2.1:http': port 'http' is not a number");
    EXPECT_EQ(endpoint_err("192.0.2.1:-1"), "endpoint '192.0.2.1:-1': port '-1' is not a number");
    EXPECT_EQ(endpoint_err("192.0.2.300:51820"), "endpoint '192.0.2.300:51820': '192.0.2.300' is not a valid IPv4 address");
    EXPECT_EQ(endpoint_err("example.com:51820"),
              "endpoint 'example.com:51820': 'example.com' is not an IP address (host names are not resolved)");
    EXPECT_EQ(endpoint_err("2001:db8::1:51820"), "IPv6 endpoint '2001:db8::1:51820' must be written as [address]:port");
    EXPECT_EQ(endpoint_err("[2001:db8::1:51820"), "endpoint '[2001:db8::1:51820' is missing ']'");
    EXPECT_EQ(endpoint_err("[1.2.3.4]:5"), "endpoint '[1.2.3.4]:5': brackets are only for IPv6 addresses");
    EXPECT_EQ(endpoint_err("[::1]x5"), "endpoint '[::1]x5': expected ':' and a port after ']'");
    EXPECT_EQ(endpoint_err("[]:5"), "endpoint '[]:5': brackets are only for IPv6 addresses");
}

TEST(endpoint, sockaddr_round_trip) {
    for (const char* text : {"192.0.2.1:51820", "[2001:db8::1]:443", "[::ffff:10.0.0.1]:1"}) {
        auto ep = endpoint::parse(text);
        ASSERT_TRUE(ep.ok()) << text;
        sockaddr_storage ss;
        const socklen_t len = ep->to_sockaddr(ss);
        auto back = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
        ASSERT_TRUE(back.has_value()) << text;
        EXPECT_EQ(*back, *ep);
        EXPECT_EQ(back->to_string(), text);
    }
    endpoint v4(addr("192.0.2.1"), 51820);
    sockaddr_storage ss;
    ASSERT_EQ(v4.to_sockaddr(ss), sizeof(sockaddr_in));
    sockaddr_in sin;
    std::memcpy(&sin, &ss, sizeof(sin));
    EXPECT_EQ(sin.sin_family, AF_INET);
    EXPECT_EQ(ntohs(sin.sin_port), 51820);
    EXPECT_EQ(ntohl(sin.sin_addr.s_addr), 0xc0000201u);
}

TEST(endpoint, from_sockaddr_rejects) {
    EXPECT_FALSE(endpoint::from_sockaddr(nullptr, 16).has_value());
    sockaddr_storage ss{};
    endpoint(addr("::1"), 5).to_sockaddr(ss);
    EXPECT_FALSE(endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), sizeof(sockaddr_in)).has_value());
    EXPECT_FALSE(endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), 1).has_value());
    ss.ss_family = AF_UNIX;
    EXPECT_FALSE(endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), sizeof(ss)).has_value());
}

TEST(endpoint, hash_and_order) {
    std::set<endpoint> ordered = {endpoint(addr("10.0.0.1"), 2), endpoint(addr("10.0.0.1"), 1)};
    EXPECT_EQ(ordered.begin()->port(), 1);
    std::unordered_set<endpoint> set = {endpoint(addr("10.0.0.1"), 1), endpoint(addr("10.0.0.1"), 1),
                                        endpoint(addr("10.0.0.1"), 2)};
    EXPECT_EQ(set.size(), 2u);
    std::unordered_set<ip_prefix> prefixes = {ip_prefix(), *ip_prefix::parse("::/0")};
    EXPECT_EQ(prefixes.size(), 2u);
}

} // namespace
} // namespace meshfwd
