//! The census of kernel resources the fuzzer takes before and after a round: what every task
//! it made must give back once gone.

/// Kernel resources at one moment (from `host_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub free_frames: u64,
    /// Pages the kernel heap holds, in use or cached.
    pub heap_pages: u64,
    /// Bytes of the kernel heap in use.
    pub heap_bytes: u64,
    pub ports: u64,
    pub tasks: u64,
    pub threads: u64,
    pub vm_objects: u64,
    pub timers: u64,
}

impl Census {
    /// The kernel's resources now (`host_info`; a count it will not give reads as 0).
    #[cfg(target_os = "none")]
    pub fn take() -> Census {
        use libipc::abi::syscall::*;
        let info = |selector| libipc::sys::host_info(selector).unwrap_or(0);
        Census {
            free_frames: info(HOST_FREE_FRAMES),
            heap_pages: info(HOST_HEAP_PAGES),
            heap_bytes: info(HOST_HEAP_BYTES),
            ports: info(HOST_PORTS),
            tasks: info(HOST_TASKS),
            threads: info(HOST_THREADS),
            vm_objects: info(HOST_VM_OBJECTS),
            timers: info(HOST_TIMERS),
        }
    }

    /// The census once it has stopped changing (three samples `every_ms` apart the same),
    /// or the last of `tries` samples: what a machine left quiet holds, deferred releases
    /// done.
    #[cfg(target_os = "none")]
    pub fn quiet(every_ms: u64, tries: u32) -> Census {
        let mut last = Census::take();
        let mut same = 0;
        for _ in 0..tries {
            libipc::rt::sleep_ms(every_ms);
            let now = Census::take();
            same = if now == last { same + 1 } else { 0 };
            last = now;
            if same == 3 {
                break;
            }
        }
        last
    }
}

/// What a round kept that it should have given back (after minus before; negative: more
/// came back than was there, which is no leak).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leak {
    /// Frames neither free nor held by the heap (whose pages are counted by its bytes).
    pub frames: i64,
    pub heap_bytes: i64,
    pub ports: i64,
    pub tasks: i64,
    pub threads: i64,
    pub vm_objects: i64,
    pub timers: i64,
}

fn grew(before: u64, after: u64) -> i64 {
    after as i64 - before as i64
}

impl Leak {
    /// What `after` holds beyond `before`.
    pub fn between(before: &Census, after: &Census) -> Leak {
        Leak {
            frames: grew(
                after.free_frames + after.heap_pages,
                before.free_frames + before.heap_pages,
            ),
            heap_bytes: grew(before.heap_bytes, after.heap_bytes),
            ports: grew(before.ports, after.ports),
            tasks: grew(before.tasks, after.tasks),
            threads: grew(before.threads, after.threads),
            vm_objects: grew(before.vm_objects, after.vm_objects),
            timers: grew(before.timers, after.timers),
        }
    }

    /// Whether nothing was kept.
    pub fn is_none(&self) -> bool {
        [
            self.frames,
            self.heap_bytes,
            self.ports,
            self.tasks,
            self.threads,
            self.vm_objects,
            self.timers,
        ]
        .iter()
        .all(|kept| *kept <= 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn census(free_frames: u64, heap_pages: u64, heap_bytes: u64, ports: u64) -> Census {
        Census {
            free_frames,
            heap_pages,
            heap_bytes,
            ports,
            tasks: 2,
            threads: 2,
            vm_objects: 10,
            timers: 0,
        }
    }

    #[test]
    fn frames_the_heap_caches_are_not_a_leak_but_its_bytes_are() {
        let before = census(1000, 10, 40_000, 5);
        // Two frames moved from free into the heap's cache; its bytes in use the same.
        assert!(Leak::between(&before, &census(998, 12, 40_000, 5)).is_none());
        let kept = Leak::between(&before, &census(997, 12, 40_448, 6));
        assert_eq!(kept.frames, 1);
        assert_eq!(kept.heap_bytes, 448);
        assert_eq!(kept.ports, 1);
        assert!(!kept.is_none());
        // More back than before is no leak.
        assert!(Leak::between(&before, &census(1010, 10, 39_000, 4)).is_none());
    }
}
