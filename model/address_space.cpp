#include "model/address_space.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

namespace bpftsim::model {

namespace {
// Always-on check for misuse of the address space by the simulator (a simulator bug).
[[noreturn]] void space_bug(const char* what) {
  std::fprintf(stderr, "bpftsim: AddressSpace contract violated: %s\n", what);
  std::abort();
}
}  // namespace

const char* region_kind_name(RegionKind kind) {
  switch (kind) {
    case RegionKind::kStack:
      return "stack";
    case RegionKind::kMapValue:
      return "map_value";
    case RegionKind::kMapKey:
      return "map_key";
    case RegionKind::kContext:
      return "context";
    case RegionKind::kGlobalData:
      return "global_data";
    case RegionKind::kRodata:
      return "rodata";
    case RegionKind::kOpaque:
      return "opaque";
    case RegionKind::kKernelObject:
      return "kernel_object";
  }
  return "unknown";
}

AddressSpace::AddressSpace() {
  Region null_region;
  null_region.id = 0;
  null_region.kind = RegionKind::kOpaque;
  null_region.name = "null";
  regions_.push_back(std::move(null_region));
}

std::uint32_t AddressSpace::add(RegionKind kind, std::string name, std::uint8_t* data,
                                std::uint32_t size, bool writable) {
  if (data == nullptr && size != 0 && kind != RegionKind::kOpaque) {
    space_bug("AddressSpace::add: a dereferenceable region needs host memory");
  }
  if (regions_.size() >= std::numeric_limits<std::uint32_t>::max()) {
    space_bug("AddressSpace::add: region ids exhausted");
  }
  Region r;
  r.id = static_cast<std::uint32_t>(regions_.size());
  r.kind = kind;
  r.name = std::move(name);
  r.data = data;
  r.size = size;
  r.writable = writable && kind != RegionKind::kRodata && kind != RegionKind::kOpaque &&
               kind != RegionKind::kKernelObject;
  r.live = true;
  regions_.push_back(std::move(r));
  return regions_.back().id;
}

void AddressSpace::retire(std::uint32_t id) {
  if (id == 0 || id >= regions_.size()) space_bug("AddressSpace::retire: unknown region");
  regions_[id].live = false;
  regions_[id].data = nullptr;  // the owner frees it; nothing may reach it through us
}

void AddressSpace::rebind(std::uint32_t id, std::uint8_t* data, std::uint32_t size) {
  if (id == 0 || id >= regions_.size() || !regions_[id].live) {
    space_bug("AddressSpace::rebind: unknown or retired region");
  }
  if (data == nullptr && size != 0 && regions_[id].kind != RegionKind::kOpaque) {
    space_bug("AddressSpace::rebind: a dereferenceable region needs host memory");
  }
  regions_[id].data = data;
  regions_[id].size = size;
}

const Region* AddressSpace::find(std::uint32_t id) const {
  if (id == 0 || id >= regions_.size()) return nullptr;
  return &regions_[id];
}

std::string AddressSpace::describe_bad_access(std::uint64_t addr, std::uint32_t size,
                                              bool write) const {
  const std::vector<Region>& regions = regions_;
  const char* access = write ? "write" : "read";
  const std::uint32_t id = AddressSpace::region_of(addr);
  const std::uint32_t off = static_cast<std::uint32_t>(addr);
  if (off >= kUnderflowWindow && std::uint64_t{id} + 1 < regions.size()) {
    const Region& next = regions[id + 1];
    return fmt::format("{} of {} bytes at offset -{} of {} '{}' (size {}): before its start",
                       access, size, 0x100000000ull - off, region_kind_name(next.kind), next.name,
                       next.size);
  }
  if (id == 0) {
    return fmt::format("null pointer dereference: {} of {} bytes at {:#x}", access, size, addr);
  }
  if (id >= regions.size()) {
    return fmt::format("{} of {} bytes at {:#x}: no region {} is mapped", access, size, addr, id);
  }
  const Region& r = regions[id];
  const char* problem = "region is read-only";
  if (!r.live) {
    problem = "region was retired (use after free)";
  } else if (r.kind == RegionKind::kOpaque) {
    problem = "region is not dereferenceable";
  } else if (std::uint64_t{off} + size > r.size) {
    problem = "out of bounds";
  }
  return fmt::format("{} of {} bytes at offset {} of {} '{}' (size {}): {}", access, size, off,
                     region_kind_name(r.kind), r.name, r.size, problem);
}

}  // namespace bpftsim::model
