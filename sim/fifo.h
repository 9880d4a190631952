// A first-in first-out queue over one vector, read from a head index: push_back, front,
// pop_front. An empty Fifo holds no allocation (a std::deque allocates its map and a first block
// when made), and one that drains to empty starts over at the vector's front, keeping its
// capacity: the run queues of the simulated CPUs, made for every run, mostly hold a context or
// two at a time.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace bpftsim::sim {

template <class T>
class Fifo {
 public:
  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }
  void push_back(T v) { items_.push_back(std::move(v)); }
  void pop_front() {
    ++head_;
    if (head_ == items_.size()) {
      items_.clear();
      head_ = 0;
    } else if (head_ >= 64 && head_ * 2 >= items_.size()) {
      // A queue that never drains: drop the consumed half so it does not grow without bound.
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

 private:
  std::vector<T> items_;
  std::size_t head_ = 0;
};

}  // namespace bpftsim::sim
