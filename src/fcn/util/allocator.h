// A CPU allocator for large tensors. Why: glibc serves every block over 32 MiB with a fresh mmap
// and gives it back on free, so each forward pass of a 500x500 FCN (125 MiB activations at conv1)
// page-faults in ~1 GiB of zeroed 4 KiB pages. On the 2-core VM this project is measured on, that
// fault work took 60% of FCN-8s inference (3.0 s -> 1.2 s per image with huge pages; see
// docs/benchmarks.md). LibTorch 1.13 offers no such CPU allocator outside mobile builds, so:
//  - blocks >= 1 MiB are mmapped 2 MiB-aligned and advised for transparent huge pages (one fault
//    per 2 MiB instead of per 4 KiB); freed, they are recycled within the peak: a later request
//    takes a freed block that holds it, or freed blocks' pages moved together (mremap), and only
//    what is not there is faulted in, while blocks in use plus freed never exceed the most ever in
//    use at once, so resident memory peaks where it would if every free unmapped (FCN-8s 500^2:
//    a repeated forward pass faults in almost nothing, at the same peak);
//  - optionally, freed large blocks are kept (up to a byte budget, FCN_CPU_CACHE_MIB) and reused
//    for requests of the same size class: no faults and no page zeroing at all after the first
//    image (FCN-8s 500^2: 1.2 s -> 1.05 s), for ~0.9 GiB more resident memory;
//  - smaller blocks go to c10's own aligned allocation, from glibc's heap, which is set to keep
//    them (mmap threshold 1 MiB, 64 MiB of freed top kept: glibc's own rule would map, fault in
//    and unmap every 128 KiB - 1 MiB tensor at each step, as it never sees the large frees that
//    raise its thresholds; small nets' training steps ran 1.4-2x slower; allocator.cpp).
// install_cpu_allocator() swaps it in for all LibTorch CPU tensors of the process (tensors that
// already exist keep their own deleter, so installing late is safe). The fcn CLI installs it at
// start; FCN_CPU_ALLOCATOR=system keeps LibTorch's default.
#pragma once

#include <cstddef>
#include <string>

namespace fcn {

struct CpuAllocatorStats {
  size_t cache_limit_bytes = 0;
  size_t cached_bytes = 0;     // freed large blocks kept for reuse
  size_t reused = 0;           // large allocations served (wholly or partly) from freed blocks
  size_t mapped = 0;           // large allocations that needed fresh pages
  size_t fresh_bytes = 0;      // bytes of fresh pages so far: each faulted in and zeroed by the kernel
  size_t live_bytes = 0;       // large blocks in use now
  size_t peak_live_bytes = 0;  // the most in use at once (since the last release_cached_cpu_memory)
};

// Installs the allocator (idempotent). `cache_limit_bytes` bounds the freed blocks kept; 0 takes
// FCN_CPU_CACHE_MIB from the environment, else keeps none (a nonzero limit given to a later call
// replaces the budget). Returns false when
// FCN_CPU_ALLOCATOR=system.
bool install_cpu_allocator(size_t cache_limit_bytes = 0);
bool cpu_allocator_installed();
CpuAllocatorStats cpu_allocator_stats();
// Changes the byte budget of the block cache (trims it first).
void set_cpu_cache_limit(size_t bytes);
// Training repeats the same shapes every step: `fcn train`/`pretrain`/`bench --mode train` run
// fcn's huge pages with freed blocks recycled within the peak, so a step reuses the last step's
// blocks (FCN-8s VGG16 320^2 train step: 3.2 s -> 2.5 s against unmapping every freed block). Until
// 2026-12-04 training kept a block cache of 1/4 of physical memory (at most 4 GiB) instead: as fast,
// at 0.6 GiB more peak memory for that step. FCN_CPU_CACHE_MIB, when set, keeps its budget.
void use_cpu_allocator_for_training();
// Unmaps every cached block (e.g. after a burst of large images).
void release_cached_cpu_memory();

// The three policies the fast-path tuner (fcn/infer/fast_path.h) times against each other: which
// one wins depends on the CPU and its kernel (measured: huge pages won on the AVX-512 VMs, glibc's
// own allocation on an AVX2 EPYC while fcn's unmapped every freed block; recycling them, huge pages
// win on the AVX2 proxy by 2.3x; docs/benchmarks.md).
enum class CpuAllocatorPolicy {
  kSystem,      // LibTorch's default allocator (glibc's heap up to 32 MiB, its rule's own ceiling)
  kHugePages,   // fcn's: large blocks on huge pages, freed ones recycled within the peak of blocks in use
  kBlockCache,  // fcn's, keeping freed large blocks by size class, up to 1/4 of physical memory (at most 4 GiB)
};
// Switches the allocator of every later CPU allocation (tensors that exist keep their own
// deleter). FCN_CPU_ALLOCATOR=system pins kSystem and FCN_CPU_CACHE_MIB the cache budget: the
// user's environment wins. Returns the policy now in force.
CpuAllocatorPolicy set_cpu_allocator_policy(CpuAllocatorPolicy policy);
CpuAllocatorPolicy cpu_allocator_policy();
const char* policy_name(CpuAllocatorPolicy policy);  // "system" | "huge_pages" | "block_cache"
// fcn::Error naming `subject` for an unknown name.
CpuAllocatorPolicy parse_allocator_policy(const std::string& name, const std::string& subject);

}  // namespace fcn
