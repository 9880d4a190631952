// Kernel errno values (include/uapi/asm-generic/errno-base.h, errno.h, include/linux/errno.h).
// Modeled kernel failures are these values, negated, exactly as the kernel returns them. The
// UAPI ones are Linux's own numbers, so they come from <cerrno>; ENOTSUPP is kernel-internal.
#pragma once

#include <cerrno>

namespace bpftsim::model {

inline constexpr int kEPERM = EPERM;
inline constexpr int kENOENT = ENOENT;
inline constexpr int kE2BIG = E2BIG;
inline constexpr int kEBADF = EBADF;
inline constexpr int kENOMEM = ENOMEM;
inline constexpr int kEACCES = EACCES;
inline constexpr int kEBUSY = EBUSY;
inline constexpr int kEEXIST = EEXIST;
inline constexpr int kEINVAL = EINVAL;
inline constexpr int kEDEADLK = EDEADLK;
inline constexpr int kEOPNOTSUPP = EOPNOTSUPP;
inline constexpr int kECANCELED = ECANCELED;
inline constexpr int kENOTSUPP = 524;  // kernel-internal (include/linux/errno.h)

// "EINVAL" for 22 etc.; "E?" for unknown values. Accepts positive or negative values.
const char* errno_name(long err);

}  // namespace bpftsim::model
