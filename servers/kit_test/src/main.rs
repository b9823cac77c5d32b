//! `kit_test`: the pager kit's test, run as the first task (`init=kit_test`). It starts
//! `pattern_pager` (the guide's example, written with `libipc::pager::kit`), opens its
//! object through the standard `memory_object_server.open`, maps it and checks every byte:
//! read front to back it comes in whole clusters of 8 pages, read at random a page a
//! request; unmapped and mapped again (the kernel's `terminate`, then `init` again on the
//! same port) it still works; an unknown name is refused; and a pager whose backing keeps
//! the kernel's requests and answers them later (deferred replies) serves a forked child;
//! a clean stop writes back what a client wrote.
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

    pub fn report(name: &str, result: Result<(), String>) -> i32 {
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

/// A pager whose backing answers later ([`Backing::request`] with deferred replies): run in
/// this task, the object mapped by a forked child.
#[cfg(target_os = "none")]
mod deferred {
    use alloc::boxed::Box;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;
    use libipc::abi::syscall::{PAGE_SIZE, VM_ANYWHERE, VM_PROT_READ};
    use libipc::interface::{Deferred, Dispatch, Outbox, Pages, Replied, Reply};
    use libipc::ipc::{self, MessageBuffer};
    use libipc::pager::kit::{Backing, Pager};
    use libipc::pager::{PagerError, Supply};
    use libipc::sys;

    const PAGES: u64 = 32;

    /// Keeps every request and answers them all when told.
    #[derive(Default)]
    struct Later {
        waiting: Vec<(u64, u64, Deferred<Supply, PagerError>)>,
        answered: u64,
    }

    impl Backing for Later {
        type Object = ();

        fn open(&mut self, name: &str) -> Option<((), u64)> {
            (name == "later").then_some(((), PAGES * PAGE_SIZE))
        }

        fn request<'r>(
            &mut self,
            _object: &mut (),
            offset: u64,
            length: u64,
            _access: u32,
            reply: Reply<'r, Supply, PagerError>,
        ) -> Result<Replied, Reply<'r, Supply, PagerError>> {
            let (deferred, replied) = reply.defer();
            self.waiting.push((offset, length, deferred));
            Ok(replied)
        }
    }

    impl Later {
        /// Answers what waits: each word its offset times 5.
        fn answer(&mut self) {
            for (offset, length, deferred) in self.waiting.drain(..) {
                let answer = match Pages::allocate(length) {
                    Ok(mut pages) => {
                        for (i, word) in pages.as_mut_slice().chunks_exact_mut(8).enumerate() {
                            word.copy_from_slice(&((offset + 8 * i as u64) * 5).to_le_bytes());
                        }
                        Ok(Supply::Data(pages))
                    }
                    Err(_) => Err(PagerError::Failed(1)),
                };
                if deferred.send(answer).is_ok() {
                    self.answered += 1;
                }
            }
        }
    }

    /// The child reads every word; the pager answers its requests only between messages,
    /// when nothing came for 10 ms.
    pub fn deferred_replies_answer_later() -> Result<(), String> {
        let mut pager = Pager::new(Later::default()).map_err(|e| format!("pager: {e}"))?;
        let object = pager.open("later").map_err(|e| format!("open: {e:?}"))?;
        let task = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
            sys::Forked::Child => {
                let size = PAGES * PAGE_SIZE;
                let Ok(base) = sys::vm_map(0, size, VM_ANYWHERE, object.name(), 0, VM_PROT_READ)
                else {
                    sys::task_exit(100)
                };
                let wrong = (0..size).step_by(8).any(|at| {
                    // SAFETY: the object is mapped readable at `base` for `size` bytes.
                    let value = unsafe { core::ptr::read_volatile((base + at) as *const u64) };
                    value != at * 5
                });
                sys::task_exit(i32::from(wrong))
            }
            sys::Forked::Parent(task) => task,
        };
        drop(object);
        let set = pager.set().name();
        let mut buffer = Box::new(MessageBuffer::new());
        let mut outbox = Box::new(Outbox::new());
        let mut quiet = 0;
        // Until the child's end terminates the object (or 5 s of silence).
        while pager.counts("later").is_some_and(|c| c.terminates == 0) && quiet < 500 {
            match ipc::receive(set, &mut buffer, Some(10)) {
                Ok(received) => {
                    quiet = 0;
                    let _ = pager.dispatch(&received, &mut outbox);
                    if let Some(reply) = outbox.take_reply() {
                        let _ = ipc::send_message(&reply, Some(0));
                    }
                }
                Err(_) => {
                    quiet += 1;
                    pager.backing().answer();
                }
            }
        }
        let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"))?;
        let _ = sys::port_deallocate(task);
        let counts = pager.counts("later").unwrap_or_default();
        let answered = pager.backing().answered;
        if status != 0 {
            return Err(format!("the child ended with {status}"));
        }
        if counts.requests == 0 || counts.deferred != counts.requests || answered != counts.requests
        {
            return Err(format!(
                "{} requests, {} kept by the backing, {answered} answered later",
                counts.requests, counts.deferred
            ));
        }
        libipc::println!(
            "kit_test: {} requests for {} pages, each answered later",
            counts.requests,
            counts.pages_requested
        );
        Ok(())
    }
}

/// A clean stop ([`Pager::stop`]): what a client wrote reaches the backing before the
/// pager's ports go.
#[cfg(target_os = "none")]
mod stopping {
    use alloc::boxed::Box;
    use alloc::collections::BTreeMap;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;
    use libipc::abi::syscall::{PAGE_SIZE, VM_ANYWHERE, VM_PROT_READ, VM_PROT_WRITE};
    use libipc::interface::{Dispatch, Outbox, ReceiveRight};
    use libipc::ipc::{self, MessageBuffer, OutMessage};
    use libipc::pager::kit::{Backing, Pager};
    use libipc::pager::{object_of, PagerError};
    use libipc::sys;

    const PAGES: u64 = 8;
    /// The pages the child writes, and what it writes in each word.
    const WRITTEN: [u64; 2] = [2, 5];
    const MARK: u64 = 0x6b69_7400_0000_0000;

    /// Zero pages until written; written pages kept by their offset.
    #[derive(Default)]
    struct Notes {
        written: BTreeMap<u64, Vec<u8>>,
    }

    impl Backing for Notes {
        type Object = ();

        fn open(&mut self, name: &str) -> Option<((), u64)> {
            (name == "notes").then_some(((), PAGES * PAGE_SIZE))
        }

        fn read(&mut self, _: &mut (), offset: u64, pages: &mut [u8]) -> Result<(), PagerError> {
            for (i, page) in pages.chunks_exact_mut(PAGE_SIZE as usize).enumerate() {
                match self.written.get(&(offset + i as u64 * PAGE_SIZE)) {
                    Some(kept) => page.copy_from_slice(kept),
                    None => page.fill(0),
                }
            }
            Ok(())
        }

        fn write(&mut self, _: &mut (), offset: u64, pages: &[u8]) -> Result<(), PagerError> {
            for (i, page) in pages.chunks_exact(PAGE_SIZE as usize).enumerate() {
                self.written
                    .insert(offset + i as u64 * PAGE_SIZE, page.to_vec());
            }
            Ok(())
        }
    }

    /// A forked child writes two pages and says so; the pager stops; the backing holds the
    /// two pages as written.
    pub fn a_clean_stop_writes_back_what_a_client_wrote() -> Result<(), String> {
        let mut pager = Pager::new(Notes::default()).map_err(|e| format!("pager: {e}"))?;
        let object = pager.open("notes").map_err(|e| format!("open: {e:?}"))?;
        let told = ReceiveRight::allocate().map_err(|e| format!("port: {e}"))?;
        let tell = told.make_send().map_err(|e| format!("right: {e}"))?;
        pager.set().insert(&told).map_err(|e| format!("set: {e}"))?;
        let task = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
            sys::Forked::Child => {
                let size = PAGES * PAGE_SIZE;
                let protection = VM_PROT_READ | VM_PROT_WRITE;
                let Ok(base) = sys::vm_map(0, size, VM_ANYWHERE, object.name(), 0, protection)
                else {
                    sys::task_exit(100)
                };
                for page in WRITTEN {
                    for at in (page * PAGE_SIZE..(page + 1) * PAGE_SIZE).step_by(8) {
                        // SAFETY: the object is mapped writable at `base` for `size` bytes.
                        unsafe { core::ptr::write_volatile((base + at) as *mut u64, MARK + at) };
                    }
                }
                let _ = ipc::send_message(&OutMessage::new(1, tell.name()), Some(1000));
                // The parent ends this task once the pager has stopped.
                loop {
                    libipc::rt::sleep_ms(1000);
                }
            }
            sys::Forked::Parent(task) => task,
        };
        drop((object, tell));
        let set = pager.set().name();
        let mut buffer = Box::new(MessageBuffer::new());
        let mut outbox = Box::new(Outbox::new());
        let mut heard = false;
        for _ in 0..500 {
            let Ok(received) = ipc::receive(set, &mut buffer, Some(10)) else {
                continue;
            };
            if object_of(&received) == told.name() {
                heard = true;
                break;
            }
            let _ = pager.dispatch(&received, &mut outbox);
            if let Some(reply) = outbox.take_reply() {
                let _ = ipc::send_message(&reply, Some(0));
            }
        }
        let (notes, stopped) = pager.stop();
        let _ = sys::task_terminate(task);
        let _ = sys::task_wait(task);
        let _ = sys::port_deallocate(task);
        if !heard {
            return Err(String::from("the child never said it had written"));
        }
        stopped.map_err(|e| format!("stop: {e:?}"))?;
        for page in WRITTEN {
            let Some(kept) = notes.written.get(&(page * PAGE_SIZE)) else {
                return Err(format!(
                    "page {page} was not written back; the backing holds {:?}",
                    notes
                        .written
                        .keys()
                        .map(|o| o / PAGE_SIZE)
                        .collect::<Vec<_>>()
                ));
            };
            for (i, word) in kept.chunks_exact(8).enumerate() {
                let at = page * PAGE_SIZE + 8 * i as u64;
                let value = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                if value != MARK + at {
                    return Err(format!("the word at {at:#x} was kept as {value:#x}"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    let _ = args;
    let mut failed = cases::run();
    failed += cases::report(
        "deferred_replies_answer_later",
        deferred::deferred_replies_answer_later(),
    );
    failed += cases::report(
        "a_clean_stop_writes_back_what_a_client_wrote",
        stopping::a_clean_stop_writes_back_what_a_client_wrote(),
    );
    libipc::println!("{} passed, {} failed", 6 - failed, failed);
    failed
}

#[cfg(not(target_os = "none"))]
fn main() {}
