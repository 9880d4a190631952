// The kernel UAPI numbers the model uses (include/uapi/linux/bpf.h and <time.h>), named once and
// taken from the installed headers, not written by hand: map types, map and update flags, helper
// ids (enum bpf_func_id), clock ids. The model includes this header for them; the loader's header
// (model/libbpf_loader.h) is for what the loader produces.
#pragma once

#include <linux/bpf.h>
#include <time.h>

#include <cstdint>

namespace bpftsim::model {

// enum bpf_map_type
inline constexpr std::uint32_t kBpfMapTypeHash = BPF_MAP_TYPE_HASH;
inline constexpr std::uint32_t kBpfMapTypeArray = BPF_MAP_TYPE_ARRAY;
inline constexpr std::uint32_t kBpfMapTypeLruHash = BPF_MAP_TYPE_LRU_HASH;
inline constexpr std::uint32_t kBpfMapTypeArrayOfMaps = BPF_MAP_TYPE_ARRAY_OF_MAPS;
inline constexpr std::uint32_t kBpfMapTypeHashOfMaps = BPF_MAP_TYPE_HASH_OF_MAPS;

// Map creation flags (BPF_MAP_CREATE map_flags).
inline constexpr std::uint32_t kBpfFNoPrealloc = BPF_F_NO_PREALLOC;
inline constexpr std::uint32_t kBpfFRdonlyProg = BPF_F_RDONLY_PROG;

// Map update flags (bpf_map_update_elem).
inline constexpr std::uint64_t kBpfAny = BPF_ANY;
inline constexpr std::uint64_t kBpfNoexist = BPF_NOEXIST;
inline constexpr std::uint64_t kBpfExist = BPF_EXIST;
inline constexpr std::uint64_t kBpfFLock = BPF_F_LOCK;

// bpf_timer_start flags: BPF_F_TIMER_ABS (v6.4) and BPF_F_TIMER_CPU_PIN (v6.7), newer than the
// installed headers, so their values (bits 0 and 1 of the uapi enum) are written here.
inline constexpr std::uint64_t kBpfFTimerAbs = 1ULL << 0;
inline constexpr std::uint64_t kBpfFTimerCpuPin = 1ULL << 1;

// enum bpf_func_id: the helpers the model implements (model/helpers.cpp's table).
enum HelperId : std::int32_t {
  kHelperMapLookupElem = BPF_FUNC_map_lookup_elem,
  kHelperMapUpdateElem = BPF_FUNC_map_update_elem,
  kHelperMapDeleteElem = BPF_FUNC_map_delete_elem,
  kHelperKtimeGetNs = BPF_FUNC_ktime_get_ns,
  kHelperTracePrintk = BPF_FUNC_trace_printk,
  kHelperGetPrandomU32 = BPF_FUNC_get_prandom_u32,
  kHelperGetSmpProcessorId = BPF_FUNC_get_smp_processor_id,
  kHelperSpinLock = BPF_FUNC_spin_lock,
  kHelperSpinUnlock = BPF_FUNC_spin_unlock,
  kHelperKtimeGetBootNs = BPF_FUNC_ktime_get_boot_ns,
  kHelperTimerInit = BPF_FUNC_timer_init,
  kHelperTimerSetCallback = BPF_FUNC_timer_set_callback,
  kHelperTimerStart = BPF_FUNC_timer_start,
  kHelperTimerCancel = BPF_FUNC_timer_cancel,
  kHelperLoop = BPF_FUNC_loop,
  kHelperGetCurrentPidTgid = BPF_FUNC_get_current_pid_tgid,
  kHelperGetCurrentTaskBtf = BPF_FUNC_get_current_task_btf,
};

// The kfuncs the model implements. A kfunc has no uapi id: the loader resolves a call to a
// .ksyms extern by name (helpers::kfunc_by_name) and rewrites it into a helper call with one of
// these model-internal ids, past every bpf_func_id.
inline constexpr std::int32_t kKfuncBase = 1 << 20;
inline constexpr std::int32_t kKfuncTimerCancelAsync = kKfuncBase + 0;  // 2.21

// Clock ids bpf_timer_init accepts (<time.h>).
inline constexpr int kClockRealtime = CLOCK_REALTIME;
inline constexpr int kClockMonotonic = CLOCK_MONOTONIC;
inline constexpr int kClockBoottime = CLOCK_BOOTTIME;

}  // namespace bpftsim::model
