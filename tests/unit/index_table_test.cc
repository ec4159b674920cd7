// index_table: insert/lookup/erase, forged and stale indexes, a full table, and readers racing
// the control thread (a reader must never get a value under an index it was not inserted with).
#include "dataplane/index_table.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace meshfwd::dataplane {
namespace {

struct session {
    int id = 0;
};

TEST(IndexTable, InsertLookupErase) {
    index_table<session> t(8);
    EXPECT_EQ(t.capacity(), 256u);
    session a{1}, b{2};
    const auto ia = t.insert(&a);
    const auto ib = t.insert(&b);
    ASSERT_TRUE(ia && ib);
    EXPECT_NE(*ia & 0xff, *ib & 0xff);
    EXPECT_EQ(t.size(), 2u);
    EXPECT_EQ(t.lookup(*ia), &a);
    EXPECT_EQ(t.lookup(*ib), &b);
    t.erase(*ia);
    EXPECT_EQ(t.lookup(*ia), nullptr);
    EXPECT_EQ(t.lookup(*ib), &b);
    EXPECT_EQ(t.size(), 1u);
    t.erase(*ia);  // not present: no-op
    t.erase(*ib ^ 0x100);  // right slot, wrong high bits: no-op
    EXPECT_EQ(t.lookup(*ib), &b);
    EXPECT_EQ(t.size(), 1u);
}

TEST(IndexTable, WrongHighBitsGiveNull) {
    index_table<session> t(4);
    session a{1};
    const auto i = t.insert(&a);
    ASSERT_TRUE(i);
    for (uint32_t bit = 4; bit < 32; ++bit) {
        EXPECT_EQ(t.lookup(*i ^ (uint32_t{1} << bit)), nullptr) << bit;
    }
    // Every other slot is empty, whatever the high bits.
    for (uint32_t s = 0; s < 16; ++s) {
        if (s != (*i & 15)) {
            EXPECT_EQ(t.lookup((*i & ~15u) | s), nullptr) << s;
            EXPECT_EQ(t.lookup(s), nullptr) << s;
        }
    }
}

TEST(IndexTable, HighBitsAreRandomAndReuseGetsANewIndex) {
    index_table<session> t(4);
    session a{1};
    std::set<uint32_t> seen;
    uint32_t previous = 0;
    for (int k = 0; k < 200; ++k) {
        const auto i = t.insert(&a);
        ASSERT_TRUE(i);
        // One slot reused every time (LIFO free list), never with the index it just had.
        EXPECT_NE(*i, previous);
        previous = *i;
        seen.insert(*i);
        t.erase(*i);
        EXPECT_EQ(t.lookup(*i), nullptr);
    }
    // 200 draws from 2^28 values: nearly all distinct if the high bits are random.
    EXPECT_GT(seen.size(), 190u);
}

TEST(IndexTable, FullTableGivesNullopt) {
    index_table<session> t(3);
    std::vector<session> s(9);
    std::vector<uint32_t> idx;
    for (int k = 0; k < 8; ++k) {
        const auto i = t.insert(&s[k]);
        ASSERT_TRUE(i) << k;
        idx.push_back(*i);
    }
    EXPECT_EQ(t.size(), 8u);
    EXPECT_FALSE(t.insert(&s[8]));
    for (int k = 0; k < 8; ++k) {
        EXPECT_EQ(t.lookup(idx[k]), &s[k]);
    }
    t.erase(idx[3]);
    const auto again = t.insert(&s[8]);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again & 7, idx[3] & 7);
    EXPECT_NE(*again, idx[3]);
    EXPECT_EQ(t.lookup(*again), &s[8]);
    EXPECT_EQ(t.lookup(idx[3]), nullptr);
    EXPECT_FALSE(t.insert(&s[0]));
}

TEST(IndexTable, BadCapacityThrows) {
    EXPECT_THROW(index_table<session>(0), std::invalid_argument);
    EXPECT_THROW(index_table<session>(25), std::invalid_argument);
}

// Deterministic interleavings through the test seam: the "other thread" runs inside lookup().
struct seam {
    static inline std::function<void()> on_tag, on_value;
    static void after_tag_read() noexcept {
        if (on_tag) {
            auto f = std::exchange(on_tag, nullptr);
            f();
        }
    }
    static void after_value_read() noexcept {
        if (on_value) {
            auto f = std::exchange(on_value, nullptr);
            f();
        }
    }
};

TEST(IndexTable, SlotReusedBetweenLoadsGivesNull) {
    // One slot is reused (LIFO free list) by a new session while a reader sits between its first
    // tag read and its value read: it must not return the new session under the old index.
    index_table<session, seam> t(1);
    session a{1}, b{2};
    const auto ia = t.insert(&a);
    ASSERT_TRUE(ia);
    std::optional<uint32_t> ib;
    seam::on_tag = [&] {
        t.erase(*ia);
        ib = t.insert(&b);
    };
    EXPECT_EQ(t.lookup(*ia), nullptr);
    ASSERT_TRUE(ib);
    EXPECT_EQ(*ib & 1, *ia & 1);
    EXPECT_EQ(t.lookup(*ib), &b);
    EXPECT_EQ(t.lookup(*ia), nullptr);

    // Erased between the value read and the second tag read: nullptr (or the value being
    // erased, which RCU keeps alive), never anything else.
    seam::on_value = [&] { t.erase(*ib); };
    session* got = t.lookup(*ib);
    EXPECT_TRUE(got == nullptr || got == &b);
    EXPECT_EQ(t.lookup(*ib), nullptr);
    seam::on_tag = nullptr;
    seam::on_value = nullptr;
}

// Each value is used for one insert only and learns its index right after insert() returns, so a
// reader that finds it can check that it was found under exactly that index.
struct tracked {
    std::atomic<uint32_t> index{0};
    std::atomic<bool> known{false};
};

TEST(IndexTable, ConcurrentReadersNeverSeeAForeignValue) {
    // 16 slots: slots are reused constantly while readers look them up.
    index_table<tracked> t(4);
    constexpr std::size_t max_inserts = 400000;
    auto pool = std::make_unique<tracked[]>(max_inserts);
    // Recently issued indexes for the readers to probe (some live, some erased).
    constexpr std::size_t ring = 64;
    std::array<std::atomic<uint32_t>, ring> recent{};
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> bad{0}, hits{0}, lookups{0};

    auto reader = [&](uint32_t seed) {
        std::mt19937 rng(seed);
        uint64_t my_hits = 0, my_lookups = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            uint32_t i = recent[rng() % ring].load(std::memory_order_relaxed);
            if (rng() % 4 == 0) {
                i ^= uint32_t{1} << (4 + rng() % 28);  // a forged index for the same slot
            }
            tracked* v = t.lookup(i);
            ++my_lookups;
            if (v == nullptr) {
                continue;
            }
            ++my_hits;
            // The writer publishes the index right after insert() returns.
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
            while (!v->known.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < deadline) {
                std::this_thread::yield();
            }
            if (!v->known.load(std::memory_order_acquire) || v->index.load(std::memory_order_relaxed) != i) {
                bad.fetch_add(1);
            }
        }
        hits.fetch_add(my_hits);
        lookups.fetch_add(my_lookups);
    };

    std::vector<std::thread> readers;
    for (uint32_t r = 0; r < 3; ++r) {
        readers.emplace_back(reader, 100 + r);
    }

    std::mt19937 rng(1);
    std::vector<uint32_t> live;
    std::size_t used = 0;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    while (used < max_inserts && std::chrono::steady_clock::now() < end) {
        for (int k = 0; k < 64 && used < max_inserts; ++k) {
            if (!live.empty() && (rng() % 2 == 0 || live.size() == t.capacity())) {
                const std::size_t j = rng() % live.size();
                t.erase(live[j]);
                live[j] = live.back();
                live.pop_back();
            } else {
                tracked* v = &pool[used++];
                const auto i = t.insert(v);
                if (!i) {
                    ADD_FAILURE() << "insert failed with " << live.size() << " live";
                    used = max_inserts;
                    break;
                }
                v->index.store(*i, std::memory_order_relaxed);
                v->known.store(true, std::memory_order_release);
                live.push_back(*i);
                recent[rng() % ring].store(*i, std::memory_order_relaxed);
            }
        }
    }
    stop.store(true);
    for (auto& r : readers) {
        r.join();
    }
    EXPECT_EQ(bad.load(), 0u);
    EXPECT_EQ(t.size(), live.size());
    // The race was exercised: readers hit live values while slots churned.
    EXPECT_GT(hits.load(), 0u);
    EXPECT_GT(lookups.load(), 1000u);
    EXPECT_GT(used, 1000u);
    for (uint32_t i : live) {
        EXPECT_NE(t.lookup(i), nullptr);
    }
}

} // namespace
} // namespace meshfwd::dataplane
