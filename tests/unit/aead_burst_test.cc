// Unit tests for crypto/aead_burst: both backends against crypto::aead_encrypt and each other for
// every length 0..2048 in mixed bursts, decrypt round trips, every tag/ciphertext/length tamper
// case and the stable partition of failures, bursts past 128, backend selection. Test thread only.
#include "crypto/aead_burst.h"

#include "crypto/aead.h"
#include "crypto/x25519.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace meshfwd::crypto {
namespace {

class aead_burst_test : public ::testing::Test {
protected:
    static void SetUpTestSuite() { ASSERT_TRUE(crypto_init()); }
};

// One packet of test traffic: plaintext, key, counter, and its expected sealed form.
struct packet {
    std::vector<uint8_t> plain;
    std::size_t key_index;
    uint64_t counter;
    std::vector<uint8_t> sealed;   // aead_encrypt(plain) = ciphertext || tag
};

struct traffic {
    std::vector<secret32> keys;
    std::vector<packet> packets;
};

traffic make_traffic(const std::vector<uint32_t>& lengths, std::size_t n_keys, uint32_t seed) {
    std::mt19937_64 rng(seed);
    traffic t;
    for (std::size_t k = 0; k < n_keys; ++k) {
        t.keys.push_back(generate_private_key());
    }
    for (const uint32_t len : lengths) {
        packet p;
        p.plain.resize(len);
        for (auto& b : p.plain) {
            b = static_cast<uint8_t>(rng());
        }
        p.key_index = rng() % n_keys;
        p.counter = rng() % 3 == 0 ? rng() % 1000 : rng();
        p.sealed.resize(len + aead_tag_size);
        aead_encrypt(p.sealed, p.plain, p.counter, {}, t.keys[p.key_index]);
        t.packets.push_back(std::move(p));
    }
    return t;
}

// Per-packet buffers the ops point into; id = index into traffic.packets.
struct burst_buffers {
    std::vector<std::vector<uint8_t>> bufs;
    std::vector<aead_op> ops;
    std::vector<std::size_t> ids;

    // Plaintexts with room for the tag, for encrypt_burst.
    void load_plain(const traffic& t, const std::vector<std::size_t>& which) {
        clear();
        for (const std::size_t id : which) {
            std::vector<uint8_t> buf = t.packets[id].plain;
            buf.resize(buf.size() + aead_tag_size, 0xee);
            add(t, id, std::move(buf), static_cast<uint32_t>(t.packets[id].plain.size()));
        }
    }
    // Sealed packets, for decrypt_burst.
    void load_sealed(const traffic& t, const std::vector<std::size_t>& which) {
        clear();
        for (const std::size_t id : which) {
            add(t, id, t.packets[id].sealed, static_cast<uint32_t>(t.packets[id].sealed.size()));
        }
    }
    std::size_t id_of(const aead_op& op) const {
        for (std::size_t i = 0; i < bufs.size(); ++i) {
            if (bufs[i].data() == op.data) {
                EXPECT_EQ(reinterpret_cast<uintptr_t>(op.owner), ids[i] + 1) << "owner left its op";
                return ids[i];
            }
        }
        ADD_FAILURE() << "op points at no buffer";
        return 0;
    }

private:
    void clear() {
        bufs.clear();
        ops.clear();
        ids.clear();
    }
    void add(const traffic& t, std::size_t id, std::vector<uint8_t> buf, uint32_t length) {
        bufs.push_back(std::move(buf));
        ids.push_back(id);
        // bufs may reallocate: fix all data pointers after each add.
        // owner carries the id (+1, so that none is null): it must move with its op.
        ops.push_back(aead_op{nullptr, length, t.packets[id].counter, &t.keys[t.packets[id].key_index],
                              reinterpret_cast<void*>(static_cast<uintptr_t>(id + 1))});
        for (std::size_t i = 0; i < ops.size(); ++i) {
            ops[i].data = bufs[i].data();
        }
    }
};

struct named_backend {
    std::string name;
    std::unique_ptr<aead_burst> impl;
};

std::vector<named_backend> all_backends() {
    std::vector<named_backend> out;
    out.push_back({"libsodium", make_aead_burst(aead_backend::libsodium)});
    if (auto ipsec = make_aead_burst(aead_backend::ipsec_mb)) {
        out.push_back({"ipsec-mb", std::move(ipsec)});
    }
    return out;
}

std::unique_ptr<aead_burst> ipsec_or_skip_reason(std::string& reason) {
#if !MESHFWD_HAVE_IPSEC_MB
    reason = "intel-ipsec-mb not built (meson -Dipsec_mb, libipsec-mb-dev)";
    return nullptr;
#else
    auto impl = make_aead_burst(aead_backend::ipsec_mb);
    if (!impl) {
        reason = "this CPU cannot run intel-ipsec-mb's AVX2 code";
    }
    return impl;
#endif
}

// Splits ids into consecutive bursts of the given sizes (cycling).
std::vector<std::vector<std::size_t>> split(const std::vector<std::size_t>& ids, const std::vector<std::size_t>& sizes) {
    std::vector<std::vector<std::size_t>> out;
    std::size_t pos = 0;
    for (std::size_t s = 0; pos < ids.size(); ++s) {
        const std::size_t n = std::min(sizes[s % sizes.size()], ids.size() - pos);
        out.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(pos), ids.begin() + static_cast<std::ptrdiff_t>(pos + n));
        pos += n;
    }
    return out;
}

TEST_F(aead_burst_test, parse_and_resolve_backend) {
    EXPECT_EQ(parse_aead_backend("auto"), aead_backend::automatic);
    EXPECT_EQ(parse_aead_backend("libsodium"), aead_backend::libsodium);
    EXPECT_EQ(parse_aead_backend("ipsec-mb"), aead_backend::ipsec_mb);
    for (const char* bad : {"", "Auto", "ipsec_mb", "ipsecmb", "sodium", "libsodium ", "openssl"}) {
        EXPECT_FALSE(parse_aead_backend(bad).has_value()) << bad;
    }
    for (const auto b : {aead_backend::automatic, aead_backend::libsodium, aead_backend::ipsec_mb}) {
        EXPECT_EQ(parse_aead_backend(to_string(b)), b);
    }
    EXPECT_EQ(resolve_backend(aead_backend::libsodium), aead_backend::libsodium);
    EXPECT_EQ(resolve_backend(aead_backend::ipsec_mb), aead_backend::ipsec_mb);
    const aead_backend chosen = resolve_backend(aead_backend::automatic);
    EXPECT_NE(chosen, aead_backend::automatic);
    EXPECT_EQ(chosen, aead_backend_available(aead_backend::ipsec_mb) ? aead_backend::ipsec_mb : aead_backend::libsodium);
    EXPECT_EQ(aead_backend_available(aead_backend::ipsec_mb), make_aead_burst(aead_backend::ipsec_mb) != nullptr);
#if !MESHFWD_HAVE_IPSEC_MB
    EXPECT_FALSE(aead_backend_available(aead_backend::ipsec_mb));
#endif

    auto sodium = make_aead_burst(aead_backend::libsodium);
    ASSERT_TRUE(sodium);
    EXPECT_EQ(sodium->name(), "libsodium");
    auto automatic = make_aead_burst(aead_backend::automatic);
    ASSERT_TRUE(automatic);
    EXPECT_EQ(automatic->name(), to_string(chosen));
}

TEST_F(aead_burst_test, ipsec_mb_available_here) {
    std::string reason;
    auto ipsec = ipsec_or_skip_reason(reason);
    if (!ipsec) {
        GTEST_SKIP() << reason;
    }
    EXPECT_EQ(ipsec->name(), "ipsec-mb");
    EXPECT_EQ(resolve_backend(aead_backend::automatic), aead_backend::ipsec_mb);
}

// Every length 0..2048, shuffled into bursts of mixed sizes (some past 128) and mixed keys: each
// backend's encrypt equals aead_encrypt byte for byte (so the backends agree with each other), and
// each backend decrypts every backend's output back to the plaintext.
TEST_F(aead_burst_test, every_length_matches_reference) {
    std::vector<uint32_t> lengths;
    for (uint32_t len = 0; len <= 2048; ++len) {
        lengths.push_back(len);
    }
    const traffic t = make_traffic(lengths, 7, 1);
    std::vector<std::size_t> order(t.packets.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::shuffle(order.begin(), order.end(), std::mt19937(2));
    const auto bursts = split(order, {1, 32, 7, 128, 129, 300, 2, 64, 255, 256});

    auto backends = all_backends();
    std::string reason;
    if (!ipsec_or_skip_reason(reason)) {
        std::printf("note: only libsodium checked (%s)\n", reason.c_str());
    }
    for (auto& enc : backends) {
        std::size_t checked = 0;
        for (const auto& which : bursts) {
            burst_buffers b;
            b.load_plain(t, which);
            ASSERT_EQ(enc.impl->encrypt_burst(b.ops), b.ops.size());
            for (std::size_t i = 0; i < b.ops.size(); ++i) {
                const packet& p = t.packets[b.ids[i]];
                ASSERT_EQ(b.bufs[i], p.sealed) << enc.name << " encrypt, length " << p.plain.size();
                ++checked;
            }
            for (auto& dec : backends) {
                burst_buffers d = b;   // the sealed output of `enc`
                for (std::size_t i = 0; i < d.ops.size(); ++i) {
                    d.ops[i].data = d.bufs[i].data();
                    d.ops[i].length += static_cast<uint32_t>(aead_tag_size);
                }
                ASSERT_EQ(dec.impl->decrypt_burst(d.ops), d.ops.size()) << enc.name << " -> " << dec.name;
                for (std::size_t i = 0; i < d.ops.size(); ++i) {
                    ASSERT_EQ(d.ops[i].data, d.bufs[i].data()) << "order changed without failures";
                    const packet& p = t.packets[d.ids[i]];
                    ASSERT_TRUE(std::equal(p.plain.begin(), p.plain.end(), d.bufs[i].begin()))
                        << enc.name << " -> " << dec.name << " decrypt, length " << p.plain.size();
                }
            }
        }
        EXPECT_EQ(checked, lengths.size());
    }
}

TEST_F(aead_burst_test, empty_burst_and_keepalives) {
    const traffic t = make_traffic({0, 0, 0, 0, 0}, 3, 3);
    for (auto& be : all_backends()) {
        EXPECT_EQ(be.impl->encrypt_burst({}), 0u);
        EXPECT_EQ(be.impl->decrypt_burst({}), 0u);
        burst_buffers b;
        b.load_plain(t, {0, 1, 2, 3, 4});
        ASSERT_EQ(be.impl->encrypt_burst(b.ops), 5u);
        for (std::size_t i = 0; i < 5; ++i) {
            EXPECT_EQ(b.bufs[i], t.packets[i].sealed) << be.name;
        }
        b.load_sealed(t, {0, 1, 2, 3, 4});
        EXPECT_EQ(be.impl->decrypt_burst(b.ops), 5u) << be.name;
    }
}

// Applies one tamper to op `target` of a sealed burst and checks that exactly it fails, is moved
// after the good ones, and that the good ones decrypt correctly in their original order.
void check_single_failure(aead_burst& impl, const traffic& t, const std::vector<std::size_t>& which, std::size_t target,
                          const std::function<void(aead_op&, std::vector<uint8_t>&)>& tamper, const std::string& what) {
    burst_buffers b;
    b.load_sealed(t, which);
    tamper(b.ops[target], b.bufs[target]);
    const uint8_t* bad_data = b.ops[target].data;
    const std::size_t n = impl.decrypt_burst(b.ops);
    ASSERT_EQ(n, which.size() - 1) << impl.name() << ": " << what << " at " << target;
    EXPECT_EQ(b.ops[n].data, bad_data) << impl.name() << ": " << what;
    std::size_t expect_pos = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (expect_pos == target) {
            ++expect_pos;
        }
        ASSERT_EQ(b.ops[i].data, b.bufs[expect_pos].data()) << impl.name() << ": good ops reordered, " << what;
        const packet& p = t.packets[which[expect_pos]];
        ASSERT_TRUE(std::equal(p.plain.begin(), p.plain.end(), b.ops[i].data)) << impl.name() << ": " << what;
        ++expect_pos;
    }
}

TEST_F(aead_burst_test, every_tamper_fails_exactly_that_op) {
    // A burst of 40 with keepalives, short, odd and full-MTU lengths and 5 keys.
    std::vector<uint32_t> lengths;
    for (uint32_t i = 0; i < 40; ++i) {
        lengths.push_back(i % 8 == 0 ? 0 : (i * 37) % 1421);
    }
    const traffic t = make_traffic(lengths, 5, 4);
    std::vector<std::size_t> which(lengths.size());
    for (std::size_t i = 0; i < which.size(); ++i) {
        which[i] = i;
    }
    std::size_t cases = 0;
    for (auto& be : all_backends()) {
        for (const std::size_t target : {std::size_t{0}, std::size_t{8}, std::size_t{17}, std::size_t{39}}) {
            const uint32_t text_len = static_cast<uint32_t>(t.packets[target].plain.size());
            for (std::size_t byte = 0; byte < aead_tag_size; ++byte) {
                for (const uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
                    check_single_failure(
                        *be.impl, t, which, target,
                        [&](aead_op&, std::vector<uint8_t>& buf) { buf[text_len + byte] ^= mask; },
                        "tag byte " + std::to_string(byte) + " ^ " + std::to_string(mask));
                    ++cases;
                }
            }
            if (text_len > 0) {
                for (const uint32_t pos : {uint32_t{0}, text_len / 2, text_len - 1}) {
                    check_single_failure(
                        *be.impl, t, which, target, [&](aead_op&, std::vector<uint8_t>& buf) { buf[pos] ^= 0x04; },
                        "ciphertext byte " + std::to_string(pos));
                    ++cases;
                }
            }
            for (const uint32_t cut : {uint32_t{1}, uint32_t{15}, uint32_t{16}}) {
                if (cut <= text_len + aead_tag_size) {
                    check_single_failure(
                        *be.impl, t, which, target, [&](aead_op& op, std::vector<uint8_t>&) { op.length -= cut; },
                        "truncated by " + std::to_string(cut));
                    ++cases;
                }
            }
            check_single_failure(
                *be.impl, t, which, target, [](aead_op& op, std::vector<uint8_t>&) { op.length = 0; }, "length 0");
            check_single_failure(
                *be.impl, t, which, target, [](aead_op& op, std::vector<uint8_t>&) { op.counter += 1; }, "wrong counter");
            check_single_failure(
                *be.impl, t, which, target,
                [&](aead_op& op, std::vector<uint8_t>&) { op.key = &t.keys[(t.packets[target].key_index + 1) % 5]; },
                "wrong key");
            cases += 3;
        }
    }
    EXPECT_GT(cases, 200u);
}

// Many failures scattered over a burst past 128: both sides keep their original order.
TEST_F(aead_burst_test, scattered_failures_stable_partition) {
    std::vector<uint32_t> lengths;
    for (uint32_t i = 0; i < 333; ++i) {
        lengths.push_back((i * 97) % 1500);
    }
    const traffic t = make_traffic(lengths, 9, 5);
    std::vector<std::size_t> which(lengths.size());
    for (std::size_t i = 0; i < which.size(); ++i) {
        which[i] = i;
    }
    std::mt19937 rng(6);
    for (auto& be : all_backends()) {
        for (const int fail_percent : {0, 3, 30, 100}) {
            burst_buffers b;
            b.load_sealed(t, which);
            std::vector<bool> bad(which.size());
            for (std::size_t i = 0; i < which.size(); ++i) {
                bad[i] = static_cast<int>(rng() % 100) < fail_percent;
                if (bad[i]) {
                    b.bufs[i][b.ops[i].length - 1] ^= 0x10;   // last tag byte
                }
            }
            const std::size_t n = be.impl->decrypt_burst(b.ops);
            std::vector<std::size_t> good_ids;
            std::vector<std::size_t> bad_ids;
            for (std::size_t i = 0; i < which.size(); ++i) {
                (bad[i] ? bad_ids : good_ids).push_back(i);
            }
            ASSERT_EQ(n, good_ids.size()) << be.name << " " << fail_percent << "%";
            for (std::size_t i = 0; i < n; ++i) {
                ASSERT_EQ(b.id_of(b.ops[i]), good_ids[i]) << be.name << ": good side order";
                const packet& p = t.packets[good_ids[i]];
                ASSERT_TRUE(std::equal(p.plain.begin(), p.plain.end(), b.ops[i].data));
            }
            for (std::size_t i = n; i < b.ops.size(); ++i) {
                ASSERT_EQ(b.id_of(b.ops[i]), bad_ids[i - n]) << be.name << ": failed side order";
            }
        }
    }
}

// An instance is reusable across many bursts (the ipsec-mb queue is drained each time).
TEST_F(aead_burst_test, instance_reuse) {
    std::vector<uint32_t> lengths(1000);
    for (std::size_t i = 0; i < lengths.size(); ++i) {
        lengths[i] = static_cast<uint32_t>((i * 131) % 1420);
    }
    const traffic t = make_traffic(lengths, 4, 7);
    std::vector<std::size_t> order(lengths.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    for (auto& be : all_backends()) {
        for (const auto& which : split(order, {32, 31, 33, 1, 128, 127})) {
            burst_buffers b;
            b.load_plain(t, which);
            ASSERT_EQ(be.impl->encrypt_burst(b.ops), which.size());
            for (std::size_t i = 0; i < which.size(); ++i) {
                ASSERT_EQ(b.bufs[i], t.packets[which[i]].sealed) << be.name;
            }
        }
    }
}

} // namespace
} // namespace meshfwd::crypto
