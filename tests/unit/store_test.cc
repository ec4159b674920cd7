// meshcoord's store (coord/store.h) against both backends: SQLite in a temporary file and a real
// PostgreSQL server started for this test binary (pg_fixture.h; a missing PostgreSQL fails the
// PostgreSQL cases, it never skips them). Each case gets a fresh database.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <pqxx/pqxx>

#include "coord/store.h"
#include "pg_fixture.h"

namespace meshfwd::coord {
namespace {

enum class backend { sqlite, postgres };

node_key key_of(uint32_t n, uint8_t tag = 0) {
    node_key k{};
    k[0] = uint8_t(n);
    k[1] = uint8_t(n >> 8);
    k[2] = uint8_t(n >> 16);
    k[3] = uint8_t(n >> 24);
    k[4] = tag;
    k[31] = 0x5a;
    return k;
}

uint32_t ipv4(const char* text) {
    unsigned a, b, c, d;
    EXPECT_EQ(std::sscanf(text, "%u.%u.%u.%u", &a, &b, &c, &d), 4);
    return (a << 24) | (b << 16) | (c << 8) | d;
}

network_record network(const std::string& id, const std::string& cidr) {
    network_record n;
    n.id = id;
    n.name = "net " + id;
    n.cidr = cidr;
    n.created_ms = 1000;
    n.invite_public_key.assign(32, 0x11);
    n.invite_secret_key.assign(64, 0x22);
    n.options_json = R"({"heartbeat_interval_s":30})";
    return n;
}

registration reg(const std::string& net, const node_key& key, bool approved = true) {
    registration r;
    r.network_id = net;
    r.public_key = key;
    r.hostname = "host";
    r.os = "linux";
    r.endpoints = {"192.0.2.1:51820"};
    r.approved = approved;
    r.policy_json = "{}";
    r.request_counter = 5;
    return r;
}

class StoreTest : public ::testing::TestWithParam<backend> {
protected:
    static void SetUpTestSuite() {
        auto server = test::pg_temp_server::start();
        if (server) {
            pg = std::move(*server).release();
        } else {
            pg_error = server.error_message();
        }
    }
    static void TearDownTestSuite() {
        delete pg;
        pg = nullptr;
    }

    void SetUp() override {
        if (GetParam() == backend::sqlite) {
            char tmpl[] = "/tmp/meshfwd-store.XXXXXX";
            ASSERT_NE(mkdtemp(tmpl), nullptr);
            dir = tmpl;
            url = "sqlite:" + dir + "/coord.db";
        } else {
            ASSERT_NE(pg, nullptr) << pg_error;
            static int counter = 0;
            auto u = pg->create_database("store_test_" + std::to_string(++counter));
            ASSERT_TRUE(u) << u.error_message();
            url = *u;
        }
        s = open();
        ASSERT_NE(s, nullptr);
    }
    void TearDown() override {
        s.reset();
        if (!dir.empty()) {
            std::filesystem::remove_all(dir);
        }
    }

    std::unique_ptr<store> open() {
        auto r = open_store(url);
        EXPECT_TRUE(r) << r.error_message();
        return r ? std::move(*r) : nullptr;
    }

    void make_network(const std::string& id, const std::string& cidr, store* on = nullptr) {
        auto r = (on ? on : s.get())->create_network(network(id, cidr));
        ASSERT_TRUE(r) << r.error_message();
    }

    peer_record must_register(const registration& r, register_status expect = register_status::created,
                              int64_t now = 5000) {
        auto out = s->register_peer(r, now);
        EXPECT_TRUE(out) << out.error_message();
        if (!out) {
            return {};
        }
        EXPECT_EQ(out->status, expect);
        return out->peer.value_or(peer_record{});
    }

    static inline test::pg_temp_server* pg = nullptr;
    static inline std::string pg_error;
    std::string dir;
    std::string url;
    std::unique_ptr<store> s;
};

TEST_P(StoreTest, NetworksCreateListGetDelete) {
    make_network("alpha", "10.100.0.0/16");
    make_network("beta", "10.101.0.0/24");
    auto dup = s->create_network(network("alpha", "10.102.0.0/16"));
    ASSERT_FALSE(dup);
    EXPECT_NE(dup.error_message().find("alpha"), std::string::npos) << dup.error_message();

    auto list = s->list_networks();
    ASSERT_TRUE(list) << list.error_message();
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[0].id, "alpha");
    EXPECT_EQ((*list)[1].cidr, "10.101.0.0/24");
    auto got = s->get_network("alpha");
    ASSERT_TRUE(got && got->has_value());
    EXPECT_EQ((*got)->invite_secret_key, std::vector<uint8_t>(64, 0x22));
    EXPECT_EQ((*got)->options_json, R"({"heartbeat_interval_s":30})");

    must_register(reg("alpha", key_of(1)));
    auto deleted = s->delete_network("alpha");
    ASSERT_TRUE(deleted);
    EXPECT_TRUE(*deleted);
    EXPECT_FALSE(*s->delete_network("alpha"));
    EXPECT_FALSE(s->get_network("alpha")->has_value());
    EXPECT_FALSE(s->get_peer("alpha", key_of(1))->has_value()); // peers go with their network
    EXPECT_EQ(s->register_peer(reg("alpha", key_of(1)), 1)->status, register_status::no_network);
}

TEST_P(StoreTest, SameKeySameAddressDistinctKeysDistinctAddresses) {
    make_network("n", "10.100.0.0/16");
    auto a = must_register(reg("n", key_of(1)));
    auto b = must_register(reg("n", key_of(2)));
    EXPECT_EQ(a.ipv4, ipv4("10.100.0.1")); // the lowest host, never the network address
    EXPECT_EQ(b.ipv4, ipv4("10.100.0.2"));
    ASSERT_EQ(a.peer_id.size(), 17u);
    EXPECT_EQ(a.peer_id.substr(0, 5), "peer-");
    EXPECT_EQ(a.peer_id.find_first_not_of("0123456789abcdef", 5), std::string::npos);
    EXPECT_NE(a.peer_id, b.peer_id);

    auto again = reg("n", key_of(1));
    again.hostname = "renamed";
    auto a2 = must_register(again, register_status::updated);
    EXPECT_EQ(a2.ipv4, a.ipv4);
    EXPECT_EQ(a2.peer_id, a.peer_id);
    EXPECT_EQ(a2.hostname, "renamed");

    auto by_id = s->get_peer_by_id(a.peer_id);
    ASSERT_TRUE(by_id && by_id->has_value());
    EXPECT_EQ((*by_id)->public_key, key_of(1));
    EXPECT_EQ((*by_id)->endpoints, std::vector<std::string>{"192.0.2.1:51820"});

    // A freed address is the lowest free one again.
    ASSERT_TRUE(*s->remove_peer("n", key_of(1)));
    EXPECT_FALSE(*s->remove_peer("n", key_of(1)));
    auto c = must_register(reg("n", key_of(3)));
    EXPECT_EQ(c.ipv4, ipv4("10.100.0.1"));
    auto d = must_register(reg("n", key_of(4)));
    EXPECT_EQ(d.ipv4, ipv4("10.100.0.3"));

    auto list = s->list_peers("n");
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 3u);
    EXPECT_EQ((*list)[0].ipv4, ipv4("10.100.0.1"));
    EXPECT_EQ((*list)[2].ipv4, ipv4("10.100.0.3"));
}

TEST_P(StoreTest, FullNetworkIsAStatusNotAnError) {
    make_network("small", "192.0.2.0/30");
    EXPECT_EQ(must_register(reg("small", key_of(1))).ipv4, ipv4("192.0.2.1"));
    EXPECT_EQ(must_register(reg("small", key_of(2))).ipv4, ipv4("192.0.2.2"));
    must_register(reg("small", key_of(3)), register_status::network_full);
    must_register(reg("small", key_of(1)), register_status::updated); // a known key still works

    make_network("p31", "198.51.100.6/31"); // both addresses of a /31 are hosts
    EXPECT_EQ(must_register(reg("p31", key_of(1))).ipv4, ipv4("198.51.100.6"));
    EXPECT_EQ(must_register(reg("p31", key_of(2))).ipv4, ipv4("198.51.100.7"));
    must_register(reg("p31", key_of(3)), register_status::network_full);

    make_network("p32", "203.0.113.9/32");
    EXPECT_EQ(must_register(reg("p32", key_of(1))).ipv4, ipv4("203.0.113.9"));
    must_register(reg("p32", key_of(2)), register_status::network_full);
}

// A token's network_config.subnet: new peers get addresses from that part of the network only,
// the subnet fills up on its own, and the rest of the network is unaffected.
TEST_P(StoreTest, SubnetRegistrationsStayInTheirSubnet) {
    make_network("n", "10.60.0.0/16");
    auto in_subnet = [&](int k) {
        auto r = reg("n", key_of(k));
        r.subnet = "10.60.7.0/30";
        return r;
    };
    EXPECT_EQ(must_register(reg("n", key_of(1))).ipv4, ipv4("10.60.0.1")); // no subnet: the lowest host
    EXPECT_EQ(must_register(in_subnet(2)).ipv4, ipv4("10.60.7.1"));
    EXPECT_EQ(must_register(in_subnet(3)).ipv4, ipv4("10.60.7.2"));
    must_register(in_subnet(4), register_status::network_full);  // .0 and .3 are the subnet's ends
    EXPECT_EQ(must_register(in_subnet(2), register_status::updated).ipv4, ipv4("10.60.7.1"));
    EXPECT_EQ(must_register(reg("n", key_of(5))).ipv4, ipv4("10.60.0.2")); // the network goes on below
    // A freed subnet address is handed out again, and only to the subnet.
    ASSERT_TRUE(*s->remove_peer("n", key_of(2)));
    EXPECT_EQ(must_register(in_subnet(6)).ipv4, ipv4("10.60.7.1"));
    // A subnet at the top of the network never gets the network's broadcast address.
    auto top = reg("n", key_of(7));
    top.subnet = "10.60.255.254/31";
    EXPECT_EQ(must_register(top).ipv4, ipv4("10.60.255.254"));
    top = reg("n", key_of(8));
    top.subnet = "10.60.255.254/31";
    must_register(top, register_status::network_full);
    // Outside the network: an error that says so.
    auto outside = reg("n", key_of(9));
    outside.subnet = "10.61.0.0/24";
    auto refused = s->register_peer(outside, 1);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error_message().find("not inside"), std::string::npos) << refused.error_message();
}

TEST_P(StoreTest, PendingPeersWaitForApproval) {
    make_network("n", "10.1.0.0/24");
    auto p = must_register(reg("n", key_of(7), false));
    EXPECT_FALSE(p.approved);
    auto again = must_register(reg("n", key_of(7), true), register_status::updated);
    EXPECT_FALSE(again.approved); // an existing peer keeps its approval state

    auto approved = s->approve_peer("n", key_of(7));
    ASSERT_TRUE(approved);
    EXPECT_TRUE(*approved);
    EXPECT_TRUE((*s->get_peer("n", key_of(7)))->approved);
    auto events = s->events_since("n", again.version, 10);
    ASSERT_TRUE(events) << events.error_message();
    ASSERT_EQ(events->events.size(), 1u);
    EXPECT_EQ(events->events[0].kind, event_kind::joined);
    EXPECT_FALSE(*s->approve_peer("n", key_of(8)));
}

TEST_P(StoreTest, HeartbeatsOnlineOfflineAndMarkOffline) {
    make_network("n", "10.1.0.0/24");
    must_register(reg("n", key_of(1)), register_status::created, 1000);
    must_register(reg("n", key_of(2)), register_status::created, 1000);
    EXPECT_TRUE((*s->get_peer("n", key_of(1)))->online);

    std::vector<heartbeat> beats(3);
    beats[0] = {"n", key_of(1), std::nullopt};
    beats[1] = {"n", key_of(9), std::nullopt};
    beats[2] = {"other", key_of(1), std::nullopt};
    auto st = s->record_heartbeats(beats, 50'000);
    ASSERT_TRUE(st) << st.error_message();
    EXPECT_EQ(*st, (std::vector{heartbeat_status::ok, heartbeat_status::unknown_peer, heartbeat_status::unknown_peer}));
    EXPECT_EQ((*s->get_peer("n", key_of(1)))->last_heartbeat_ms, 50'000);

    // Peer 2 last heard at 1000: offline once, and only once.
    auto off = s->mark_offline(10'000);
    ASSERT_TRUE(off) << off.error_message();
    ASSERT_EQ(off->size(), 1u);
    EXPECT_EQ((*off)[0].public_key, key_of(2));
    EXPECT_FALSE((*off)[0].online);
    EXPECT_TRUE(s->mark_offline(10'000)->empty());
    auto before = *s->current_version("n");
    auto ev = s->events_since("n", before - 1, 10);
    ASSERT_TRUE(ev);
    ASSERT_EQ(ev->events.size(), 1u);
    EXPECT_EQ(ev->events[0].kind, event_kind::offline);

    std::vector<heartbeat> back{{"n", key_of(2), std::vector<std::string>{"198.51.100.1:1"}}};
    EXPECT_EQ(*s->record_heartbeats(back, 60'000), std::vector{heartbeat_status::came_online});
    auto p2 = *s->get_peer("n", key_of(2));
    EXPECT_TRUE(p2->online);
    EXPECT_EQ(p2->endpoints, std::vector<std::string>{"198.51.100.1:1"});
    EXPECT_EQ(*s->record_heartbeats(back, 61'000), std::vector{heartbeat_status::ok});
    EXPECT_EQ(*s->current_version("n"), p2->version); // an unchanged heartbeat is no event

    // Two stores sweep concurrently: each stale peer is flipped by exactly one of them.
    for (uint32_t i = 10; i < 40; ++i) {
        must_register(reg("n", key_of(i)), register_status::created, 2000);
    }
    auto other = open();
    ASSERT_NE(other, nullptr);
    std::vector<peer_record> from_other;
    std::thread t([&] { from_other = other->mark_offline(30'000).value(); });
    auto mine = s->mark_offline(30'000);
    t.join();
    ASSERT_TRUE(mine) << mine.error_message();
    std::set<node_key> flipped;
    for (const auto& p : *mine) {
        flipped.insert(p.public_key);
    }
    for (const auto& p : from_other) {
        EXPECT_TRUE(flipped.insert(p.public_key).second) << "flipped twice";
    }
    EXPECT_EQ(flipped.size(), 30u);
}

TEST_P(StoreTest, RequestCounterOnlyAdvances) {
    make_network("n", "10.1.0.0/24");
    must_register(reg("n", key_of(1))); // stores counter 5
    EXPECT_FALSE(*s->advance_request_counter("n", key_of(1), 5));
    EXPECT_TRUE(*s->advance_request_counter("n", key_of(1), 6));
    EXPECT_FALSE(*s->advance_request_counter("n", key_of(1), 6)); // a replay
    EXPECT_TRUE(*s->advance_request_counter("n", key_of(1), 1'700'000'000'000'000'000));
    EXPECT_FALSE(*s->advance_request_counter("n", key_of(1), 100));
    EXPECT_FALSE(*s->advance_request_counter("n", key_of(2), 100)); // unknown peer
    EXPECT_FALSE(s->advance_request_counter("n", key_of(1), UINT64_MAX)); // out of range: an error
}

TEST_P(StoreTest, InvitesAreConsumedOnce) {
    make_network("n", "10.1.0.0/24");
    ASSERT_TRUE(s->record_invite("inv-1", "n", 99'000));
    EXPECT_FALSE(s->record_invite("inv-1", "n", 99'000));
    EXPECT_FALSE(s->record_invite("inv-2", "nope", 99'000));
    EXPECT_EQ(*s->consume_invite("inv-1", 1000), invite_status::consumed);
    auto other = open();
    EXPECT_EQ(*other->consume_invite("inv-1", 1001), invite_status::already_used);
    EXPECT_EQ(*s->consume_invite("inv-404", 1000), invite_status::unknown);
}

TEST_P(StoreTest, EventsSinceDedupSnapshotAndPrune) {
    make_network("n", "10.1.0.0/24");
    make_network("empty", "10.2.0.0/24");
    // A brand-new network with no peers: deltas from 0 (nothing), no snapshot.
    auto fresh = s->events_since("empty", 0, 100);
    ASSERT_TRUE(fresh) << fresh.error_message();
    EXPECT_FALSE(fresh->snapshot_needed);
    EXPECT_TRUE(fresh->events.empty());
    EXPECT_EQ(fresh->version, 0);
    EXPECT_FALSE(s->events_since("nope", 0, 10));

    auto a = must_register(reg("n", key_of(1)));
    int64_t after_a = a.version;
    EXPECT_EQ(*s->current_version("n"), after_a);
    // since 0 with peers: "I have nothing", so a snapshot.
    auto zero = *s->events_since("n", 0, 100);
    EXPECT_TRUE(zero.snapshot_needed);
    EXPECT_EQ(zero.version, after_a);

    must_register(reg("n", key_of(2)));
    auto ch = reg("n", key_of(2));
    ch.endpoints = {"203.0.113.5:9"};
    ASSERT_TRUE(*s->update_peer(ch));
    ASSERT_TRUE(*s->update_peer(ch)); // no change: no event
    must_register(reg("n", key_of(3)));
    ASSERT_TRUE(*s->remove_peer("n", key_of(3)));
    must_register(reg("empty", key_of(1))); // another network's events stay out

    auto batch = s->events_since("n", after_a, 100);
    ASSERT_TRUE(batch) << batch.error_message();
    EXPECT_FALSE(batch->snapshot_needed);
    ASSERT_EQ(batch->events.size(), 2u); // one per key: key 2 (changed), key 3 (left)
    EXPECT_EQ(batch->events[0].public_key, key_of(2));
    EXPECT_EQ(batch->events[0].kind, event_kind::changed);
    ASSERT_TRUE(batch->events[0].peer.has_value());
    EXPECT_EQ(batch->events[0].peer->endpoints, std::vector<std::string>{"203.0.113.5:9"});
    EXPECT_EQ(batch->events[1].public_key, key_of(3));
    EXPECT_EQ(batch->events[1].kind, event_kind::left);
    EXPECT_FALSE(batch->events[1].peer.has_value());
    EXPECT_LT(batch->events[0].version, batch->events[1].version);
    EXPECT_EQ(batch->version, *s->current_version("n"));
    EXPECT_TRUE(s->events_since("n", batch->version, 100)->events.empty());

    // A limit: the caller gets a prefix and the version to continue from.
    auto first = *s->events_since("n", after_a, 1);
    ASSERT_EQ(first.events.size(), 1u);
    EXPECT_EQ(first.version, first.events[0].version);
    auto rest = *s->events_since("n", first.version, 1);
    ASSERT_EQ(rest.events.size(), 1u);
    EXPECT_EQ(rest.events[0].public_key, key_of(3));

    // Pruning: a caller behind a dropped event needs a snapshot; one past it does not.
    int64_t left_version = batch->events[1].version;
    ASSERT_TRUE(s->prune_events(left_version));
    EXPECT_TRUE(s->events_since("n", after_a, 100)->snapshot_needed);
    EXPECT_TRUE(s->events_since("n", left_version - 1, 100)->snapshot_needed);
    auto caught_up = *s->events_since("n", left_version, 100);
    EXPECT_FALSE(caught_up.snapshot_needed);
    EXPECT_TRUE(caught_up.events.empty());
    // A version from the future (another database) also asks for a snapshot.
    EXPECT_TRUE(s->events_since("n", left_version + 1'000'000, 100)->snapshot_needed);
}

TEST_P(StoreTest, IdentityIsStoredOnceAndSharedByEveryStore) {
    server_identity first{std::vector<uint8_t>(32, 1), std::vector<uint8_t>(32, 2)};
    server_identity second{std::vector<uint8_t>(32, 3), std::vector<uint8_t>(32, 4)};
    auto a = s->load_or_store_identity(first);
    ASSERT_TRUE(a) << a.error_message();
    EXPECT_EQ(a->x25519_secret, first.x25519_secret);
    auto other = open();
    auto b = other->load_or_store_identity(second);
    ASSERT_TRUE(b) << b.error_message();
    EXPECT_EQ(b->x25519_secret, first.x25519_secret);
    EXPECT_EQ(b->x25519_public, first.x25519_public);
}

TEST_P(StoreTest, ChangeListenerFiresForOtherStoresChanges) {
    make_network("n", "10.1.0.0/24");
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::pair<std::string, int64_t>> seen;
    auto listener = [&](const std::string& network, int64_t version) {
        std::lock_guard lock(mutex);
        seen.emplace_back(network, version);
        cv.notify_all();
    };
    auto wait_for = [&](int64_t version) {
        std::unique_lock lock(mutex);
        return cv.wait_for(lock, std::chrono::seconds(1), [&] {
            for (const auto& [n, v] : seen) {
                if (n == "n" && v == version) {
                    return true;
                }
            }
            return false;
        });
    };
    if (GetParam() == backend::sqlite) {
        // SQLite: the writing store calls its listener inline, after the commit.
        s->set_change_listener(listener);
        auto p = must_register(reg("n", key_of(1)));
        EXPECT_TRUE(wait_for(p.version));
        s->set_change_listener(nullptr);
        return;
    }
    // PostgreSQL: a change through store B reaches store A's listener within a second.
    auto other = open();
    ASSERT_NE(other, nullptr);
    s->set_change_listener(listener);
    auto start = std::chrono::steady_clock::now();
    auto out = other->register_peer(reg("n", key_of(1)), 1);
    ASSERT_TRUE(out) << out.error_message();
    EXPECT_TRUE(wait_for(out->peer->version)) << "no notification within 1 s";
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
    // And a heartbeat that brings a peer online, from B again.
    ASSERT_EQ(other->mark_offline(2)->size(), 1u);
    std::vector<heartbeat> beat{{"n", key_of(1), std::nullopt}};
    ASSERT_TRUE(other->record_heartbeats(beat, 10));
    EXPECT_TRUE(wait_for(*other->current_version("n")));

    // Every connection of this database dropped (a PostgreSQL restart, a proxy's timeout): the
    // stores reconnect on their next call, the listener on its own, and catches up.
    {
        pqxx::connection admin(url);
        pqxx::nontransaction tx(admin);
        auto killed = tx.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE pid <> pg_backend_pid() AND datname = current_database()");
        EXPECT_GE(killed.size(), 3u); // store A, store B, A's listener
    }
    auto after = other->register_peer(reg("n", key_of(2)), 20);
    ASSERT_TRUE(after) << after.error_message();
    std::unique_lock lock(mutex);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] {
        for (const auto& [n, v] : seen) {
            if (n == "n" && v == after->peer->version) {
                return true;
            }
        }
        return false;
    })) << "the listener did not come back after its connection was dropped";
    lock.unlock();
    s->set_change_listener(nullptr);
}

TEST_P(StoreTest, ConcurrentRegistrationsGetDistinctAddresses) {
    make_network("big", "10.64.0.0/16");
    constexpr int threads = 8, per_thread = 125;
    std::vector<std::vector<uint32_t>> addresses(threads);
    std::vector<std::string> errors(threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            auto opened = open_store(url);
            if (!opened) {
                errors[t] = opened.error_message();
                return;
            }
            auto& mine = *opened;
            for (int i = 0; i < per_thread; ++i) {
                auto out = mine->register_peer(reg("big", key_of(uint32_t(i), uint8_t(t + 1))), 1000);
                if (!out || out->status != register_status::created) {
                    errors[t] = out ? "status " + std::to_string(int(out->status)) : out.error_message();
                    return;
                }
                addresses[t].push_back(out->peer->ipv4);
            }
        });
    }
    for (auto& th : pool) {
        th.join();
    }
    std::set<uint32_t> all;
    for (int t = 0; t < threads; ++t) {
        EXPECT_EQ(errors[t], "") << "thread " << t;
        all.insert(addresses[t].begin(), addresses[t].end());
    }
    EXPECT_EQ(all.size(), std::size_t(threads * per_thread));
    EXPECT_EQ(*all.begin(), ipv4("10.64.0.1"));
    EXPECT_EQ(*all.rbegin(), ipv4("10.64.0.1") + threads * per_thread - 1); // dense: the lowest free each time
    EXPECT_EQ(s->list_peers("big")->size(), std::size_t(threads * per_thread));
}

TEST_P(StoreTest, AcknowledgedRegistrationsSurviveSigkill) {
    make_network("n", "10.64.0.0/16");
    s.reset();
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        auto child = open_store(url);
        if (!child) {
            _exit(3);
        }
        for (uint32_t i = 0; i < 2000; ++i) {
            auto out = (*child)->register_peer(reg("n", key_of(i)), 1);
            if (!out || out->status != register_status::created) {
                _exit(4);
            }
            if (write(fds[1], &i, sizeof i) != sizeof i) { // the acknowledgement
                _exit(5);
            }
        }
        _exit(0);
    }
    close(fds[1]);
    std::vector<uint32_t> acked;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (acked.size() < 40 && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fds[0], POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0) {
            continue;
        }
        uint32_t i;
        if (read(fds[0], &i, sizeof i) != sizeof i) {
            break;
        }
        acked.push_back(i);
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child ended by itself, status " << status;
    uint32_t i;
    while (read(fds[0], &i, sizeof i) == sizeof i) { // acknowledged before the kill
        acked.push_back(i);
    }
    close(fds[0]);
    ASSERT_GE(acked.size(), 40u);

    s = open();
    ASSERT_NE(s, nullptr);
    for (uint32_t k : acked) {
        auto p = s->get_peer("n", key_of(k));
        ASSERT_TRUE(p) << p.error_message();
        EXPECT_TRUE(p->has_value()) << "acknowledged registration " << k << " lost";
    }
    // The store still works after the crash.
    must_register(reg("n", key_of(999'999)));
}

TEST_P(StoreTest, NewerSchemaIsRefused) {
    s.reset();
    if (GetParam() == backend::sqlite) {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open((dir + "/coord.db").c_str(), &db), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(db);
    } else {
        pqxx::connection c(url);
        pqxx::work tx(c);
        tx.exec("UPDATE schema_version SET version = 99");
        tx.commit();
    }
    auto r = open_store(url);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error_message().find("schema version 99 is newer"), std::string::npos) << r.error_message();
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values(backend::sqlite, backend::postgres),
                         [](const ::testing::TestParamInfo<backend>& p) { return p.param == backend::sqlite ? "sqlite" : "postgres"; });

TEST(OpenStore, ErrorsNameTheProblem) {
    auto unknown = open_store("mysql://x");
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error_message().find("unknown scheme 'mysql'"), std::string::npos) << unknown.error_message();
    auto empty = open_store("sqlite:");
    ASSERT_FALSE(empty);
    EXPECT_NE(empty.error_message().find("file path"), std::string::npos);
    auto bad_dir = open_store("sqlite:/nonexistent-dir/x.db");
    ASSERT_FALSE(bad_dir);
    EXPECT_NE(bad_dir.error_message().find("/nonexistent-dir/x.db"), std::string::npos) << bad_dir.error_message();
    auto no_server = open_store("postgresql://nobody@/db?host=/nonexistent-dir&port=1");
    ASSERT_FALSE(no_server);
    EXPECT_NE(no_server.error_message().find("cannot connect to PostgreSQL"), std::string::npos);

    // A file that is some other SQLite database is not taken over.
    char tmpl[] = "/tmp/meshfwd-store.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    std::string path = std::string{tmpl} + "/other.db";
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    auto other = open_store("sqlite:" + path);
    EXPECT_FALSE(other);
    std::filesystem::remove_all(tmpl);
}

} // namespace
} // namespace meshfwd::coord
