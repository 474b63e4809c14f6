// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The node's and the cluster's types on the wire (schema/node.capnp), both
/// ways: what the control socket and the cluster links write and read.
#pragma once

#include <string>
#include <vector>

#include "actors/cluster/node_entry.hpp"
#include "actors/node/node_status.hpp"
#include "actors/node/plugin_info.hpp"
#include "schema/node.capnp.h"

namespace joy {

void write_info(const plugin_info& x, wire::PluginInfo::Builder out);
plugin_info read_info(wire::PluginInfo::Reader in);

void write_status(const node_status& x, wire::NodeStatus::Builder out);

void write_entry(const node_entry& x, wire::NodeEntry::Builder out);
node_entry read_entry(wire::NodeEntry::Reader in);

void write_services(const std::vector<service_entry>& xs,
                    capnp::List<wire::ServiceEntry>::Builder out);
std::vector<service_entry>
read_services(capnp::List<wire::ServiceEntry>::Reader in);

std::vector<std::string> read_texts(capnp::List<capnp::Text>::Reader in);

} // namespace joy
