// start_coord_session for a build without meshcoord's wire formats (coord_wire): a node with
// mesh.discovery.server is refused at start with this message instead of running without the
// peers it was told to fetch. Control thread.
#include "control/coord_client.h"

namespace meshfwd::control {

struct coord_session {};

void coord_session_deleter::operator()(coord_session* s) const noexcept { delete s; }

result<std::unique_ptr<coord_session, coord_session_deleter>> start_coord_session(coord_settings, coord_client&) {
    return make_error("mesh.discovery.server: this meshfwd was built without the meshcoord client "
                      "(coord/ wire formats missing)");
}

} // namespace meshfwd::control
