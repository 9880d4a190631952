// vm_unknown_helper: calls bpf_get_current_comm (helper 16), which the model does not
// implement. Loading the object must fail with an error naming the section and the helper.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

SEC("fentry/bpf_fentry_test1")
int uses_comm(void *ctx)
{
  char comm[16];

  return (int)bpf_get_current_comm(comm, sizeof(comm));
}
