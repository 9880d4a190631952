#include "model/slab.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

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

std::uint32_t Slab::store_name(std::string_view name, const std::uint32_t* prefix) {
  const std::size_t head = prefix ? 5 : 0;
  const std::size_t need = head + name.size() + (name.size() < 0xfe ? 1 : 5);
  if (name_used_ + need > std::min(name_cap_, kNameChunk)) {
    SIM_ASSERT(name_chunks_.size() < 0x10000, "more than 4 GiB of object names");
    const std::size_t grown =
        name_cap_ == 0 ? kFirstNameChunk : std::min(name_cap_ * 2, kNameChunk);
    name_cap_ = std::max(need, grown);
    name_chunks_.push_back(std::make_unique_for_overwrite<char[]>(name_cap_));
    name_used_ = 0;
  }
  char* p = name_chunks_.back().get() + name_used_;
  const auto ref = static_cast<std::uint32_t>(((name_chunks_.size() - 1) << 16) | name_used_);
  if (prefix) {
    *p++ = static_cast<char>(0xfe);
    std::memcpy(p, prefix, 4);
    p += 4;
  }
  if (name.size() < 0xfe) {
    *p++ = static_cast<char>(name.size());
  } else {
    *p++ = static_cast<char>(0xff);
    const auto n = static_cast<std::uint32_t>(name.size());
    std::memcpy(p, &n, 4);
    p += 4;
  }
  std::memcpy(p, name.data(), name.size());
  name_used_ += need;
  return ref;
}

std::string Slab::stored_name(std::uint32_t ref) const {
  const char* p = name_chunks_[ref >> 16].get() + (ref & 0xffff);
  std::string out;
  if (static_cast<unsigned char>(*p) == 0xfe) {
    std::uint32_t prefix;
    std::memcpy(&prefix, p + 1, 4);
    out = stored_name(prefix);
    p += 5;
  }
  std::uint32_t n = static_cast<unsigned char>(*p++);
  if (n == 0xff) {
    std::memcpy(&n, p, 4);
    p += 4;
  }
  out.append(p, n);
  return out;
}

std::uint32_t Slab::add_prefix(std::string_view prefix) {
  return store_name(prefix);
}

const KObject& Slab::known(ObjId id, const char* what) const {
  const KObject* o = find(id);
  SIM_ASSERT(o != nullptr, "{} of unknown object {}", what, id);
  return *o;
}

void Slab::add_event(KObject& o, const sim::Context* ctx, const char* format, const char* str,
                     std::int64_t a, std::int64_t b, std::uint32_t text_ref) {
  if (o.later == 0) {
    later_.emplace_back();
    // A map or prog notes each reference change: room for a few at once. Any other object
    // (a timer, a hash element: a million of them, maybe) usually notes only its free.
    if (o.kind == ObjKind::kMap || o.kind == ObjKind::kProg) later_.back().events.reserve(8);
    o.later = static_cast<std::uint32_t>(later_.size());
  }
  Later& l = later_[o.later - 1];
  const Note e{sim_.now(), ctx ? ctx->cpu() : -1, ctx ? ctx->id() : 0u, format, str, a, b,
               text_ref};
  if (l.events.size() < kHistoryKept - 1) {
    l.events.push_back(e);
    return;
  }
  l.events[l.head] = e;
  l.head = static_cast<std::uint32_t>((l.head + 1) % l.events.size());
  ++l.dropped;
}

ObjId Slab::alloc(const sim::Context* ctx, ObjKind kind, std::string_view name, ObjId owner) {
  return add_object(ctx, kind, store_name(name), name, owner);
}

ObjId Slab::alloc_named(const sim::Context* ctx, ObjKind kind, std::uint32_t prefix,
                        std::string_view rest, ObjId owner) {
  const std::string name = stored_name(prefix).append(rest);
  return add_object(ctx, kind, store_name(rest, &prefix), name, owner);
}

ObjId Slab::add_object(const sim::Context* ctx, ObjKind kind, std::uint32_t name_ref,
                       std::string_view name, ObjId owner) {
  const ObjId id = next_++;
  SIM_ASSERT(!ctx || (ctx->cpu() >= -1 && ctx->cpu() <= INT16_MAX), "object on cpu {}", ctx->cpu());
  KObject o;
  o.alloc_ns = sim_.now();
  o.alloc_ctx = ctx ? ctx->id() : 0u;
  o.alloc_cpu = static_cast<std::int16_t>(ctx ? ctx->cpu() : -1);
  o.kind = kind;
  o.name_ref = name_ref;
  sim_.emit(ctx, "kmalloc", {{"obj", id}, {"kind", obj_kind_name(kind)}, {"name", name}});
  objects_.push_back(o);
  if (owner != 0) owners_.emplace_back(id, owner);
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
                                          obj_kind_name(o.kind), id, name(id))),
                false);
    return false;
  }
  o.freed = true;
  add_event(o, ctx, "free by {}", where, 0, 0, 0);
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
                                        id, name(id))),
              false);
  return false;
}

void Slab::note(const sim::Context* ctx, ObjId id, NoteFormat format, std::int64_t a,
                std::int64_t b) {
  KObject* it = slot(id);
  SIM_ASSERT(it != nullptr, "note on unknown object {}", id);
  add_event(*it, ctx, format.text, nullptr, a, b, 0);
}

void Slab::note(const sim::Context* ctx, ObjId id, std::string_view text) {
  KObject* it = slot(id);
  SIM_ASSERT(it != nullptr, "note on unknown object {}", id);
  add_event(*it, ctx, nullptr, nullptr, 0, 0, store_name(text));
}

ObjEvent Slab::render(const Note& n) const {
  ObjEvent e{n.t_ns, n.cpu, n.ctx, {}};
  if (n.format == nullptr) {
    e.what = stored_name(n.text_ref);
  } else if (n.s != nullptr) {
    e.what = fmt::format(fmt::runtime(n.format), n.s);
  } else {
    e.what = fmt::format(fmt::runtime(n.format), n.a, n.b);
  }
  return e;
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
  ObjId id = 1;
  for (const KObject& o : objects_) {
    if (!o.freed) out.push_back(id);
    ++id;
  }
  return out;
}

std::string Slab::name(ObjId id) const {
  return stored_name(known(id, "name").name_ref);
}

ObjId Slab::owner(ObjId id) const {
  known(id, "owner");
  auto it = std::lower_bound(owners_.begin(), owners_.end(), std::pair<ObjId, ObjId>{id, 0});
  return it != owners_.end() && it->first == id ? it->second : 0;
}

std::vector<ObjEvent> Slab::history(ObjId id) const {
  const KObject& o = known(id, "history");
  std::vector<ObjEvent> out{ObjEvent{o.alloc_ns, o.alloc_cpu, o.alloc_ctx, "alloc"}};
  if (o.later != 0) {
    const Later& l = later_[o.later - 1];
    out.reserve(1 + l.events.size());
    for (std::size_t i = l.head; i < l.events.size(); ++i)
      out.push_back(render(l.events[i]));
    for (std::size_t i = 0; i < l.head; ++i)
      out.push_back(render(l.events[i]));
  }
  return out;
}

std::uint64_t Slab::dropped(ObjId id) const {
  const KObject& o = known(id, "dropped");
  return o.later != 0 ? later_[o.later - 1].dropped : 0;
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
    const std::vector<ObjEvent> h = history(id);
    const std::uint64_t d = dropped(id);
    for (std::size_t i = 0; i < h.size(); ++i) {
      if (i == 1 && d) f.history.push_back(fmt::format("... {} earlier events", d));
      f.history.push_back(h[i].what);
    }
  }
  return f;
}

std::string Slab::history_text(ObjId id) const {
  const KObject* o = find(id);
  if (!o) return "unknown object";
  std::string s = fmt::format("{}#{} ({}) history:", obj_kind_name(o->kind), id, name(id));
  const std::vector<ObjEvent> h = history(id);
  const std::uint64_t d = dropped(id);
  for (std::size_t i = 0; i < h.size(); ++i) {
    if (i == 1 && d) s += fmt::format(" [... {} earlier events]", d);
    const ObjEvent& e = h[i];
    s += fmt::format(" [t={} cpu={} ctx={}: {}]", e.t_ns, e.cpu, e.ctx, e.what);
  }
  return s;
}

void Slab::report_leaks(const std::set<ObjId>& reachable) {
  ObjId id = 0;
  for (const KObject& o : objects_) {
    ++id;
    if (o.freed || reachable.count(id)) continue;
    sim_.report(finding_about(sim::FindingKind::kLeak, nullptr, id, "quiescence",
                              fmt::format("{}#{} ({}) is allocated but unreachable at quiescence",
                                          obj_kind_name(o.kind), id, name(id))),
                false);
  }
}

}  // namespace bpftsim::model
