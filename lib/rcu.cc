// RCU thread registration and grace periods over liburcu QSBR (see rcu.h).
#include "lib/rcu.h"

namespace meshfwd {

namespace {

// liburcu must not see the same thread registered twice (it asserts in debug builds and
// corrupts its registry otherwise), so nested registrations only count.
thread_local unsigned registration_depth = 0;

} // namespace

rcu_thread_registration::rcu_thread_registration() {
    if (registration_depth++ == 0) {
        urcu_qsbr_register_thread();
    }
}

rcu_thread_registration::~rcu_thread_registration() {
    if (--registration_depth == 0) {
        // Unregistering also marks the thread offline, so a waiting writer is not stalled.
        rcu_detail::reader_leaves_section();
        urcu_qsbr_unregister_thread();
    }
}

bool rcu_thread_registration::registered() noexcept { return registration_depth != 0; }

void rcu_synchronize() {
    rcu_detail::reader_leaves_section();  // the caller's own quiescent state (see rcu.h)
    urcu_qsbr_synchronize_rcu();
    rcu_detail::grace_period_ended();
}

} // namespace meshfwd
