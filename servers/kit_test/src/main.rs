//! `kit_test`: the pager kit's test, run as the first task (`init=kit_test`). It starts
//! `pattern_pager` (the guide's example, written with `libipc::pager::kit`), opens its
//! object through the standard `memory_object_server.open`, maps it and checks every byte:
//! read front to back it comes in whole clusters of 8 pages, read at random a page a
//! request; unmapped and mapped again (the kernel's `terminate`, then `init` again on the
//! same port) it still works; an unknown name is refused.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
mod cases {
    use alloc::format;
    use alloc::string::String;
    use libipc::abi::syscall::{
        PAGE_SIZE, VM_ANYWHERE, VM_BEHAVIOR_RANDOM, VM_BEHAVIOR_SEQUENTIAL, VM_PROT_READ,
    };
    use libipc::interface::{RemoteError, SendRight};
    use libipc::pager::{memory_object_server, PagerError};
    use libipc::sys;

    const PAGES: u64 = 64;

    fn statistics() -> (u64, u64) {
        let s = sys::vm_statistics().expect("vm_statistics");
        (s.requests(), s.requested_pages())
    }

    /// Maps the object `object` names, reads its pages in `order` with `behavior`, checks
    /// every word, unmaps it; the pages per `data_request` meanwhile, in hundredths.
    fn scan(
        object: &SendRight,
        behavior: u64,
        order: impl Iterator<Item = u64>,
    ) -> Result<u64, String> {
        let size = PAGES * PAGE_SIZE;
        let base = sys::vm_map(0, size, VM_ANYWHERE, object.name(), 0, VM_PROT_READ)
            .map_err(|e| format!("vm_map: {e}"))?;
        sys::vm_behavior_set(base, size, behavior).map_err(|e| format!("behavior: {e}"))?;
        let before = statistics();
        let mut wrong = None;
        for page in order {
            for word in 0..PAGE_SIZE / 8 {
                let offset = page * PAGE_SIZE + word * 8;
                // SAFETY: the object is mapped readable at `base` for `size` bytes.
                let value = unsafe { core::ptr::read_volatile((base + offset) as *const u64) };
                if value != offset * 3 && wrong.is_none() {
                    wrong = Some((offset, value));
                }
            }
        }
        let after = statistics();
        // SAFETY: the mapping is ours and nothing refers to it any more.
        unsafe { sys::vm_deallocate(base, size) }.map_err(|e| format!("unmap: {e}"))?;
        if let Some((offset, value)) = wrong {
            return Err(format!("the word at {offset:#x} holds {value:#x}"));
        }
        let (requests, pages) = (after.0 - before.0, after.1 - before.1);
        if requests == 0 {
            return Err(String::from("no data_request was sent"));
        }
        Ok(pages * 100 / requests)
    }

    pub fn run() -> i32 {
        let (_task, service) =
            match libipc::names::spawn_registered("pattern_pager", "pattern_pager", 5000) {
                Ok(started) => started,
                Err(error) => {
                    libipc::println!("kit_test: starting pattern_pager: {error}");
                    return 1;
                }
            };
        let mut pager = memory_object_server::Client::new(service);
        let object = match pager.open("pattern".into()) {
            Ok(object) => object,
            Err(error) => {
                libipc::println!("kit_test: open: {error}");
                return 1;
            }
        };
        let sequential = scan(&object, VM_BEHAVIOR_SEQUENTIAL, 0..PAGES);
        // Mapped again: `init` again, on the same port; every seventh page, wrapping.
        let random = scan(
            &object,
            VM_BEHAVIOR_RANDOM,
            (0..PAGES).map(|i| i * 7 % PAGES),
        );
        let reopened = pager
            .open("pattern".into())
            .map(|again| again.name() == object.name());
        let unknown = pager.open("nothing".into()).err();
        report(
            "sequential_reads_come_in_whole_clusters",
            match sequential {
                Ok(800) => Ok(()),
                Ok(per) => Err(format!(
                    "{}.{:02} pages per request, not 8.00",
                    per / 100,
                    per % 100
                )),
                Err(why) => Err(why),
            },
        ) + report(
            "random_reads_come_a_page_a_request_after_a_second_init",
            match random {
                Ok(100) => Ok(()),
                Ok(per) => Err(format!(
                    "{}.{:02} pages per request, not 1.00",
                    per / 100,
                    per % 100
                )),
                Err(why) => Err(why),
            },
        ) + report(
            "open_gives_the_same_object_again",
            match reopened {
                Ok(true) => Ok(()),
                other => Err(format!("{other:?}")),
            },
        ) + report(
            "an_unknown_name_is_refused",
            match unknown {
                Some(RemoteError::Server(PagerError::OutOfRange)) => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
    }

    fn report(name: &str, result: Result<(), String>) -> i32 {
        match result {
            Ok(()) => {
                libipc::println!("ktest kit_{name} ok");
                0
            }
            Err(why) => {
                libipc::println!("ktest kit_{name} FAILED: {why}");
                1
            }
        }
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    let _ = args;
    let failed = cases::run();
    libipc::println!("{} passed, {} failed", 4 - failed, failed);
    failed
}

#[cfg(not(target_os = "none"))]
fn main() {}
