#include "model/helpers.h"

#include <cstring>

#include "model/kernel.h"

namespace bpftsim::model::helpers {

namespace {
void trace_ret(ProgRun& r, const char* name, std::int64_t ret) {
  r.ctx.trace("bpf_helper", {{"prog", r.prog.id}, {"helper", name}, {"ret", ret}});
}
}  // namespace

std::vector<std::uint8_t> u32_key(std::uint32_t k) {
  std::vector<std::uint8_t> v(4);
  std::memcpy(v.data(), &k, 4);
  return v;
}

std::uint64_t timer_of(const BpfMap& map, std::uint64_t value_addr) {
  return value_addr + static_cast<std::uint64_t>(map.def.timer_off);
}

sim::Co<std::uint64_t> map_lookup(ProgRun& r, BpfMap& map, const std::vector<std::uint8_t>& key) {
  co_await r.ctx.step(r.k.cost.helper_ns);
  const std::uint64_t v = co_await map.lookup_elem(r.ctx, key.data());
  trace_ret(r, "bpf_map_lookup_elem", static_cast<std::int64_t>(v));
  co_return v;
}

sim::Co<std::int64_t> map_update(ProgRun& r, BpfMap& map, const std::vector<std::uint8_t>& key,
                                 const std::vector<std::uint8_t>& value, std::uint64_t flags) {
  co_await r.ctx.step(r.k.cost.helper_ns);
  const std::int64_t ret = co_await map.update_elem(r.ctx, key.data(), value.data(), flags);
  trace_ret(r, "bpf_map_update_elem", ret);
  co_return ret;
}

sim::Co<std::int64_t> map_delete(ProgRun& r, BpfMap& map, const std::vector<std::uint8_t>& key) {
  co_await r.ctx.step(r.k.cost.helper_ns);
  const std::int64_t ret = co_await map.delete_elem(r.ctx, key.data());
  trace_ret(r, "bpf_map_delete_elem", ret);
  co_return ret;
}

sim::Co<std::int64_t> timer_init(ProgRun& r, std::uint64_t timer, BpfMap& map,
                                 std::uint64_t flags) {
  const std::int64_t ret = co_await r.k.timers.init(r.ctx, timer, map.handle_addr, flags);
  trace_ret(r, "bpf_timer_init", ret);
  co_return ret;
}

sim::Co<std::int64_t> timer_set_callback(ProgRun& r, std::uint64_t timer, std::uint64_t callback) {
  const std::int64_t ret = co_await r.k.timers.set_callback(r.ctx, timer, callback, r.prog);
  trace_ret(r, "bpf_timer_set_callback", ret);
  co_return ret;
}

sim::Co<std::int64_t> timer_start(ProgRun& r, std::uint64_t timer, std::uint64_t nsecs,
                                  std::uint64_t flags) {
  const std::int64_t ret = co_await r.k.timers.start(r.ctx, timer, nsecs, flags);
  trace_ret(r, "bpf_timer_start", ret);
  co_return ret;
}

sim::Co<std::int64_t> timer_cancel(ProgRun& r, std::uint64_t timer) {
  const std::int64_t ret = co_await r.k.timers.cancel(r.ctx, timer);
  trace_ret(r, "bpf_timer_cancel", ret);
  co_return ret;
}

}  // namespace bpftsim::model::helpers
