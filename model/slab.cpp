#include "model/slab.h"

#include <fmt/format.h>

#include "sim/assert.h"

namespace bpftsim::model {

const char* obj_kind_name(ObjKind kind) {
  switch (kind) {
    case ObjKind::kMap:
      return "bpf_map";
    case ObjKind::kProg:
      return "bpf_prog";
    case ObjKind::kBpfHrtimer:
      return "bpf_hrtimer";
    case ObjKind::kHtabElem:
      return "htab_elem";
    case ObjKind::kLink:
      return "bpf_link";
  }
  return "?";
}

namespace {
ObjEvent event_at(const sim::Simulator& sim, const sim::Context* ctx, std::string what) {
  return ObjEvent{sim.now(), ctx ? ctx->cpu() : -1, ctx ? ctx->id() : 0u, std::move(what)};
}
}  // namespace

void Slab::add_event(KObject& o, const sim::Context* ctx, std::string what) {
  if (o.history.size() == kHistoryKept) {
    o.history.erase(o.history.begin() + 1);
    ++o.dropped;
  }
  o.history.push_back(event_at(sim_, ctx, std::move(what)));
}

ObjId Slab::alloc(const sim::Context* ctx, ObjKind kind, std::string name, ObjId owner) {
  const ObjId id = next_++;
  KObject o{id, kind, std::move(name), false, {}, owner, 0};
  o.history.push_back(event_at(sim_, ctx, "alloc"));
  sim_.emit(ctx, "kmalloc", {{"obj", id}, {"kind", obj_kind_name(kind)}, {"name", o.name}});
  objects_.push_back(std::move(o));
  ++live_;
  return id;
}

bool Slab::free(const sim::Context* ctx, ObjId id, const char* where) {
  KObject* it = slot(id);
  SIM_ASSERT(it != nullptr, "kfree of unknown object {}", id);
  KObject& o = *it;
  if (o.freed) {
    sim_.report(finding_about(sim::FindingKind::kDoubleFree, ctx, id, where,
                              fmt::format("{} frees {}#{} ({}) a second time", where,
                                          obj_kind_name(o.kind), id, o.name)),
                false);
    return false;
  }
  o.freed = true;
  add_event(o, ctx, fmt::format("free by {}", where));
  sim_.emit(ctx, "kfree", {{"obj", id}, {"kind", obj_kind_name(o.kind)}, {"by", where}});
  --live_;
  return true;
}

bool Slab::access(const sim::Context* ctx, ObjId id, const char* where) {
  KObject* it = slot(id);
  SIM_ASSERT(it != nullptr, "access to unknown object {}", id);
  if (!it->freed) return true;
  ++uaf_;
  const KObject& o = *it;
  sim_.report(finding_about(sim::FindingKind::kUseAfterFree, ctx, id, where,
                            fmt::format("{} touches freed {}#{} ({})", where, obj_kind_name(o.kind),
                                        id, o.name)),
              false);
  return false;
}

void Slab::note(const sim::Context* ctx, ObjId id, std::string what) {
  KObject* it = slot(id);
  SIM_ASSERT(it != nullptr, "note on unknown object {}", id);
  add_event(*it, ctx, std::move(what));
}

const KObject* Slab::find(ObjId id) const {
  return id != 0 && id <= objects_.size() ? &objects_[static_cast<std::size_t>(id - 1)] : nullptr;
}

bool Slab::live(ObjId id) const {
  const KObject* o = find(id);
  return o && !o->freed;
}

std::vector<ObjId> Slab::live_objects() const {
  std::vector<ObjId> out;
  for (const KObject& o : objects_)
    if (!o.freed) out.push_back(o.id);
  return out;
}

sim::Finding Slab::finding_about(sim::FindingKind kind, const sim::Context* ctx, ObjId id,
                                 const char* site, std::string message) const {
  sim::Finding f{.kind = kind,
                 .message = std::move(message),
                 .cpu = ctx ? ctx->cpu() : -1,
                 .details = {history_text(id)},
                 .site = site};
  if (const KObject* o = find(id)) {
    f.object = fmt::format("{}#{}", obj_kind_name(o->kind), id);
    for (std::size_t i = 0; i < o->history.size(); ++i) {
      if (i == 1 && o->dropped)
        f.history.push_back(fmt::format("... {} earlier events", o->dropped));
      f.history.push_back(o->history[i].what);
    }
  }
  return f;
}

std::string Slab::history_text(ObjId id) const {
  const KObject* o = find(id);
  if (!o) return "unknown object";
  std::string s = fmt::format("{}#{} ({}) history:", obj_kind_name(o->kind), id, o->name);
  for (std::size_t i = 0; i < o->history.size(); ++i) {
    if (i == 1 && o->dropped) s += fmt::format(" [... {} earlier events]", o->dropped);
    const ObjEvent& e = o->history[i];
    s += fmt::format(" [t={} cpu={} ctx={}: {}]", e.t_ns, e.cpu, e.ctx, e.what);
  }
  return s;
}

void Slab::report_leaks(const std::set<ObjId>& reachable) {
  for (const KObject& o : objects_) {
    const ObjId id = o.id;
    if (o.freed || reachable.count(id)) continue;
    sim_.report(finding_about(sim::FindingKind::kLeak, nullptr, id, "quiescence",
                              fmt::format("{}#{} ({}) is allocated but unreachable at quiescence",
                                          obj_kind_name(o.kind), id, o.name)),
                false);
  }
}

}  // namespace bpftsim::model
