// Co<T>: the coroutine type in which kernel code paths are written. A code path is a sequence of
// steps; `co_await ctx.step(cost_ns)` ends one (see sim/context.h). Calling another code path is
// `co_await callee(...)`: lazily started, resumed by symmetric transfer, result returned on
// completion. A Co owns its frame; destroying a suspended root destroys the whole chain.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <new>
#include <utility>
#include <variant>

namespace bpftsim::sim {

template <class T>
class Co;

namespace detail {

// Coroutine frames come from per-thread free lists by size class (64-byte steps up to 2 KiB), not
// from malloc: a step of kernel code calls several code paths, each a frame, and an expiry made
// ~20 allocations. A freed frame goes back to its class's list (never to the system while the
// thread lives), so the steady state allocates nothing. Frames are only addresses: nothing orders
// or hashes them, so reuse cannot change a run. Under AddressSanitizer frames use plain new and
// delete so that a use after free of a frame is still caught.
#if defined(__SANITIZE_ADDRESS__)
#define BPFTSIM_CO_FRAME_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BPFTSIM_CO_FRAME_POOL 0
#endif
#endif
#ifndef BPFTSIM_CO_FRAME_POOL
#define BPFTSIM_CO_FRAME_POOL 1
#endif

class FramePool {
 public:
  static constexpr std::size_t kStep = 64;
  static constexpr std::size_t kClasses = 32;  // frames up to 2 KiB

  static void* alloc(std::size_t n) {
    const std::size_t c = (n + kStep - 1) / kStep;
    if (!BPFTSIM_CO_FRAME_POOL || c >= kClasses) return ::operator new(n);
    FramePool& pool = local();
    if (Node* f = pool.free_[c]) {
      pool.free_[c] = f->next;
      return f;
    }
    return ::operator new(c* kStep);
  }
  static void release(void* p, std::size_t n) noexcept {
    const std::size_t c = (n + kStep - 1) / kStep;
    if (!BPFTSIM_CO_FRAME_POOL || c >= kClasses) {
      ::operator delete(p);
      return;
    }
    FramePool& pool = local();
    Node* f = static_cast<Node*>(p);
    f->next = pool.free_[c];
    pool.free_[c] = f;
  }

  FramePool() = default;
  FramePool(const FramePool&) = delete;
  FramePool& operator=(const FramePool&) = delete;
  ~FramePool() {
    for (Node*& head : free_)
      while (head) {
        Node* next = head->next;
        ::operator delete(head);
        head = next;
      }
  }

 private:
  struct Node {
    Node* next;
  };
  static FramePool& local() {
    thread_local FramePool pool;
    return pool;
  }
  Node* free_[kClasses] = {};
};

struct PromiseBase {
  static void* operator new(std::size_t n) { return FramePool::alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { FramePool::release(p, n); }

  std::coroutine_handle<> continuation;
  std::exception_ptr error;

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      auto next = h.promise().continuation;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() { error = std::current_exception(); }
};

template <class T>
struct Promise : PromiseBase {
  T value{};
  Co<T> get_return_object();
  template <class U>
  void return_value(U&& v) {
    value = std::forward<U>(v);
  }
};

template <>
struct Promise<void> : PromiseBase {
  Co<void> get_return_object();
  void return_void() {}
};

}  // namespace detail

template <class T = void>
class [[nodiscard]] Co {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Co() = default;
  explicit Co(Handle h) : h_(h) {}
  Co(Co&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Co& operator=(Co&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Co(const Co&) = delete;
  Co& operator=(const Co&) = delete;
  ~Co() { reset(); }

  bool valid() const { return static_cast<bool>(h_); }
  bool done() const { return h_ && h_.done(); }
  Handle handle() const { return h_; }
  // Rethrows an exception that escaped the coroutine body (simulator bugs only).
  void rethrow_if_failed() const {
    if (h_ && h_.promise().error) std::rethrow_exception(h_.promise().error);
  }

  // Awaiting a Co starts it and suspends the awaiter until it completes.
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    h_.promise().continuation = awaiter;
    return h_;
  }
  T await_resume() {
    rethrow_if_failed();
    if constexpr (!std::is_void_v<T>) return std::move(h_.promise().value);
  }

 private:
  void reset() {
    if (h_) h_.destroy();
    h_ = {};
  }
  Handle h_;
};

namespace detail {
template <class T>
Co<T> Promise<T>::get_return_object() {
  return Co<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Co<void> Promise<void>::get_return_object() {
  return Co<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace bpftsim::sim
