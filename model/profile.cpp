#include "model/profile.h"

#include "model/errno.h"

namespace bpftsim::model {

const char* errno_name(long err) {
  switch (err < 0 ? -err : err) {
    case 0:
      return "0";
    case kEPERM:
      return "EPERM";
    case kENOENT:
      return "ENOENT";
    case kE2BIG:
      return "E2BIG";
    case kEBADF:
      return "EBADF";
    case kENOMEM:
      return "ENOMEM";
    case kEACCES:
      return "EACCES";
    case kEBUSY:
      return "EBUSY";
    case kEEXIST:
      return "EEXIST";
    case kEINVAL:
      return "EINVAL";
    case kEDEADLK:
      return "EDEADLK";
    case kEOPNOTSUPP:
      return "EOPNOTSUPP";
    case kENOTSUPP:
      return "ENOTSUPP";
    default:
      return "E?";
  }
}

const KernelProfile& default_profile() {
  static const KernelProfile seed{};
  return seed;
}

std::optional<KernelProfile> profile_by_name(const std::string& name) {
  if (name == "v5.15" || name == "seed") return default_profile();
  return std::nullopt;
}

std::vector<std::string> profile_names() {
  return {"v5.15"};
}

}  // namespace bpftsim::model
