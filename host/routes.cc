#include "host/routes.h"

#include <atomic>

#include <rte_errno.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_memory.h>

namespace meridian::host {
namespace {

std::atomic<unsigned> g_tables{0};  // LPM names are unique per process

uint32_t ipv4_host_order(const IpAddress& ip) {
  return uint32_t{ip.bytes[0]} << 24 | uint32_t{ip.bytes[1]} << 16 | uint32_t{ip.bytes[2]} << 8 | ip.bytes[3];
}

}  // namespace

RouteTable::~RouteTable() {
  if (lpm4_) rte_lpm_free(lpm4_);
  if (lpm6_) rte_lpm6_free(lpm6_);
}

std::shared_ptr<RouteTable> RouteTable::build(std::vector<ConnectedPrefix> connected,
                                              const std::vector<StaticRoute>& statics, std::string& error) {
  std::shared_ptr<RouteTable> r(new RouteTable());
  r->connected_ = std::move(connected);
  const unsigned id = g_tables.fetch_add(1);
  const auto rules = static_cast<uint32_t>(statics.size() + r->connected_.size() + 16);
  bool any4 = false, any6 = false;
  for (const auto& c : r->connected_) {
    any4 = any4 || c.prefix.address.is_v4();
    any6 = any6 || !c.prefix.address.is_v4();
  }
  if (any4) {
    rte_lpm_config c4{};
    c4.max_rules = rules;
    c4.number_tbl8s = 256;
    r->lpm4_ = rte_lpm_create(("mrd_lpm4_" + std::to_string(id)).c_str(), SOCKET_ID_ANY, &c4);
  }
  if (any6) {
    rte_lpm6_config c6{};
    c6.max_rules = rules;
    c6.number_tbl8s = 1024;
    r->lpm6_ = rte_lpm6_create(("mrd_lpm6_" + std::to_string(id)).c_str(), SOCKET_ID_ANY, &c6);
  }
  if ((any4 && !r->lpm4_) || (any6 && !r->lpm6_)) {
    error = std::string("cannot create the routing table: ") + rte_strerror(rte_errno);
    return nullptr;
  }
  auto add = [&](const IpPrefix& p, Hop hop) {
    const auto index = static_cast<uint32_t>(r->hops_.size());
    r->hops_.push_back(hop);
    const IpPrefix net = p.network();
    if (net.address.is_v4() ? !r->lpm4_ : !r->lpm6_) return;  // no address of that family: unreachable anyway
    if (net.length == 0) {  // the LPM takes depths from 1: a default route is kept beside it
      (net.address.is_v4() ? r->default4_ : r->default6_) = index;
      return;
    }
    const int rc = net.address.is_v4() ? rte_lpm_add(r->lpm4_, ipv4_host_order(net.address), net.length, index)
                                       : rte_lpm6_add(r->lpm6_, net.address.bytes.data(), net.length, index);
    if (rc < 0 && error.empty()) error = "cannot add route " + to_string(p) + ": " + rte_strerror(-rc);
  };
  for (const auto& s : statics) add(s.prefix, {false, s.gateway, {}});
  // Connected prefixes last: an equal static prefix must not override on-link reachability.
  for (const auto& c : r->connected_) add(c.prefix, {true, {}, c.port});
  if (!error.empty()) return nullptr;
  return r;
}

bool RouteTable::on_link(const IpAddress& ip) const {
  for (const auto& c : connected_) {
    if (c.prefix.contains(ip)) return true;  // same family only
  }
  return false;
}

const RouteTable::Hop* RouteTable::match(const IpAddress& ip) const {
  uint32_t index = 0;
  if (ip.is_v4() ? !lpm4_ : !lpm6_) return nullptr;
  const int rc = ip.is_v4() ? rte_lpm_lookup(lpm4_, ipv4_host_order(ip), &index)
                            : rte_lpm6_lookup(lpm6_, ip.bytes.data(), &index);
  if (rc != 0) index = ip.is_v4() ? default4_ : default6_;
  return index < hops_.size() ? &hops_[index] : nullptr;
}

std::optional<RouteTable::NextHop> RouteTable::lookup(const IpAddress& destination) const {
  const Hop* hop = match(destination);
  if (!hop) return std::nullopt;
  if (hop->direct) return NextHop{destination, hop->port};
  // The gateway's own port: the narrowest connected prefix holding it.
  const ConnectedPrefix* via = nullptr;
  for (const auto& c : connected_) {
    if (c.prefix.contains(hop->gateway) && (!via || c.prefix.length > via->prefix.length)) via = &c;
  }
  if (!via) return std::nullopt;  // not on-link
  return NextHop{hop->gateway, via->port};
}

}  // namespace meridian::host
