// RCU for snapshot publication: a thin layer over liburcu's QSBR flavour.
//
// Readers are the data-plane workers: each registers once (rcu_thread_registration), reads
// published snapshots with rcu_pointer::read() without locks or barriers, and calls
// rcu_quiescent() once per loop iteration, at a point where it holds no pointer obtained from
// read(). Everything between two quiescent states is the read-side section. A worker about to
// sleep calls rcu_thread_offline() (or holds an rcu_offline_scope) so it does not stall writers.
//
// The writer is the control thread: it builds a new immutable snapshot and calls
// rcu_pointer::publish(), which swaps it in and frees the old one after a grace period (every
// registered online thread has passed a quiescent state).
//
// Include this header rather than <urcu-qsbr.h>: that header maps short names such as
// rcu_thread_offline to liburcu's functions as macros, which would clash with these.
#pragma once

#include <atomic>
#include <memory>

#include <urcu/urcu-qsbr.h>
// Undo any short-name macros (rcu_thread_offline, synchronize_rcu, ...) that an earlier
// #include <urcu-qsbr.h> in the same translation unit may have defined.
#include <urcu/map/clear.h>

// ThreadSanitizer does not see liburcu's grace periods (its own fences and futexes, in an
// uninstrumented library), so without help it reports every object freed after a grace period
// as racing with the reader that used it before its quiescent state. Under TSan, a quiescent
// state is a release and the end of a grace period an acquire on one token: what the RCU
// guarantee means, in terms TSan can check. Nothing of this exists in other builds.
#if defined(__SANITIZE_THREAD__)
#define MESHFWD_TSAN_RCU 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MESHFWD_TSAN_RCU 1
#endif
#endif
#ifdef MESHFWD_TSAN_RCU
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace meshfwd {

namespace rcu_detail {
#ifdef MESHFWD_TSAN_RCU
inline char grace_period_token;
inline void reader_leaves_section() noexcept { __tsan_release(&grace_period_token); }
inline void grace_period_ended() noexcept { __tsan_acquire(&grace_period_token); }
#else
inline void reader_leaves_section() noexcept {}
inline void grace_period_ended() noexcept {}
#endif
} // namespace rcu_detail

/// Registers the calling thread as an RCU reader for its lifetime and marks it online; the
/// destructor unregisters it (must run on the same thread). Nesting on one thread is allowed:
/// only the outermost object registers. Calling thread only.
class rcu_thread_registration {
public:
    rcu_thread_registration();
    ~rcu_thread_registration();
    rcu_thread_registration(const rcu_thread_registration&) = delete;
    rcu_thread_registration& operator=(const rcu_thread_registration&) = delete;

    /// True when the calling thread is registered (by any rcu_thread_registration).
    static bool registered() noexcept;
};

/// Registered reader thread only: "I hold no pointer from rcu_pointer::read()". Cheap (a
/// load, a store and a fence); call once per loop iteration.
inline void rcu_quiescent() noexcept {
    rcu_detail::reader_leaves_section();
    urcu_qsbr_quiescent_state();
}

/// Registered reader thread only: stop taking part in grace periods (before blocking or
/// sleeping). Implies a quiescent state. Must not read() while offline.
inline void rcu_thread_offline() noexcept {
    rcu_detail::reader_leaves_section();
    urcu_qsbr_thread_offline();
}

/// Registered reader thread only: take part again after rcu_thread_offline().
inline void rcu_thread_online() noexcept { urcu_qsbr_thread_online(); }

/// Waits for a grace period: returns once every registered online thread has passed a
/// quiescent state since the call. Any thread. Called from a registered online thread it first
/// marks that thread offline (liburcu does so, so the thread does not wait for itself) and
/// online again on return: the call is a quiescent state for the caller, so pointers the caller
/// got from read() before the call must not be used after it.
void rcu_synchronize();

/// RAII rcu_thread_offline()/rcu_thread_online() around a blocking wait. Registered thread only.
class rcu_offline_scope {
public:
    rcu_offline_scope() noexcept { rcu_thread_offline(); }
    ~rcu_offline_scope() { rcu_thread_online(); }
    rcu_offline_scope(const rcu_offline_scope&) = delete;
    rcu_offline_scope& operator=(const rcu_offline_scope&) = delete;
};

/// A pointer to an immutable T, published by a writer and read lock-free by registered readers.
///
/// The pointer itself is a std::atomic<const T*>: release store on publish, acquire load on
/// read (the same ordering as rcu_assign_pointer/rcu_dereference, but in the C++ memory model,
/// so the compiler and ThreadSanitizer see it). liburcu supplies the grace periods.
template <typename T>
class rcu_pointer {
public:
    rcu_pointer() noexcept = default;
    explicit rcu_pointer(std::unique_ptr<const T> initial) noexcept : _ptr(initial.release()) {}
    rcu_pointer(const rcu_pointer&) = delete;
    rcu_pointer& operator=(const rcu_pointer&) = delete;

    /// Waits for a grace period, then frees the current object, so a reader that loaded it
    /// before the destructor ran is not left with a dangling pointer. Readers must no longer
    /// call read() on this rcu_pointer. Blocks like publish().
    ~rcu_pointer() {
        const T* last = _ptr.load(std::memory_order_relaxed);
        if (last != nullptr) {
            rcu_synchronize();
            delete last;
        }
    }

    /// Registered online reader thread, between quiescent states. The result (possibly null)
    /// stays valid until this thread's next rcu_quiescent(), rcu_thread_offline() or
    /// rcu_synchronize(); it must not be kept past that.
    const T* read() const noexcept { return _ptr.load(std::memory_order_acquire); }

    /// Writer (normally the one control thread; concurrent publishers are safe, each frees the
    /// object it replaced). Makes next visible to readers, then BLOCKS for a grace period (as
    /// long as the slowest online reader takes to reach a quiescent state) and deletes the
    /// previous object. Must not be called while the calling thread still uses a pointer it got
    /// from read(): the call is a quiescent state for the caller (see rcu_synchronize). Must not
    /// be called from a thread that other online readers wait on, or the grace period never ends.
    void publish(std::unique_ptr<const T> next) {
        const T* old = _ptr.exchange(next.release(), std::memory_order_acq_rel);
        if (old != nullptr) {
            rcu_synchronize();
            delete old;
        }
    }

private:
    std::atomic<const T*> _ptr{nullptr};
};

} // namespace meshfwd
