// Replay window: edge cases, a randomized differential test against a plain std::set model, and
// concurrent workers (each counter accepted exactly once).
#include "crypto/replay.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace meshfwd::crypto {
namespace {

constexpr uint64_t W = replay_window::window_size;
constexpr uint64_t LIMIT = spec::reject_after_messages;

// The deliberately simple reference: every accepted counter, and the highest.
class slow_window {
public:
    replay_reason check_and_set(uint64_t c) {
        if (c >= LIMIT) {
            return replay_reason::limit;
        }
        if (_any && c + W < _max) {
            return replay_reason::too_old;
        }
        if (!_seen.insert(c).second) {
            return replay_reason::duplicate;
        }
        if (!_any || c > _max) {
            _max = c;
        }
        _any = true;
        // Forget what can never matter again (keeps the model small).
        if (_max > W) {
            _seen.erase(_seen.begin(), _seen.lower_bound(_max - W));
        }
        return replay_reason::ok;
    }

private:
    std::set<uint64_t> _seen;
    uint64_t _max = 0;
    bool _any = false;
};

TEST(Replay, InOrderAndDuplicates) {
    auto w = std::make_unique<replay_window>();
    for (uint64_t c = 0; c < 20000; ++c) {
        ASSERT_EQ(w->check_and_set(c), replay_reason::ok) << c;
    }
    EXPECT_EQ(w->check_and_set(19999), replay_reason::duplicate);
    EXPECT_EQ(w->check_and_set(19999 - W), replay_reason::duplicate);
    EXPECT_EQ(w->check_and_set(19999 - W - 1), replay_reason::too_old);
    EXPECT_EQ(w->check_and_set(0), replay_reason::too_old);
    EXPECT_EQ(w->highest(), 19999u);
}

TEST(Replay, ZeroFirstAndReordered) {
    auto w = std::make_unique<replay_window>();
    EXPECT_EQ(w->peek(0), replay_reason::ok);
    EXPECT_EQ(w->check_and_set(0), replay_reason::ok);
    EXPECT_EQ(w->peek(0), replay_reason::duplicate);
    EXPECT_EQ(w->check_and_set(0), replay_reason::duplicate);
    EXPECT_EQ(w->check_and_set(W + 5), replay_reason::ok);
    // Everything in [5, W+5) is still acceptable, once.
    EXPECT_EQ(w->check_and_set(4), replay_reason::too_old);
    EXPECT_EQ(w->check_and_set(5), replay_reason::ok);
    EXPECT_EQ(w->check_and_set(5), replay_reason::duplicate);
    for (uint64_t c = W + 4; c > 5; --c) {
        ASSERT_EQ(w->check_and_set(c), replay_reason::ok) << c;
    }
    for (uint64_t c = 5; c <= W + 5; ++c) {
        ASSERT_EQ(w->check_and_set(c), replay_reason::duplicate) << c;
    }
}

TEST(Replay, BigJumpForgetsOldBlocks) {
    auto w = std::make_unique<replay_window>();
    ASSERT_EQ(w->check_and_set(100), replay_reason::ok);
    // Same slot, 256 blocks later: the old bits must not make 100 + 8192 a duplicate.
    ASSERT_EQ(w->check_and_set(100 + 8192), replay_reason::ok);
    EXPECT_EQ(w->check_and_set(100), replay_reason::too_old);
    EXPECT_EQ(w->check_and_set(100 + 8192 - W), replay_reason::ok);
    EXPECT_EQ(w->check_and_set(1ULL << 40), replay_reason::ok);
    EXPECT_EQ(w->check_and_set((1ULL << 40) - W), replay_reason::ok);
    EXPECT_EQ(w->check_and_set((1ULL << 40) - W - 1), replay_reason::too_old);
}

TEST(Replay, CounterLimits) {
    auto w = std::make_unique<replay_window>();
    EXPECT_EQ(w->check_and_set(LIMIT), replay_reason::limit);
    EXPECT_EQ(w->check_and_set(~uint64_t{0}), replay_reason::limit);
    EXPECT_EQ(w->peek(LIMIT), replay_reason::limit);
    EXPECT_EQ(w->check_and_set(LIMIT - 1), replay_reason::ok);
    EXPECT_EQ(w->check_and_set(LIMIT - 1), replay_reason::duplicate);
    EXPECT_EQ(w->check_and_set(LIMIT - 2), replay_reason::ok);
    EXPECT_EQ(w->check_and_set(LIMIT - 1 - W), replay_reason::ok);
    EXPECT_EQ(w->check_and_set(LIMIT - 2 - W), replay_reason::too_old);
    EXPECT_EQ(w->check_and_set(LIMIT), replay_reason::limit);
    EXPECT_EQ(w->highest(), LIMIT - 1);
    w->reset();
    EXPECT_EQ(w->check_and_set(0), replay_reason::ok);
    EXPECT_EQ(w->highest(), 0u);
}

TEST(Replay, DifferentialAgainstSlowModel) {
    std::mt19937_64 rng(12345);
    for (int round = 0; round < 4; ++round) {
        auto w = std::make_unique<replay_window>();
        slow_window ref;
        uint64_t base = round == 3 ? LIMIT - 300000 : 0;
        for (int step = 0; step < 100000; ++step) {
            uint64_t c = 0;
            const uint64_t pick = rng() % 100;
            if (pick < 55) {
                c = base + rng() % 64;  // around the front, duplicates included
                base += rng() % 8;
            } else if (pick < 85) {
                const uint64_t back = rng() % (W + 200);  // inside and just outside the window
                c = base > back ? base - back : 0;
            } else if (pick < 97) {
                c = base + rng() % 20000;  // forward jumps, some beyond one window
                if (rng() % 4 == 0) {
                    base = c;
                }
            } else if (pick < 99) {
                base += 1 + rng() % (1ULL << 30);  // big jumps
                c = base;
            } else {
                c = LIMIT - 1 - rng() % 4;  // the very top
            }
            if (round == 3 && c > LIMIT + 5) {
                c = LIMIT + rng() % 5;
            }
            const auto want = ref.check_and_set(c);
            const auto got = w->check_and_set(c);
            ASSERT_EQ(got, want) << "round " << round << " step " << step << " counter " << c;
        }
    }
}

TEST(Replay, ConcurrentWorkersAcceptEachCounterOnce) {
    auto w = std::make_unique<replay_window>();
    constexpr int n_threads = 4;
    constexpr uint64_t n_counters = 200000;
    // Every thread feeds every counter (so each is offered 4 times), interleaved with small
    // local reordering; exactly one offer per counter may win.
    std::vector<std::atomic<uint32_t>> wins(n_counters);
    std::atomic<uint64_t> too_old{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < n_threads; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937_64 rng(static_cast<uint64_t>(t) + 1);
            for (uint64_t base = 0; base < n_counters; base += 64) {
                std::array<uint64_t, 64> batch{};
                for (uint64_t i = 0; i < 64; ++i) {
                    batch[i] = base + i;
                }
                std::shuffle(batch.begin(), batch.end(), rng);
                for (const uint64_t c : batch) {
                    if (c >= n_counters) {
                        continue;
                    }
                    const auto r = w->check_and_set(c);
                    if (r == replay_reason::ok) {
                        wins[c].fetch_add(1, std::memory_order_relaxed);
                    } else if (r == replay_reason::too_old) {
                        too_old.fetch_add(1, std::memory_order_relaxed);
                    } else {
                        ASSERT_EQ(r, replay_reason::duplicate);
                    }
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    uint64_t accepted = 0;
    for (uint64_t c = 0; c < n_counters; ++c) {
        ASSERT_LE(wins[c].load(), 1u) << "counter " << c << " accepted twice";
        accepted += wins[c].load();
    }
    // Workers stay within a window of each other almost always; nearly all counters get in once.
    EXPECT_GT(accepted, n_counters * 9 / 10);
    EXPECT_EQ(w->highest(), n_counters - 1);
}

TEST(Replay, ConcurrentDisjointCountersAllAccepted) {
    // Workers each own every 4th counter (as with a per-burst reservation): all must be accepted
    // as long as they stay within the window of each other (which the lockstep ensures).
    auto w = std::make_unique<replay_window>();
    constexpr int n_threads = 4;
    constexpr uint64_t per_thread = 100000;
    std::atomic<uint64_t> progress[n_threads];
    for (auto& p : progress) {
        p.store(0);
    }
    std::atomic<uint64_t> refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < n_threads; ++t) {
        threads.emplace_back([&, t] {
            for (uint64_t i = 0; i < per_thread; ++i) {
                // Do not run more than ~1000 counters ahead of the slowest worker.
                for (;;) {
                    uint64_t slowest = ~uint64_t{0};
                    for (auto& p : progress) {
                        slowest = std::min(slowest, p.load(std::memory_order_relaxed));
                    }
                    if (i < slowest + 250) {
                        break;
                    }
                    std::this_thread::yield();
                }
                if (w->check_and_set(i * n_threads + static_cast<uint64_t>(t)) != replay_reason::ok) {
                    refused.fetch_add(1);
                }
                progress[t].store(i + 1, std::memory_order_relaxed);
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    EXPECT_EQ(refused.load(), 0u);
    EXPECT_EQ(w->highest(), per_thread * n_threads - 1);
}

TEST(Replay, ReasonNames) { EXPECT_EQ(to_string(replay_reason::too_old), "too_old"); }

}  // namespace
}  // namespace meshfwd::crypto
