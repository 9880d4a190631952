#include "model/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace bpftsim::model {

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// The reason a file with status `st` is refused, or nothing.
std::optional<std::string> judge(const struct stat& st, std::uint64_t max_bytes,
                                 const std::string& what) {
  if (S_ISDIR(st.st_mode)) return fmt::format("is a directory (expected a {})", what);
  if (!S_ISREG(st.st_mode))
    return fmt::format("is not a regular file ({}; expected a {})", kind_of(st.st_mode), what);
  if (st.st_size < 0 || static_cast<std::uint64_t>(st.st_size) > max_bytes)
    return fmt::format("is larger than {} bytes (the limit for a {})", max_bytes, what);
  return std::nullopt;
}

std::string cannot_open(const std::string& what, int err) {
  return fmt::format("cannot open the {}: {}", what, std::strerror(err));
}
std::string cannot_read(const std::string& what, int err) {
  return fmt::format("cannot read the {}: {}", what, std::strerror(err));
}

}  // namespace

std::optional<std::string> check_input_file(const std::string& path, std::uint64_t max_bytes,
                                            const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return cannot_open(what, errno);
  return judge(st, max_bytes, what);
}

std::optional<std::string> read_input_file(const std::string& path, std::uint64_t max_bytes,
                                           const std::string& what, std::string* out) {
  out->clear();
  // Judged before opening: opening a FIFO for reading would block until a writer comes.
  if (auto why = check_input_file(path, max_bytes, what)) return why;
  // O_NONBLOCK: should the path be swapped for a FIFO meanwhile, open() does not wait for a
  // writer; fstat then refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return cannot_open(what, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return cannot_read(what, err);
  }
  if (auto why = judge(st, max_bytes, what)) {
    ::close(fd);
    return why;
  }
  // Read to the end, whatever st_size said (files under /proc say 0), but never past the cap.
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      out->clear();
      return cannot_read(what, err);
    }
    if (n == 0) break;
    out->append(buf, static_cast<std::size_t>(n));
    if (out->size() > max_bytes) {
      ::close(fd);
      out->clear();
      return fmt::format("is larger than {} bytes (the limit for a {})", max_bytes, what);
    }
  }
  ::close(fd);
  return std::nullopt;
}

}  // namespace bpftsim::model
