#include "model/errno.h"

namespace bpftsim::model {

namespace {
struct ErrnoName {
  int value;
  const char* name;
};
constexpr ErrnoName kErrnoNames[] = {
    {0, "0"},
    {kEPERM, "EPERM"},
    {kENOENT, "ENOENT"},
    {kE2BIG, "E2BIG"},
    {kEBADF, "EBADF"},
    {kENOMEM, "ENOMEM"},
    {kEACCES, "EACCES"},
    {kEBUSY, "EBUSY"},
    {kEEXIST, "EEXIST"},
    {kEINVAL, "EINVAL"},
    {kEDEADLK, "EDEADLK"},
    {kEOPNOTSUPP, "EOPNOTSUPP"},
    {kECANCELED, "ECANCELED"},
    {kENOTSUPP, "ENOTSUPP"},
};
}  // namespace

const char* errno_name(long err) {
  const long v = err < 0 ? -err : err;
  for (const ErrnoName& e : kErrnoNames)
    if (e.value == v) return e.name;
  return "E?";
}

}  // namespace bpftsim::model
