// start_coord_session for a build without meshcoord's wire formats (coord_wire, see
// control/meson.build): no session runs; the node says so once (log and `meshctl status`'s last
// error) and keeps running on the cache file's registration and peers, exactly as when every
// meshcoord replica is unreachable. Control thread.
#include "control/coord_client.h"

namespace meshfwd::control {

struct coord_session {};

void coord_session_deleter::operator()(coord_session* s) const noexcept { delete s; }

result<std::unique_ptr<coord_session, coord_session_deleter>> start_coord_session(coord_settings settings,
                                                                                  coord_client& sink) {
    coord_update u;
    u.state_changed = true;
    u.server = settings.servers.empty() ? std::string() : settings.servers.front().url();
    u.error = "this meshfwd was built without the meshcoord client (coord/ wire formats missing); "
              "running on the cache file's peers";
    sink.post(std::move(u));
    return std::unique_ptr<coord_session, coord_session_deleter>(new coord_session);
}

} // namespace meshfwd::control
