// User space's side: kernel/bpf/syscall.c (map/prog fds, BPF_MAP_*_ELEM, BPF_MAP_GET_FD_BY_ID,
// BPF_PROG_TEST_RUN, links), kernel/bpf/inode.c (bpffs pin/unpin, BPF_OBJ_GET) and process exit
// closing every fd. Reference counting follows the kernel:
//   bpf_map_inc / bpf_map_put            refcnt; the last put frees the map from a workqueue
//   bpf_map_inc_with_uref / put_with_uref refcnt and usercnt; usercnt reaching 0 runs
//                                         map_release_uref synchronously in the putting context
//   BPF_MAP_GET_FD_BY_ID                  refcnt+1 only if non-zero, usercnt+1 unconditionally
//   bpf_prog_inc / bpf_prog_put           the last put frees the prog after an RCU grace period,
//                                         then puts the maps it used
// Unpinning (v5.15) releases the pinned reference from the inode's RCU callback, one grace period
// after unlink, in softirq context.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/co.h"
#include "sim/context.h"
#include "sim/time.h"

namespace bpftsim::model {

// The arguments bpf_prog_test_run_tracing (net/bpf/test_run.c, v5.15) calls bpf_fentry_test1..8
// with; test7 and test8 take pointers, passed as 0 here.
inline constexpr std::array<std::array<std::uint64_t, 5>, 8> kFentryTestArgs = {
    {{1, 0, 0, 0, 0},
     {2, 3, 0, 0, 0},
     {4, 5, 6, 0, 0},
     {7, 8, 9, 10, 0},
     {11, 12, 13, 14, 15},
     {16, 17, 18, 19, 20},
     {0, 0, 0, 0, 0},
     {0, 0, 0, 0, 0}}};

class Kernel;
class BpfMap;
class BpfProg;

struct FdEntry {
  enum class Kind : std::uint8_t { kMap, kProg, kLink };
  Kind kind = Kind::kMap;
  BpfMap* map = nullptr;
  BpfProg* prog = nullptr;
};

struct Process {
  int pid = 0;  // the process's one task: pid == tgid
  std::string name;
  std::map<int, FdEntry> fds;
  int next_fd = 3;
  bool exited = false;
};

// The task_struct a BPF program reads through bpf_get_current_task_btf: the model's vmlinux
// subset has a fixed layout (no CO-RE), the one scenarios/progs/bpftsim_vmlinux.h declares.
struct TaskStruct {
  std::int64_t state = 0;  // 0 running (TASK_RUNNING), 1 sleeping (TASK_INTERRUPTIBLE)
  std::int32_t pid = 0;
  std::int32_t tgid = 0;
  char comm[16] = {};
};
static_assert(sizeof(TaskStruct) == 32, "the layout bpftsim_vmlinux.h declares");

struct Pin {
  BpfMap* map = nullptr;
  BpfProg* prog = nullptr;
};

class Syscalls {
 public:
  explicit Syscalls(Kernel& k) : k_(k) {}
  ~Syscalls();
  Syscalls(const Syscalls&) = delete;
  Syscalls& operator=(const Syscalls&) = delete;

  Process& new_process(std::string name);
  Process* process(int pid);
  const std::map<int, Process>& processes() const { return procs_; }
  const std::map<std::string, Pin>& pins() const { return pins_; }

  // Setup-time creation (no virtual time passes): a new fd, or -errno.
  int map_create(Process& p, BpfMap* map);
  int prog_load(Process& p, BpfProg* prog);

  // Syscalls as timeline actions; each returns 0/fd or -errno like the kernel.
  sim::Co<int> close(sim::Context& ctx, Process& p, int fd);
  sim::Co<int> obj_pin(sim::Context& ctx, Process& p, int fd, const std::string& path);
  sim::Co<int> unlink(sim::Context& ctx, const std::string& path);
  sim::Co<int> obj_get(sim::Context& ctx, Process& p, const std::string& path);
  sim::Co<int> map_get_fd_by_id(sim::Context& ctx, Process& p, std::uint32_t id);
  sim::Co<int> map_lookup_elem(sim::Context& ctx, Process& p, int fd,
                               const std::vector<std::uint8_t>& key,
                               std::vector<std::uint8_t>* value);
  sim::Co<int> map_update_elem(sim::Context& ctx, Process& p, int fd,
                               const std::vector<std::uint8_t>& key,
                               const std::vector<std::uint8_t>& value, std::uint64_t flags);
  sim::Co<int> map_delete_elem(sim::Context& ctx, Process& p, int fd,
                               const std::vector<std::uint8_t>& key);
  // BPF_PROG_TEST_RUN: runs the program in this task; *retval gets r0.
  sim::Co<int> prog_test_run(sim::Context& ctx, Process& p, int fd,
                             std::array<std::uint64_t, 5> args, std::int64_t* retval);
  // BPF_LINK_CREATE (attach): a link fd holding a prog reference.
  sim::Co<int> link_create(sim::Context& ctx, Process& p, int prog_fd);
  // do_exit: closes every fd in ascending order.
  sim::Co<void> exit(sim::Context& ctx, Process& p);
  // nanosleep(2) -> hrtimer_nanosleep -> do_nanosleep(t, HRTIMER_MODE_REL): the task sleeps
  // `ns` (the kernel's hrtimer_sleeper is not one of the model's soft hrtimers: the wake-up is a
  // timed event, the sleeper's id the hook argument). fentry/kprobe do_nanosleep programs run
  // at its entry, fexit ones at its return (0). The sleeping task holds its CPU as a blocked
  // context does in the model (softirqs still run there). Returns 0.
  sim::Co<int> nanosleep(sim::Context& ctx, Process& p, sim::TimeNs ns);

  // `current` of the kernel: the task `ctx` runs for. A timeline action's task runs for its
  // process; other contexts (softirq, kworker, interrupts) for none: nullptr, which the task
  // helpers show as the idle task (pid 0, "swapper/<cpu>").
  void set_current(const sim::Context& ctx, Process& p);
  Process* current(const sim::Context& ctx);
  // The address of the read-only struct task_struct of `p` (nullptr: the idle task of `cpu`),
  // made on first use.
  std::uint64_t task_struct_addr(const Process* p, int cpu);

  // Reference counting primitives.
  void map_inc(const sim::Context* ctx, BpfMap& map);
  void map_inc_with_uref(const sim::Context* ctx, BpfMap& map);
  sim::Co<void> map_put(sim::Context& ctx, BpfMap& map);
  sim::Co<void> map_put_with_uref(sim::Context& ctx, BpfMap& map);
  void prog_inc(const sim::Context* ctx, BpfProg& prog);
  // bpf_prog_inc_not_zero: -ENOENT once the prog's refcnt reached zero.
  int prog_inc_not_zero(const sim::Context* ctx, BpfProg& prog);
  sim::Co<void> prog_put(sim::Context& ctx, BpfProg& prog);

 private:
  int install(Process& p, FdEntry e);
  FdEntry* fd_entry(Process& p, int fd, FdEntry::Kind kind);

  Kernel& k_;
  std::map<int, Process> procs_;
  int next_pid_ = 100;
  std::map<std::string, Pin> pins_;
  std::map<std::uint32_t, int> current_;  // context id -> pid
  struct Task {
    std::unique_ptr<TaskStruct> t;
    std::uint32_t region = 0;
  };
  std::map<std::pair<int, int>, Task> tasks_;  // (pid, -1) or (0, cpu) for the idle tasks
  std::uint64_t next_sleeper_ = 1;
};

}  // namespace bpftsim::model
