// bpftsim_vmlinux.h: the model's vmlinux subset, for programs that read kernel structures through
// BTF pointers (bpf_get_current_task_btf). The layouts are fixed (model/syscall.h TaskStruct): no
// CO-RE relocation is needed or done, so do not mark these structs preserve_access_index and do
// not mix them with a real vmlinux.h. Only the members listed exist; the model's task_struct is
// read-only to BPF (a write is a program fault).
#pragma once

#include <linux/types.h>

struct task_struct {
  long __state; /* 0 running, 1 sleeping (TASK_INTERRUPTIBLE, in do_nanosleep) */
  int pid;
  int tgid;
  char comm[16];
};
