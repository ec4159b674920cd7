// Packet pool set-up (worker set-up time only; see packet_pool.h).
#include "dataplane/packet_pool.h"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <stdexcept>

namespace meshfwd::dataplane {

void packet_pool::slab_free::operator()(uint8_t* p) const noexcept { std::free(p); }

packet_pool::packet_pool(uint32_t count, uint32_t view_count, uint32_t buffer_size)
    : _packets(std::size_t{count} + view_count), _size(count), _buffer_size(buffer_size), _free(count),
      _free_views(view_count) {
    if (buffer_size <= packet_headroom + packet_tailroom) {
        throw std::invalid_argument("packet_pool: buffers must be larger than headroom and tail room");
    }
    // aligned_alloc wants a multiple of the alignment (an odd count of 2 KiB buffers is not).
    const std::size_t bytes = (std::size_t{count} * buffer_size + 4095) / 4096 * 4096;
    auto* slab = static_cast<uint8_t*>(std::aligned_alloc(4096, std::max<std::size_t>(bytes, 4096)));
    if (slab == nullptr) {
        throw std::bad_alloc();
    }
    _slab.reset(slab);
    for (uint32_t i = 0; i < count; ++i) {
        _packets[i].index = i;
        _packets[i].base = slab + std::size_t{i} * buffer_size;
        _packets[i].buffer_size = buffer_size;
        _packets[i].reset();
        _free[i] = count - 1 - i;
    }
    _free_count = count;
    for (uint32_t i = 0; i < view_count; ++i) {
        _packets[count + i].index = count + i;
        _free_views[i] = view_count - 1 - i;
    }
    _free_view_count = view_count;
}

}  // namespace meshfwd::dataplane
