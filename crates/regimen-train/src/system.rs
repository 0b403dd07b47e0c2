//! Process-level concerns: peak memory, and the allocator setting that training needs.

use burn::tensor::Device;

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if the platform tells.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes reserved on the device by its memory pool (GPU backends), if it has one.
pub fn device_memory_bytes(device: &Device) -> Option<u64> {
    device.memory_pool_usage().map(|usage| usage.bytes_reserved)
}

/// Keeps freed memory in the process instead of returning it to the operating system.
///
/// A training step allocates and frees the same large buffers (activations, gradients, batches)
/// every time. With glibc's defaults, buffers above 128 KiB are mapped and unmapped per step and
/// the heap is trimmed after each free, so every step faults in and zeroes fresh pages: a third of
/// an MLP step went to the kernel, and this setting doubled its throughput (see BENCHMARKS.md).
/// It raises the mmap threshold to its maximum (32 MiB), stops the main thread from mapping even
/// larger blocks (a checkpoint of a 100 MB model encodes 4× faster and loads 3× faster when its
/// buffers are reused rather than faulted in afresh) and disables trimming. It also keeps every
/// thread on the main thread's arena, whose memory those settings keep warm: a helper thread
/// otherwise allocates from an arena of its own, empty at first, and encoding a checkpoint's
/// optimizer state on one made saves take 0.41–0.44 s instead of 0.13–0.19 s. The same effect as
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=…:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=…:glibc.malloc.arena_max=1`.
/// The cost is that peak heap memory stays reserved until the process exits, which suits a
/// training process.
///
/// Call it once at the start of `main`, before other threads start. It does nothing on platforms
/// other than Linux with glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; it is called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        // Larger blocks too come from the heap and are reused.
        libc::mallopt(libc::M_MMAP_MAX, 0);
        // Every thread allocates from that one heap.
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
