// Tests for lib/rcu: readers on threads against a publishing writer; old snapshots are freed
// only after every reader has passed a quiescent state.
#include "lib/rcu.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace meshfwd {
namespace {

std::atomic<int> destroyed{0};

// Storage of deleted snapshots is kept (not returned to malloc) until the test ends, so a
// reader that wrongly still holds one reads a poisoned flag instead of reused memory.
std::mutex graveyard_mutex;
std::vector<void*> graveyard;

struct snapshot {
    explicit snapshot(uint64_t v) : version(v) {}
    ~snapshot() {
        alive.store(false, std::memory_order_relaxed);
        destroyed.fetch_add(1, std::memory_order_relaxed);
    }
    static void* operator new(std::size_t size) {
        void* p = std::malloc(size);
        if (p == nullptr) {
            throw std::bad_alloc();
        }
        return p;
    }
    static void operator delete(void* p) {
        std::lock_guard lock(graveyard_mutex);
        graveyard.push_back(p);
    }

    const uint64_t version;
    std::atomic<bool> alive{true};
};

class rcu_test : public ::testing::Test {
protected:
    void SetUp() override { destroyed = 0; }
    void TearDown() override {
        std::lock_guard lock(graveyard_mutex);
        for (void* p : graveyard) {
            std::free(p);
        }
        graveyard.clear();
    }
};

TEST_F(rcu_test, readers_never_see_a_freed_snapshot) {
    constexpr int n_readers = 2;
    constexpr uint64_t n_publishes = 50;
    std::atomic<bool> stop{false};
    std::atomic<bool> saw_poison{false};
    std::atomic<bool> saw_regression{false};
    std::atomic<uint64_t> reads{0};
    std::atomic<uint64_t> versions_seen{0};
    std::atomic<int> started{0};
    std::atomic<uint64_t> held_version{~uint64_t{0}};
    {
        rcu_pointer<snapshot> ptr(std::make_unique<const snapshot>(0));
        std::vector<std::thread> readers;
        for (int r = 0; r < n_readers; ++r) {
            readers.emplace_back([&] {
                rcu_thread_registration reg;
                uint64_t last = 0;
                uint64_t local_reads = 0;
                uint64_t local_versions = 0;
                ++started;
                while (!stop.load(std::memory_order_relaxed)) {
                    const snapshot* s = ptr.read();
                    if (s != nullptr) {
                        held_version.store(s->version);
                    }
                    // Keep using s until a newer snapshot is visible (bounded), then look at s
                    // once more: the writer has swapped it out but must not have freed it,
                    // since this thread has not passed a quiescent state.
                    for (int i = 0; i < 100000 && ptr.read() == s && !stop.load(std::memory_order_relaxed);
                         ++i) {
                        if (s == nullptr || !s->alive.load(std::memory_order_relaxed)) {
                            saw_poison = true;
                        }
                        if (i % 64 == 63) {
                            std::this_thread::yield(); // busy 2-core machine: let the writer run
                        }
                    }
                    if (s == nullptr || !s->alive.load(std::memory_order_relaxed)) {
                        saw_poison = true;
                    }
                    if (s != nullptr && s->version < last) {
                        saw_regression = true;
                    }
                    if (s != nullptr && s->version != last) {
                        ++local_versions;
                        last = s->version;
                    }
                    ++local_reads;
                    reads.fetch_add(1, std::memory_order_relaxed);
                    rcu_quiescent();
                    if (local_reads % 64 == 0) {
                        // Sleep offline now and then, as an adaptive-polling worker does.
                        rcu_offline_scope offline;
                        std::this_thread::yield();
                    }
                }
                versions_seen += local_versions;
            });
        }
        while (started.load() != n_readers) {
            std::this_thread::yield();
        }
        for (uint64_t v = 1; v <= n_publishes; ++v) {
            // Publish while a reader holds the current snapshot, so a premature free would be
            // seen (bounded wait, in case the machine is very busy).
            for (int spin = 0; spin < 10000 && held_version.load() != v - 1; ++spin) {
                std::this_thread::yield();
            }
            ptr.publish(std::make_unique<const snapshot>(v));
            // publish() returns only after freeing the snapshot it replaced.
            ASSERT_EQ(destroyed.load(), static_cast<int>(v));
        }
        stop = true;
        for (auto& t : readers) {
            t.join();
        }
        EXPECT_EQ(ptr.read()->version, n_publishes);
    }
    EXPECT_FALSE(saw_poison.load());
    EXPECT_FALSE(saw_regression.load());
    EXPECT_GT(reads.load(), n_publishes);
    EXPECT_GT(versions_seen.load(), n_publishes / 4); // readers really followed the publishes
    EXPECT_EQ(destroyed.load(), static_cast<int>(n_publishes) + 1); // destructor freed the last
}

// A reader that has not reached a quiescent state keeps the old snapshot alive: publish()
// waits for it, and frees the snapshot only after the reader's rcu_quiescent().
TEST_F(rcu_test, publish_waits_for_a_reader_between_quiescent_states) {
    rcu_pointer<snapshot> ptr(std::make_unique<const snapshot>(0));
    std::atomic<int> stage{0};
    std::atomic<bool> still_alive_when_checked{false};
    std::thread reader([&] {
        rcu_thread_registration reg;
        const snapshot* s = ptr.read();
        stage = 1;
        while (stage.load() != 2) {
            // Online, holding s, no quiescent state: the writer must wait.
        }
        still_alive_when_checked = s->alive.load();
        rcu_quiescent();
        stage = 3;
    });
    while (stage.load() != 1) {
        std::this_thread::yield();
    }
    std::atomic<bool> published{false};
    std::thread writer([&] {
        ptr.publish(std::make_unique<const snapshot>(1));
        published = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(published.load());
    EXPECT_EQ(destroyed.load(), 0);
    stage = 2;
    writer.join();
    reader.join();
    EXPECT_TRUE(still_alive_when_checked.load());
    EXPECT_TRUE(published.load());
    EXPECT_EQ(destroyed.load(), 1);
}

// liburcu's synchronize_rcu marks a registered online caller offline while it waits, so a
// writer that is itself a registered reader does not wait for itself.
TEST_F(rcu_test, publish_from_registered_thread_does_not_deadlock) {
    rcu_thread_registration reg;
    EXPECT_TRUE(rcu_thread_registration::registered());
    rcu_pointer<snapshot> ptr(std::make_unique<const snapshot>(0));
    EXPECT_EQ(ptr.read()->version, 0u);
    ptr.publish(std::make_unique<const snapshot>(1));
    EXPECT_EQ(destroyed.load(), 1);
    EXPECT_EQ(ptr.read()->version, 1u);
    rcu_synchronize();
    rcu_quiescent();
}

// An offline reader (sleeping worker) does not hold up grace periods.
TEST_F(rcu_test, offline_reader_does_not_block_writer) {
    rcu_pointer<snapshot> ptr(std::make_unique<const snapshot>(0));
    std::atomic<bool> release{false};
    std::atomic<bool> offline{false};
    std::thread reader([&] {
        rcu_thread_registration reg;
        (void)ptr.read();
        {
            rcu_offline_scope scope;
            offline = true;
            while (!release.load()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        }
        EXPECT_EQ(ptr.read()->version, 1u);
        rcu_quiescent();
    });
    while (!offline.load()) {
        std::this_thread::yield();
    }
    ptr.publish(std::make_unique<const snapshot>(1)); // would hang if the reader were waited on
    EXPECT_EQ(destroyed.load(), 1);
    release = true;
    reader.join();
}

TEST_F(rcu_test, nested_registration_and_empty_pointer) {
    EXPECT_FALSE(rcu_thread_registration::registered());
    {
        rcu_thread_registration outer;
        {
            rcu_thread_registration inner;
            EXPECT_TRUE(rcu_thread_registration::registered());
        }
        EXPECT_TRUE(rcu_thread_registration::registered());
        rcu_pointer<snapshot> ptr;
        EXPECT_EQ(ptr.read(), nullptr);
        ptr.publish(std::make_unique<const snapshot>(5)); // nothing to free, no wait needed
        EXPECT_EQ(destroyed.load(), 0);
        EXPECT_EQ(ptr.read()->version, 5u);
        rcu_quiescent();
    }
    EXPECT_FALSE(rcu_thread_registration::registered());
    EXPECT_EQ(destroyed.load(), 1);
}

} // namespace
} // namespace meshfwd
