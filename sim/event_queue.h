// The event queue: a Boost.Intrusive red-black tree of Events ordered by (time, sequence). The
// sequence number is taken when an event is scheduled, so events at equal times keep scheduling
// order unless the scheduler is asked to choose among them (see Simulator::run). Events are owned
// by whoever schedules them (a CPU, a clock event device, a timeline action); the queue never
// allocates.
#pragma once

#include <boost/intrusive/set.hpp>

#include <cstdint>

#include "sim/time.h"

namespace bpftsim::sim {

class Simulator;

class Event : public boost::intrusive::set_base_hook<
                  boost::intrusive::optimize_size<true>,
                  boost::intrusive::link_mode<boost::intrusive::safe_link>> {
 public:
  virtual ~Event() = default;
  // Runs at `time()` (or later, by at most the scheduling window, when the scheduler let another
  // event of the window go first); the simulator has already unlinked the event, so it may
  // reschedule itself.
  virtual void fire(Simulator& sim) = 0;
  // Identifies the event among others due within the window, as a scheduler candidate: stable
  // across schedules of the same scenario (kind and CPU, an action's key; never an address).
  // CPU boundaries are named by the step they end instead (Simulator::cpu_candidate).
  virtual std::uint64_t tag() const = 0;

  TimeNs time() const { return time_; }
  std::uint64_t seq() const { return seq_; }
  bool queued() const { return is_linked(); }

 private:
  friend class EventQueue;
  TimeNs time_ = 0;
  std::uint64_t seq_ = 0;
};

struct EventOrder {
  bool operator()(const Event& a, const Event& b) const {
    return a.time() != b.time() ? a.time() < b.time() : a.seq() < b.seq();
  }
};

class EventQueue {
 public:
  using Tree = boost::intrusive::set<Event, boost::intrusive::compare<EventOrder>,
                                     boost::intrusive::constant_time_size<true>>;

  ~EventQueue() { tree_.clear(); }

  void push(Event& e, TimeNs at) {
    e.time_ = at;
    e.seq_ = next_seq_++;
    tree_.insert(e);
  }
  void remove(Event& e) {
    if (e.is_linked()) tree_.erase(tree_.iterator_to(e));
  }
  bool empty() const { return tree_.empty(); }
  std::size_t size() const { return tree_.size(); }
  Event& top() { return *tree_.begin(); }
  const Event& top() const { return *tree_.begin(); }
  Tree::iterator begin() { return tree_.begin(); }
  Tree::iterator end() { return tree_.end(); }

 private:
  Tree tree_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace bpftsim::sim
