// The guest address space BPF programs and helpers see: tagged regions, a guest address being
// (region_id << 32) | offset. Region 0 is never mapped, so NULL and small integers fault. Map
// values, keys, global data, stacks and contexts are registered here by whoever owns the memory;
// the interpreter (model/bpf_vm) and the helpers translate addresses through it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bpftsim::model {

enum class RegionKind : std::uint8_t {
  kStack,       // a BPF stack frame (512 bytes)
  kMapValue,    // map value memory (array slots, hash element values)
  kMapKey,      // a key buffer (hash element key, array index passed to a callback)
  kContext,     // the program's context (fentry-style u64 args, conformance "mem")
  kGlobalData,  // .data / .bss (writable single-element array maps)
  kRodata,      // .rodata (never writable from BPF)
  kOpaque,  // a kernel object handed to BPF by address only (struct bpf_map *): not dereferenceable
  kKernelObject,  // a kernel object BPF may read, never write (task_struct: model/syscall.h)
};

const char* region_kind_name(RegionKind kind);

struct Region {
  std::uint32_t id = 0;
  RegionKind kind = RegionKind::kOpaque;
  std::string name;              // e.g. "map hmap value", "stack frame 1"
  std::uint8_t* data = nullptr;  // host memory, owned by whoever registered the region
  std::uint32_t size = 0;
  bool writable = false;
  bool live = true;  // false once retired: any access faults as use of a dead region
};

// Where a guest address is valid. Region ids are handed out in registration order
// (deterministic); ids of retired regions are never reused.
class AddressSpace {
 public:
  static constexpr unsigned kRegionShift = 32;

  AddressSpace();
  std::uint32_t add(RegionKind kind, std::string name, std::uint8_t* data, std::uint32_t size,
                    bool writable);
  void retire(std::uint32_t id);
  // Points a live region at other host memory (e.g. a value arena that was reallocated).
  void rebind(std::uint32_t id, std::uint8_t* data, std::uint32_t size);

  static std::uint64_t base(std::uint32_t id) { return std::uint64_t{id} << kRegionShift; }
  static std::uint32_t region_of(std::uint64_t addr) {
    return static_cast<std::uint32_t>(addr >> kRegionShift);
  }
  const Region* find(std::uint32_t id) const;

  // Host pointer for [addr, addr+size), or nullptr with *why set (a short human reason that
  // names the region and the offset).
  // Inline: the interpreter's every load and store goes through it.
  std::uint8_t* translate(std::uint64_t addr, std::uint32_t size, bool write,
                          std::string* why) const {
    const std::uint32_t id = region_of(addr);
    const std::uint32_t off = static_cast<std::uint32_t>(addr);
    if (id < regions_.size()) [[likely]] {
      const Region& r = regions_[id];
      if (std::uint64_t{off} + size <= r.size && r.live && (r.writable || !write) &&
          r.kind != RegionKind::kOpaque) [[likely]] {
        return r.data + off;
      }
    }
    if (why != nullptr) [[unlikely]]
      *why = describe_bad_access(addr, size, write);
    return nullptr;
  }
  // The reason translate() refuses [addr, addr+size), naming the region and the offset.
  std::string describe_bad_access(std::uint64_t addr, std::uint32_t size, bool write) const;

  // An address this close below the start of a region is a negative offset from that region (a
  // stack underflow below r10-512, a pointer decremented past the start), not a far-away access
  // into the region before it.
  static constexpr std::uint32_t kUnderflowWindow = 0xffff0000u;

 private:
  std::vector<Region> regions_;  // index = id; regions_[0] is the unmapped null region
};

}  // namespace bpftsim::model
