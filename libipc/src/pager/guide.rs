//! # Writing a pager
//!
//! A pager is an ordinary task that owns memory objects: it decides what their pages
//! contain, where they are kept while the kernel does not hold them, and what happens when
//! they cannot be had. The kernel caches the pages, maps them into tasks, and asks the pager
//! when a page is missing or when it needs memory back.
//!
//! ## Start here: a pager in sixty lines
//!
//! [`kit`](super::kit) does what every pager repeats. You say what an object holds:
//!
//! ```ignore
//! struct Pattern;
//! impl libipc::pager::kit::Backing for Pattern {
//!     // What the pager keeps per object: nothing, the pages are computed.
//!     type Object = ();
//!     // `open("pattern")`: an object of 64 pages.
//!     fn open(&mut self, name: &str) -> Option<((), u64)> {
//!         (name == "pattern").then_some(((), 64 * PAGE_SIZE))
//!     }
//!     // Fill a cluster's pages from `offset`: here each word is its offset times 3.
//!     fn read(&mut self, _object: &mut (), offset: u64, pages: &mut [u8]) -> Result<(), PagerError> {
//!         for (i, word) in pages.chunks_exact_mut(8).enumerate() {
//!             word.copy_from_slice(&((offset + 8 * i as u64) * 3).to_le_bytes());
//!         }
//!         Ok(())
//!     }
//!     fn cluster_pages(&self, _object: &()) -> u32 {
//!         8
//!     }
//! }
//! ```
//!
//! and run it: `Pager::new(Pattern)?`, `pager.register(&mut names, "pattern_pager")?`,
//! `pager.serve()`. That is `servers/pattern_pager`, whole. A client looks the pager up,
//! calls [`memory_object_server`](super::memory_object_server)`.open("pattern")` for a send
//! right to the object, and maps it with [`vm_map`](crate::sys::vm_map); `servers/kit_test`
//! does, and checks every byte: read front to back the pages come a cluster (8 pages) per
//! request, at random a page per request. What the kit does for you: the port set, a port
//! per object (the same one each time it is opened), `init` (and `init` again when the
//! object is mapped again after the kernel's `terminate`, which keeps nothing but the
//! port), allocating the pages it supplies, `data_return` (kept with an optional `write`,
//! else given back: nothing is lost), a client's `sync` (the object's changed pages written
//! back through `write`), per-object counters (`Pager::counts`), and a clean stop
//! (`Pager::stop`: every object written back before the ports go).
//!
//! ## Your own pager: `cargo image new-pager NAME`
//!
//! `cargo image new-pager NAME` copies `servers/template_pager` (writable objects, computed
//! until written, the written pages kept in memory) and its client and test,
//! `servers/template_pager_test`, to `servers/NAME` and `servers/NAME_test`, adds them to the
//! workspace and the boot manifest, and adds `tests/tests/NAME.rs`. It boots and passes at
//! once: `cargo image run -- init=NAME_test`, or `cargo image test -- -p kernel-tests --test
//! NAME`. Then change the template's `open` (which names exist), `read` (what unwritten pages
//! hold) and `write` (where written pages go), and the test with them.
//!
//! ## Pagers of the kernel's own objects
//!
//! The kernel makes objects itself, on the default pager (anonymous memory it pages out,
//! `default_pager.create`) and the program pager (program files, `program_pager.create`).
//! The kit serves those too: implement [`Backing::create`](super::kit::Backing::create) or
//! [`Backing::create_program`](super::kit::Backing::create_program) and keep what you need in
//! [`Backing::Object`](super::kit::Backing::Object); such an object ends at its `terminate`
//! ([`Backing::terminated`](super::kit::Backing::terminated)). `servers/bootfs` is the
//! program pager written this way (and opens any boot-archive file to clients), `servers/zpager`
//! the compressing default pager: it overrides [`Backing::supply`](super::kit::Backing::supply)
//! (zero-filled ranges, part of a cluster, pages from the backing store it may be stacked in
//! front of) and [`Backing::keep`](super::kit::Backing::keep) (returns it may refuse, moved
//! rather than copied). A kit pager runs collocated in the kernel as it runs as a task:
//! [`Pager`](super::kit::Pager) is a [`DirectPager`](crate::hosted::DirectPager).
//!
//! The rest of this guide is the protocol underneath, which the kit speaks for you, through
//! the pagers in the tree that speak it themselves:
//!
//! - `servers/pager_test` (`TestPager` in `src/cases.rs`): a pager that misbehaves on
//!   purpose (errors, silence, oversized answers, death), with the tests that show what the
//!   kernel does about each.
//! - `default-pager`: the disk default pager. Its replies wait for the disk (deferred
//!   replies), its objects come from two interfaces (the kernel's `create`, and
//!   `backing_store.create` from a zpager stacked in front of it), and it pages in clusters
//!   laid out on the disk.
//!
//! ## Objects, ports and the two interfaces
//!
//! A memory object is a port whose receive right the pager holds. A task maps it with
//! [`vm_map`](crate::sys::vm_map) (given a send right to it), or the kernel makes one itself
//! and hands the receive right over (`default_pager.create`, `program_pager.create`). The
//! kernel then calls [`memory_object`](super::memory_object) on that port, and the pager
//! calls [`memory_control`](super::memory_control) on the object's *control port*, a kernel
//! port whose send right comes with `init` or `create`. Every routine is a remote procedure
//! call declared with [`interface!`](crate::interface!): the pager implements
//! `memory_object::Server`, and uses `memory_control::Client` on its control right.
//!
//! A pager serving many objects puts their ports in one [`PortSet`](crate::ipc::PortSet)
//! and tells requests apart by the port they arrived on, [`object_of`](super::object_of).
//! A hand-written dispatcher is this pattern (the kit's is the same):
//!
//! ```ignore
//! impl Dispatch for MyPager {
//!     fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
//!         let on = object_of(request);
//!         let Some(object) = self.objects.get_mut(&on) else {
//!             // On the pager's own port: the kernel's `create`.
//!             return default_pager::dispatch(self, request, outbox);
//!         };
//!         memory_object::dispatch(&mut ObjectServer { object }, request, outbox)
//!     }
//! }
//! ```
//!
//! and [`serve`](crate::interface::serve) runs the loop (one `mach_msg` per request: the
//! reply to one goes with the receive of the next).
//!
//! ## `init`: attributes first
//!
//! The first time an object is mapped the kernel sends `init(control, size)` and waits for
//! the answer before it asks for anything (faults on the object wait meanwhile). The answer
//! is the object's [`Attributes`](super::Attributes): above all `cluster_pages`, the cluster
//! size, a power of two from 1 to 16 pages (4 if you have no reason to choose). Objects the
//! kernel creates get the same question as `create`.
//!
//! The cluster is the unit of transfer: the kernel never asks for, or returns, more than one
//! cluster at a time, and clusters are aligned on their size, so a pager backed by a disk
//! can give each cluster a contiguous place. Large clusters suit data read front to back
//! (program text: bootfs uses 8); small ones suit random access.
//!
//! ## `data_request`: supplying pages
//!
//! A fault on an absent page sends one `data_request(offset, length, access)` for a run of
//! pages inside one cluster: the faulting page plus what the region's access strategy
//! predicts (`vm_behavior_set`: normal asks one page ahead, sequential to the cluster's end,
//! reverse back to its start, random nothing more), cut short by pages that are resident or
//! already asked for and by the object's end. The faulting thread waits without a kernel
//! stack; a system call that touched the page runs again once it is there.
//!
//! The answer is a [`Supply`](super::Supply):
//!
//! - `Supply::Data(pages)`: the contents from `offset` on, at least one page and at most
//!   `length`. [`Pages`](crate::interface::Pages) is memory of the pager's own that moves to
//!   the kernel with the reply: allocate it, fill it, send it; it is not copied and it
//!   leaves the pager's address space. A file's bytes, say:
//!
//!   ```ignore
//!   let mut pages = Pages::allocate(length)?;
//!   let end = (offset + length).min(file.len);
//!   let source = &file.data.as_slice()[offset as usize..end as usize];
//!   pages.as_mut_slice()[..source.len()].copy_from_slice(source);
//!   reply.ok(Supply::Data(pages))
//!   ```
//!
//!   (The kit's default [`Backing::supply`](super::kit::Backing::supply) is this, with
//!   your `read` filling the pages.)
//!
//! - `Supply::Unavailable`: there is no data; the kernel zero-fills.
//! - An error ([`PagerError`](super::PagerError)) is the request's first page's: the threads
//!   faulting on that page get a memory error (a fault in user mode ends the task with a
//!   report; a system call returns `KernReturn::MemoryError`); those waiting for later pages
//!   of the request fault again, and their requests stop short of the lost page. So a pager
//!   whose read of a run fails on one page answers the good pages before it (a shorter
//!   supply) and fails that page alone.
//!
//! A pager that must wait for its backing store (a disk) defers the reply:
//! `let (deferred, replied) = reply.defer();` keeps the reply right in `deferred`, and
//! `deferred.send(Ok(supply))` answers later. The server loop goes on meanwhile. With the
//! kit, that is [`Backing::request`](super::kit::Backing::request); `kit_test`'s
//! `deferred_replies_answer_later` is an example.
//!
//! Pages supplied ahead of the fault are counted as prefetched, and as used when a fault
//! later finds them: `vm_statistics` shows how well the strategy guessed.
//!
//! ## `data_return`: taking pages back
//!
//! When memory runs short the pageout daemon frees clean pages (their pager has them) and
//! sends dirty ones back with `data_return(offset, pages, dirty)`, a run inside one cluster,
//! built around the least recently used page with neighbours that are dirty and not used
//! recently. The pages move to the pager like a supply in reverse. Answer
//! [`Returned::Stored`](super::Returned::Stored) once they are safe, and supply them again
//! when asked; or [`Returned::Refused`](super::Returned::Refused) with the pages if you cannot
//! keep them: the kernel then keeps them dirty, and nothing is lost. Until the answer comes,
//! faults on those pages wait; the kernel limits the pages in flight to one pager and never
//! waits on a pager to free memory. zpager stores returns compressed and refuses when its
//! store cannot grow.
//!
//! ## `terminate`
//!
//! When no task maps an object any more the kernel returns the pages written since the
//! pager had them (`data_return`, as pageout does), drops the rest and the control port,
//! and sends `terminate`. What comes next depends on who made the object:
//!
//! - An object the kernel made (`create`) is gone: drop everything you kept for it, and its
//!   port.
//! - An object you made and gave clients a right to may be mapped again with that right:
//!   the kernel then sends `init` again, on the same port. Keep the port (and whatever data
//!   the object should keep); drop only the control right. A pager that destroys the port
//!   fails that client with a memory error.
//!
//! ## Calls on the control port
//!
//! - `data_supply(offset, pages)`: data the kernel did not ask for (pre-loading, or a late
//!   answer); pages already resident are kept.
//! - `data_unavailable(offset, length)`, `data_error(offset, length, code)`: answer threads
//!   waiting for those pages, outside a reply.
//! - `lock_request(offset, length, clean, flush)`: `clean` sends the range's dirty pages back
//!   with `data_return` (copies: the pages stay, clean); `flush` takes the range from every
//!   task and the kernel's cache (the next access asks again; with `clean` too, its dirty
//!   pages come back first, moved). Replied when done.
//! - `set_attributes(attributes)`: a new cluster size for later requests.
//!
//! A range must be page-aligned, inside the object and inside one cluster; the kernel
//! refuses anything else with a [`ControlError`](super::ControlError) and counts it.
//!
//! ## When things go wrong
//!
//! The kernel does not trust pagers. A pager that dies (its object port is destroyed) leaves
//! its objects' resident pages in place and gives every thread waiting for one, and every
//! later fault on an absent one, a memory error. A pager that never answers costs a waiting
//! thread at most `pager_timeout` milliseconds (a kernel command-line option; 5 s by
//! default), then a memory error. An answer of the wrong size, to a request that is not
//! pending, or a malformed one is rejected and counted (`pager_rejects`). `pager_test` has a
//! case for each.
//!
//! ## The default pager and the program pager
//!
//! A default pager registers its port with the name service under
//! [`DEFAULT_PAGER_NAME`](super::DEFAULT_PAGER_NAME); bootstrap then calls
//! `host_set_default_pager`. The kernel creates an object on it (`default_pager.create`) for
//! each anonymous object it first pages out, and asks back only pages it returned. The task
//! serving the default pager is VM-privileged: it may take the last free pages (it frees
//! memory by taking it in), and its own memory is never paged out. It must never wait on a
//! page of its own objects.
//!
//! A program pager registers under [`PROGRAM_PAGER_NAME`](super::PROGRAM_PAGER_NAME);
//! bootstrap calls `host_set_program_pager`. Programs loaded from then on map their text from
//! objects the kernel creates on it (`program_pager.create`, which brings the file's
//! contents).
//!
//! ## Watching and testing a pager
//!
//! [`sys::vm_statistics`](crate::sys::vm_statistics) returns the counters: requests and
//! returns by size in pages, pages in and out, pages prefetched and used, rejects, timeouts
//! and memory errors. `cargo image bench pager --icount` measures a fault's round trip
//! through a user pager and the pages per request of sequential and random scans.
//!
//! To test a pager, fork: the child maps the object and touches it, the parent serves until
//! the kernel terminates the object, then checks what it was asked for and how the child
//! ended. `pager_test`'s `with_pager` does exactly that in forty lines.
