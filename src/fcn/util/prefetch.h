// Work done ahead by a pool of threads: item i of [first, end) is made by make(i) on some worker,
// and next() hands the items back in order, each as soon as it is ready. At most `depth` items
// are made ahead of the consumer (a bounded queue). With 0 workers next() makes the item itself,
// so the two give the same items whenever make(i) depends on i alone. An exception thrown by
// make(i) is rethrown by the next() that asks for item i.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <algorithm>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace fcn {

template <class Item>
class Prefetcher {
 public:
  Prefetcher(int64_t first, int64_t end, int64_t workers, int64_t depth, std::function<Item(int64_t)> make)
      : next_(first), end_(end), claimed_(first), depth_(std::max<int64_t>(depth, 1)), make_(std::move(make)) {
    try {
      threads_.reserve(static_cast<size_t>(std::max<int64_t>(workers, 0)));
      for (int64_t w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
    } catch (...) {  // the system refused a thread: the ones started stop before the error leaves
      stop();
      throw;
    }
  }
  ~Prefetcher() { stop(); }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next item in order; `waited` (if given) gets the seconds spent waiting for it.
  Item next(double* waited = nullptr) {
    const auto start = std::chrono::steady_clock::now();
    Item item;
    if (threads_.empty()) {
      item = make_(next_++);
    } else {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] { return ready_.count(next_) > 0; });
      auto slot = std::move(ready_.at(next_));
      ready_.erase(next_++);
      lock.unlock();
      changed_.notify_all();
      if (slot.error) std::rethrow_exception(slot.error);
      item = std::move(slot.item);
    }
    if (waited != nullptr) *waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return item;
  }

 private:
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
  }

  struct Slot {
    Item item;
    std::exception_ptr error;
  };

  void work() {
    for (;;) {
      int64_t index;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [this] { return stopping_ || (claimed_ < end_ && claimed_ < next_ + depth_); });
        if (stopping_) return;
        index = claimed_++;
      }
      Slot slot;
      try {
        slot.item = make_(index);
      } catch (...) {
        slot.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_.emplace(index, std::move(slot));
      }
      changed_.notify_all();
    }
  }

  int64_t next_, end_, claimed_, depth_;
  std::function<Item(int64_t)> make_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<int64_t, Slot> ready_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace fcn
