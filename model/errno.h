// Kernel errno values (include/uapi/asm-generic/errno-base.h, errno.h, include/linux/errno.h).
// Modeled kernel failures are these values, negated, exactly as the kernel returns them.
#pragma once

namespace bpftsim::model {

inline constexpr int kEPERM = 1;
inline constexpr int kENOENT = 2;
inline constexpr int kE2BIG = 7;
inline constexpr int kEBADF = 9;
inline constexpr int kENOMEM = 12;
inline constexpr int kEACCES = 13;
inline constexpr int kEBUSY = 16;
inline constexpr int kEEXIST = 17;
inline constexpr int kEINVAL = 22;
inline constexpr int kEDEADLK = 35;
inline constexpr int kEOPNOTSUPP = 95;
inline constexpr int kENOTSUPP = 524;  // kernel-internal

// "EINVAL" for 22 etc.; "E?" for unknown values. Accepts positive or negative values.
const char* errno_name(long err);

}  // namespace bpftsim::model
