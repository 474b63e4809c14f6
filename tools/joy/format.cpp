// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "tools/joy/format.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

namespace joy::cli {

namespace {

std::string iso(int64_t ns) {
  return ns == 0 ? std::string{} : format_iso8601(timestamp{ns});
}

std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i)
        widths.push_back(0);
      widths[i] = std::max(widths[i], row[i].size());
    }
  std::string out;
  for (auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line + "\n";
  }
  return out;
}

} // namespace

json plugin_json(wire::PluginInfo::Reader x) {
  json out = json::object();
  out["name"] = x.getName().cStr();
  out["version"] = x.getVersion().cStr();
  out["type"] = x.getType().cStr();
  out["state"] = x.getState().cStr();
  out["pid"] = x.getPid();
  out["source"] = x.getSource().cStr();
  out["sha256"] = x.getSha256().cStr();
  out["path"] = x.getPath().cStr();
  out["installed_at"] = iso(x.getInstalledAt());
  out["updated_at"] = iso(x.getUpdatedAt());
  out["last_error"] = x.getLastError().cStr();
  out["calls"] = x.getCalls();
  out["errors"] = x.getErrors();
  out["p50_ms"] = static_cast<double>(x.getP50Us()) / 1000.0;
  out["memory_bytes"] = x.getMemoryBytes();
  auto manifest = parse_json(x.getManifest().cStr());
  out["manifest"] = manifest ? *manifest : json::object();
  return out;
}

json status_json(wire::NodeStatus::Reader x) {
  json out = json::object();
  out["node_id"] = x.getNodeId().cStr();
  out["version"] = x.getVersion().cStr();
  out["head"] = x.getHead();
  out["address"] = x.getAddress().cStr();
  out["home"] = x.getHome().cStr();
  out["pid"] = x.getPid();
  out["started_at"] = iso(x.getStartedAt());
  out["uptime_ms"] = x.getUptimeMs();
  auto res = x.getResources();
  out["resources"] = json{{"cpus", res.getCpus()},
                          {"memory_bytes", res.getMemoryBytes()},
                          {"gpus", res.getGpus()}};
  out["sandbox"] = x.getSandbox().cStr();
  out["state"] = x.getState().size() > 0 ? x.getState().cStr() : "up";
  out["listen"] = x.getListen().cStr();
  out["tls"] = x.getTls();
  out["bridge"] = x.getBridge().cStr();
  if (x.hasHeadLink()) {
    auto head = x.getHeadLink();
    out["head_link"] = json{{"address", head.getAddress().cStr()},
                            {"joined", head.getJoined()},
                            {"error", head.getError().cStr()}};
  }
  json gpus = json::array();
  for (auto d : x.getGpuDevices())
    gpus.push_back(json{{"index", d.getIndex()},
                        {"name", d.getName().cStr()},
                        {"memory_bytes", d.getMemoryBytes()},
                        {"compute_capability", d.getComputeCapability().cStr()},
                        {"holder", d.getHolder().cStr()}});
  out["gpu_devices"] = std::move(gpus);
  json plugins = json::array();
  for (auto p : x.getPlugins())
    plugins.push_back(plugin_json(p));
  out["plugins"] = std::move(plugins);
  json services = json::array();
  for (auto s : x.getServices())
    services.push_back(s.cStr());
  out["services"] = std::move(services);
  return out;
}

std::string plugins_table(capnp::List<wire::PluginInfo>::Reader xs) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"NAME", "VERSION", "TYPE", "STATE", "SOURCE", "SHA256"});
  for (auto p : xs) {
    std::string sha = p.getSha256().cStr();
    rows.push_back({p.getName().cStr(), p.getVersion().cStr(),
                    p.getType().cStr(), p.getState().cStr(),
                    p.getSource().cStr(),
                    sha.substr(0, std::min<std::size_t>(12, sha.size()))});
  }
  return table(rows);
}

std::string status_text(wire::NodeStatus::Reader x) {
  auto res = x.getResources();
  std::string out;
  auto line = [&](const std::string& key, const std::string& val) {
    out += key + std::string(key.size() < 11 ? 11 - key.size() : 1, ' ') + val
           + "\n";
  };
  line("node",
       std::string{x.getNodeId().cStr()} + (x.getHead() ? "  (head)" : ""));
  std::string state = x.getState().cStr();
  if (!state.empty() && state != "up") {
    // What the directory remembers of a node that does not answer.
    line("state", state == "down" ? "DOWN" : "UNREACHABLE");
    line("version", x.getVersion().cStr());
    line("listen", x.getListen().cStr());
    return out;
  }
  line("version", x.getVersion().cStr());
  if (x.hasHeadLink()) {
    auto link = x.getHeadLink();
    std::string head = link.getAddress().cStr();
    if (link.getJoined())
      head += "  joined";
    else
      head += "  NOT JOINED"
              + (link.getError().size() > 0
                   ? ": " + std::string{link.getError().cStr()}
                   : std::string{" yet"})
              + " (it keeps trying)";
    line("head", head);
  }
  if (x.getListen().size() > 0)
    line("listen", std::string{x.getListen().cStr()}
                     + (x.getTls() ? "  (mutual TLS)" : "  (plaintext)"));
  if (x.getBridge().size() > 0)
    line("bridge", std::string{x.getBridge().cStr()} + "  (browser core)");
  line("address", x.getAddress().cStr());
  line("home", x.getHome().cStr());
  line("pid", std::to_string(x.getPid()));
  line("uptime", format_duration_ms(x.getUptimeMs()));
  line("resources", std::to_string(res.getCpus()) + " cpus, "
                      + format_bytes(res.getMemoryBytes()) + " memory, "
                      + std::to_string(res.getGpus()) + " gpus");
  for (auto d : x.getGpuDevices()) {
    std::string text = d.getName().cStr();
    if (d.getMemoryBytes() > 0)
      text += ", " + format_bytes(d.getMemoryBytes());
    if (d.getComputeCapability().size() > 0)
      text += ", compute " + std::string{d.getComputeCapability().cStr()};
    text += d.getHolder().size() > 0
              ? "  (used by " + std::string{d.getHolder().cStr()} + ")"
              : "  (free)";
    line("gpu " + std::to_string(d.getIndex()), text);
  }
  std::string sandbox = x.getSandbox().cStr();
  line("sandbox", sandbox == "none"
                    ? "NONE: plugins run unsandboxed, with this node's rights"
                    : sandbox);
  line("plugins", std::to_string(x.getPlugins().size()));
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> details;
  for (auto p : x.getPlugins()) {
    std::vector<std::string> row{"  " + std::string{p.getName().cStr()},
                                 p.getVersion().cStr(), p.getType().cStr(),
                                 p.getState().cStr()};
    row.push_back(p.getPid() > 0 ? "pid " + std::to_string(p.getPid()) : "");
    row.push_back(std::to_string(p.getCalls()) + " calls");
    // Every column in every row, empty where there is nothing, so that
    // the columns line up.
    char p50[32] = "";
    if (p.getCalls() > 0)
      std::snprintf(p50, sizeof(p50), "p50 %.2f ms",
                    static_cast<double>(p.getP50Us()) / 1000.0);
    row.push_back(p50);
    row.push_back(p.getMemoryBytes() > 0 ? format_bytes(p.getMemoryBytes())
                                         : "");
    // The reason on the row; a failed plugin's last log lines under it
    // (`joy status --json` has them too).
    std::string err = p.getLastError().cStr();
    auto nl = err.find('\n');
    bool failed = std::string{p.getState().cStr()} == "failed";
    details.push_back(failed && nl != std::string::npos ? err.substr(nl + 1)
                                                        : "");
    err = err.substr(0, nl);
    if (!err.empty())
      row.push_back(
        std::string{p.getState().cStr()} == "running" ? "last: " + err : err);
    rows.push_back(std::move(row));
  }
  // The table's rows, each followed by its details, indented further.
  std::istringstream lines{table(rows)};
  std::size_t i = 0;
  for (std::string row; std::getline(lines, row); ++i) {
    out += row + "\n";
    std::istringstream more{i < details.size() ? details[i] : ""};
    for (std::string detail; std::getline(more, detail);)
      out += "    " + detail + "\n";
  }
  std::string services;
  for (auto s : x.getServices())
    services += (services.empty() ? "" : ", ") + std::string{s.cStr()};
  line("services", services.empty() ? "-" : services);
  return out;
}

std::string format_duration_ms(uint64_t ms) {
  auto s = ms / 1000;
  auto d = s / 86400;
  auto h = s / 3600 % 24;
  auto m = s / 60 % 60;
  s %= 60;
  std::string out;
  if (d > 0)
    out += std::to_string(d) + "d ";
  if (d > 0 || h > 0)
    out += std::to_string(h) + "h ";
  if (d > 0 || h > 0 || m > 0)
    out += std::to_string(m) + "m ";
  out += std::to_string(s) + "s";
  return out;
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x = static_cast<double>(bytes);
  int u = 0;
  while (x >= 1024 && u < 4) {
    x /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", x, units[u]);
  return buf;
}

std::string printable(std::string_view text, std::size_t max) {
  std::string out;
  auto n = std::min(text.size(), max);
  out.reserve(n);
  auto escape = [&out](unsigned char c) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "\\x%02x", c);
    out += hex;
  };
  for (std::size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    auto next = i + 1 < n ? static_cast<unsigned char>(text[i + 1]) : 0;
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      escape(c);
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
      // U+0080-U+009F, the C1 controls (U+009B is a CSI to xterm).
      escape(c);
      escape(next);
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > max)
    out += "... (" + std::to_string(text.size() - max) + " more bytes)";
  return out;
}

} // namespace joy::cli
