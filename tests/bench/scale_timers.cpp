// The scale scenario of issue 12: N armed BPF timers across C CPUs (default 1,000,000 and 64), then
// every one of them expiring once. Not a ctest test and not under scenarios/ (`check` stays fast):
// a program that prints its figures, for README "Figures".
//
//   build/bench/tests/scale_timers [N [CPUS [MAPS [lockstep]]]]
//
// The timers live in MAPS ARRAY maps (default 16) of {struct bpf_timer} values, N/MAPS slots each
// (a map's memory is capped at 64 MiB; 16-byte values put one map of 1e6 at 16 MB, but several
// maps is how a large program would hold them). Slot i of the whole set is armed on CPU
// i mod CPUS by a task of that CPU (bpf_timer_init, bpf_timer_set_callback, bpf_timer_start:
// the model's helper bodies, native callback), to expire at (N + 1 + i) us, one microsecond
// apart. The CPUs' tasks run one after the other; with `lockstep` they all start at t=0 and
// every step boundary where CPUs tie is a scheduler decision, recorded for replay (about 15 per
// timer on 64 CPUs: the decision log then dominates the memory). The callback does not re-arm, so
// the run then ends quiescent with every timer expired once through the whole engine path (clock
// event -> HRTIMER_SOFTIRQ -> bpf_timer_cb -> callback). No trace is kept (the digest is computed),
// as in `bpftsim explore`.
//
// Printed: wall and CPU seconds of building the kernel + arming and of the expiries, the
// expiries per second, the maximum resident set (getrusage ru_maxrss, which includes the
// binary and everything the run allocated) before arming, after arming and at the end, and the
// growth of the resident set per armed timer. Bytes per timer as the README reports them:
// (RSS after arming with 2N) - (RSS after arming with N), divided by N — two runs, so the fixed
// cost cancels. The sizes of the model's per-timer structures are printed too.
#include <sys/resource.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "model/bpf_timer.h"
#include "model/helpers.h"
#include "model/hrtimer.h"
#include "model/kernel.h"
#include "model/slab.h"
#include "model/spinlock.h"
#include "sim/event_queue.h"
#include "sim/simulator.h"

namespace {

namespace model = bpftsim::model;
namespace sim = bpftsim::sim;
using sim::TimeNs;

constexpr TimeNs kSpacingNs = 1000;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "scale_timers: %s\n", what.c_str());
  std::exit(1);
}

long max_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::int64_t parse(const char* s, const char* what) {
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (end == s || *end != '\0' || v < 1) die(std::string("bad ") + what + ": " + s);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t n = argc > 1 ? parse(argv[1], "N") : 1'000'000;
  const int cpus = argc > 2 ? static_cast<int>(parse(argv[2], "CPUS")) : 64;
  const int nmaps = argc > 3 ? static_cast<int>(parse(argv[3], "MAPS")) : 16;
  const bool lockstep = argc > 4 && std::string(argv[4]) == "lockstep";
  if (n % nmaps != 0) die("N must be a multiple of MAPS");
  const std::int64_t per_map = n / nmaps;

  std::printf(
      "sizeof: BpfHrtimer %zu (HrTimer %zu), KObject %zu, ObjEvent %zu, KLock %zu, "
      "sim::Event %zu\n",
      sizeof(model::BpfHrtimer), sizeof(model::HrTimer), sizeof(model::KObject),
      sizeof(model::ObjEvent), sizeof(model::KLock), sizeof(sim::Event));
  const long rss0 = max_rss_kib();
  const double w0 = wall_seconds(), c0 = cpu_seconds();

  sim::SimConfig cfg;
  cfg.seed = 1;
  cfg.cpus = cpus;
  cfg.keep_trace = false;
  cfg.max_steps = UINT64_MAX;
  cfg.max_time_ns = sim::kTimeNever;
  auto simu = std::make_unique<sim::Simulator>(cfg);
  auto k = std::make_unique<model::Kernel>(*simu);

  std::vector<model::BpfMap*> maps;
  for (int m = 0; m < nmaps; ++m) {
    model::MapDef d;
    d.name = "scale" + std::to_string(m);
    d.type = model::kBpfMapTypeArray;
    d.key_size = 4;
    d.value_size = 16;  // struct { struct bpf_timer t; }
    d.max_entries = static_cast<std::uint32_t>(per_map);
    d.timer_off = 0;
    int err = 0;
    model::BpfMap* map = k->create_map(nullptr, d, &err);
    if (map == nullptr) die("create_map failed: " + std::to_string(err));
    maps.push_back(map);
  }
  std::int64_t expired = 0, armed = 0, errors = 0;
  model::NativeProg* prog = k->create_native_prog(
      "scale",
      [](model::ProgRun&, std::array<std::uint64_t, 5>) -> sim::Co<std::int64_t> { co_return 0; },
      {{"cb",
        [&expired](model::ProgRun&, std::array<std::uint64_t, 5>) -> sim::Co<std::int64_t> {
          ++expired;
          co_return 0;
        }}},
      maps);

  const TimeNs first_expiry = (n + 1) * kSpacingNs;
  for (int cpu = 0; cpu < cpus; ++cpu) {
    simu->spawn_task(cpu, "arm", [&, cpu](sim::Context& c) -> sim::Co<void> {
      const std::uint64_t cb = prog->callback(0);
      for (std::int64_t i = cpu; i < n; i += cpus) {
        model::BpfMap& map = *maps[static_cast<std::size_t>(i / per_map)];
        const std::uint64_t timer = model::helpers::timer_of(
            map, map.arena().addr(static_cast<std::uint32_t>(i % per_map)));
        std::int64_t r = co_await k->timers.init(c, timer, map.handle_addr, model::kClockMonotonic);
        if (r == 0) r = co_await k->timers.set_callback(c, timer, cb, *prog);
        const TimeNs expires = first_expiry + i * kSpacingNs;
        if (r == 0)
          r = co_await k->timers.start(c, timer, static_cast<std::uint64_t>(expires - c.now()), 0);
        if (r != 0) ++errors;
        ++armed;
      }
    });
    // One CPU's task after the other (lockstep: all at once, every tie a recorded decision).
    if (!lockstep) simu->run(first_expiry - 1);
  }
  simu->run(first_expiry - 1);
  const double w1 = wall_seconds(), c1 = cpu_seconds();
  const long rss1 = max_rss_kib();
  if (armed != n || errors != 0 || k->armed_timers() != static_cast<std::size_t>(n) ||
      !simu->findings().empty())
    die("arming failed: armed " + std::to_string(armed) + ", " + std::to_string(errors) +
        " helper errors, " + std::to_string(k->armed_timers()) + " in the hrtimer bases, " +
        std::to_string(simu->findings().size()) + " findings");
  std::printf(
      "armed %lld timers on %d CPUs in %d map(s): %.2f s wall, %.2f s CPU "
      "(%zu scheduler decisions, %llu trace records)\n",
      static_cast<long long>(n), cpus, nmaps, w1 - w0, c1 - c0,
      simu->scheduler().decisions().size(), static_cast<unsigned long long>(simu->trace().count()));

  const sim::RunStatus st = simu->run();
  const double w2 = wall_seconds(), c2 = cpu_seconds();
  const long rss2 = max_rss_kib();
  if (st != sim::RunStatus::kQuiescent || expired != n || k->armed_timers() != 0)
    die(std::string("expiry run ended ") + sim::run_status_name(st) + " with " +
        std::to_string(expired) + " of " + std::to_string(n) + " callbacks run");
  std::printf("expired %lld timers: %.2f s wall, %.2f s CPU, %.0f expiries/s (CPU)\n",
              static_cast<long long>(expired), w2 - w1, c2 - c1,
              static_cast<double>(expired) / (c2 - c1));
  std::printf(
      "peak RSS: %.1f MB at start, %.1f MB after arming, %.1f MB at the end; "
      "%.0f bytes of RSS per armed timer (incl. fixed cost)\n",
      static_cast<double>(rss0) / 1024, static_cast<double>(rss1) / 1024,
      static_cast<double>(rss2) / 1024,
      static_cast<double>(rss1 - rss0) * 1024 / static_cast<double>(n));
  std::printf(
      "result n=%lld cpus=%d rss_armed_kib=%ld rss_peak_kib=%ld arm_cpu_s=%.3f "
      "expire_cpu_s=%.3f\n",
      static_cast<long long>(n), cpus, rss1, rss2, c1 - c0, c2 - c1);
  return 0;
}
