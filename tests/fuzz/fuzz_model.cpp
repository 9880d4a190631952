// libFuzzer harness: the model under random operation sequences. The input bytes decode into a
// tests/prop/timer_workload.h Case (the workload the RapidCheck properties run: BPF programs
// doing timer and map helpers, syscalls, pins, Ctrl-C, callbacks that re-arm, cancel, free or
// init other timers) on 2-4 CPUs with its own scheduler seed, in either of that file's modes,
// and prop::run_workload runs it with its teardown. The Outcome must have the properties
// prop::judge states (the same the RapidCheck properties require):
//   clean mode       quiescent, no findings, no invariant violations mid-run or at the end,
//                    nothing armed or allocated after teardown;
//   known-bugs mode  only the seed's catalogued findings (use_after_free, leak, deadlock); the
//                    only mid-run violation is a freed timer still queued (4.3-UAF), which a
//                    quiescent run must then report; a quiescent run has balanced refcounts and
//                    nothing armed; a run that does not quiesce stopped on a deadlock.
// Model assertions (SIM_ASSERT), sanitizer errors and broken properties are crashes.
// BPFTSIM_FUZZ_SHOW=1 in the environment prints each decoded case (to reproduce a crash input).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

#include "tests/fuzz/fuzz_common.h"
#include "tests/prop/timer_workload.h"

namespace {

namespace prop = bpftsim::prop;
using bpftsim::fuzz::fail;
using bpftsim::sim::RunStatus;

constexpr std::size_t kMaxOps = 48;

template <class E>
E pick(FuzzedDataProvider& fdp, std::initializer_list<E> choices) {
  const auto i = fdp.ConsumeIntegralInRange<std::size_t>(0, choices.size() - 1);
  return *(choices.begin() + i);
}

prop::Op decode_op(FuzzedDataProvider& fdp, prop::Mode mode) {
  using prop::CbKind;
  using prop::OpKind;
  using prop::ProgAction;
  prop::Op op;
  op.offset_ns = 200 * fdp.ConsumeIntegralInRange<bpftsim::sim::TimeNs>(0, 199);
  op.cpu = fdp.ConsumeIntegralInRange(0, 3);
  // Program runs first: a byte of 0..2/3 of its range is a program (as the properties weigh it).
  if (fdp.ConsumeIntegralInRange(0, 2) != 0) {
    op.kind = OpKind::kProg;
  } else {
    op.kind = pick(fdp, {OpKind::kUserUpdate, OpKind::kUserDelete, OpKind::kClose, OpKind::kPin,
                         OpKind::kUnpin, OpKind::kGetFdById, OpKind::kExit});
  }
  op.action =
      pick(fdp, {ProgAction::kArm, ProgAction::kInit, ProgAction::kSetCallback, ProgAction::kStart,
                 ProgAction::kCancel, ProgAction::kUpdate, ProgAction::kDelete});
  op.map = fdp.ConsumeIntegralInRange(0, prop::kMaps - 1);
  op.key = fdp.ConsumeIntegralInRange<std::uint32_t>(0, prop::kKeys - 1);
  op.proc = fdp.ConsumeIntegralInRange(0, 1);
  op.slot = fdp.ConsumeIntegralInRange(0, 1);
  op.nsecs = pick<std::uint64_t>(fdp, {1000, 0, 100, 5000, 20'000, 200'000});
  op.clock = pick<std::uint64_t>(fdp, {1, 0, 7});
  if (mode == prop::Mode::kClean) {
    op.cb = pick(fdp, {CbKind::kPlain, CbKind::kRearm, CbKind::kStartOther});
  } else {
    op.cb = pick(fdp, {CbKind::kPlain, CbKind::kRearm, CbKind::kStartOther, CbKind::kCancelOther,
                       CbKind::kFreeOther, CbKind::kRearmFreeSelf, CbKind::kInitOther});
  }
  op.cb_map = fdp.ConsumeIntegralInRange(0, prop::kMaps - 1);
  op.cb_key = fdp.ConsumeIntegralInRange<std::uint32_t>(0, prop::kKeys - 1);
  return op;
}

void require_properties(const prop::Outcome& o, prop::Mode mode) {
  const auto broken = prop::judge(o, mode);
  if (!broken.empty()) fail(broken.front() + "\n" + o.describe());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  const prop::Mode mode = fdp.ConsumeBool() ? prop::Mode::kKnownBugs : prop::Mode::kClean;
  prop::Case c;
  c.seed = fdp.ConsumeIntegralInRange<std::uint64_t>(1, 1'000'000);
  c.cpus = fdp.ConsumeIntegralInRange(2, 4);
  c.rearm_budget = fdp.ConsumeIntegralInRange(0, 24);
  c.cb_busy_ns = (mode == prop::Mode::kClean ? 100 : 1000) *
                 fdp.ConsumeIntegralInRange<bpftsim::sim::TimeNs>(0, 3);
  while (fdp.remaining_bytes() > 0 && c.ops.size() < kMaxOps)
    c.ops.push_back(decode_op(fdp, mode));
  if (std::getenv("BPFTSIM_FUZZ_SHOW") != nullptr) {  // reproducing: print the decoded case
    std::ostringstream os;
    prop::showValue(c, os);
    std::fprintf(stderr, "mode %s, %s", mode == prop::Mode::kClean ? "clean" : "known-bugs",
                 os.str().c_str());
  }
  require_properties(prop::run_workload(c, mode), mode);
  return 0;
}
