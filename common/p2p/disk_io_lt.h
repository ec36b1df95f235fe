// Internal to common/p2p: the libtorrent disk_interface constructor for range storage.
#pragma once

#include <libtorrent/disk_interface.hpp>
#include <libtorrent/io_context.hpp>
#include <libtorrent/performance_counters.hpp>
#include <libtorrent/settings_pack.hpp>

#include <memory>

namespace layerswarm::p2p {

std::unique_ptr<lt::disk_interface> range_disk_io_constructor(lt::io_context& ios,
                                                              lt::settings_interface const& sett,
                                                              lt::counters& cnt);

}  // namespace layerswarm::p2p
