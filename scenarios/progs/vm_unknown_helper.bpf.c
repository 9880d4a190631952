// vm_unknown_helper: calls bpf_get_current_pid_tgid (helper 14), which the model does not
// implement. Loading the object must fail with an error naming the section and the helper.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

SEC("fentry/bpf_fentry_test1")
int uses_pid(void *ctx)
{
  return (int)bpf_get_current_pid_tgid();
}
