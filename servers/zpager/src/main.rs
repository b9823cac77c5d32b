//! `zpager`: the compressing in-memory default pager. It keeps the anonymous memory the
//! kernel pages out LZ4-compressed in its own memory (the store is `zpager`'s library).
//!
//! Its first start argument is a send right to a name service: it registers its default
//! pager port there under [`DEFAULT_PAGER_NAME`] (bootstrap then makes it the kernel's
//! default pager) and serves forever. Its second start argument, when not 0, is the most
//! bytes of page contents it keeps; past that it refuses returns (tests use it).
//!
//! The kernel's `default_pager::create` gives it an object's port (the receive right) and
//! control port; the object's port joins zpager's port set, and the requests on it
//! (`memory_object`) are told apart by the port they arrive on.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
mod pager {
    use hashbrown::HashMap;
    use libipc::interface::{
        Dispatch, Dispatched, Outbox, Pages, PortSet, ReceiveRight, Replied, Reply, SendRight,
    };
    use libipc::ipc::{Name, Received};
    use libipc::pager::{
        default_pager, memory_object, object_of, Attributes, PagerError, Returned, Supply,
    };
    use libipc::println;
    use zpager::{failure, ObjectPages, Store, StoreError};

    /// A memory object zpager keeps pages of.
    struct Object {
        pages: ObjectPages,
        /// Its port: dropping it destroys the port, which leaves the set.
        port: ReceiveRight,
        /// Its control port (none for an object mapped with `vm_map` until `init`). Kept for
        /// the object's life, unused for now.
        control: Option<SendRight>,
    }

    /// The pager: its port, its objects by port name, and the store.
    pub struct Zpager<'a> {
        set: &'a PortSet,
        port: Name,
        objects: HashMap<Name, Object>,
        store: Store,
    }

    impl<'a> Zpager<'a> {
        /// A pager whose default-pager port is `port`, adding objects' ports to `set`.
        pub fn new(set: &'a PortSet, port: &ReceiveRight, store: Store) -> Self {
            Zpager {
                set,
                port: port.name(),
                objects: HashMap::new(),
                store,
            }
        }
    }

    impl default_pager::Server for Zpager<'_> {
        fn create(
            &mut self,
            object: ReceiveRight,
            control: SendRight,
            size: u64,
            reply: Reply<'_, Attributes, PagerError>,
        ) -> Replied {
            if self.objects.try_reserve(1).is_err() {
                return reply.err(PagerError::Failed(failure::NO_MEMORY));
            }
            if let Err(error) = self.set.insert(&object) {
                return reply.err(PagerError::Failed(error as u32));
            }
            let record = Object {
                pages: ObjectPages::new(size),
                port: object,
                control: Some(control),
            };
            self.objects.insert(record.port.name(), record);
            reply.ok(Attributes::default())
        }
    }

    /// The `memory_object` server for one object.
    struct ObjectServer<'a> {
        object: &'a mut Object,
        store: &'a mut Store,
        terminated: bool,
    }

    impl memory_object::Server for ObjectServer<'_> {
        fn init(
            &mut self,
            control: SendRight,
            _size: u64,
            reply: Reply<'_, Attributes, PagerError>,
        ) -> Replied {
            self.object.control = Some(control);
            reply.ok(Attributes::default())
        }

        fn data_request(
            &mut self,
            offset: u64,
            length: u64,
            _access: u32,
            reply: Reply<'_, Supply, PagerError>,
        ) -> Replied {
            match self.store.request(&self.object.pages, offset, length) {
                Ok(true) => {}
                Ok(false) => return reply.ok(Supply::Unavailable),
                Err(_) => return reply.err(PagerError::OutOfRange),
            }
            let Ok(mut pages) = Pages::allocate(length) else {
                return reply.err(PagerError::Failed(failure::NO_MEMORY));
            };
            match self
                .store
                .read(&self.object.pages, offset, pages.as_mut_slice())
            {
                Ok(()) => reply.ok(Supply::Data(pages)),
                Err(_) => reply.err(PagerError::Failed(failure::CORRUPT)),
            }
        }

        fn terminate(&mut self, reply: Reply<'_, (), PagerError>) -> Replied {
            self.terminated = true;
            reply.ok(())
        }

        fn data_return(
            &mut self,
            offset: u64,
            data: Pages,
            dirty: bool,
            reply: Reply<'_, Returned, PagerError>,
        ) -> Replied {
            match self
                .store
                .put(&mut self.object.pages, offset, data.as_slice(), dirty)
            {
                // Dropping the pages unmaps them: the memory goes back to the kernel.
                Ok(()) => {
                    drop(data);
                    reply.ok(Returned::Stored)
                }
                Err(StoreError::BadRange) => reply.err(PagerError::OutOfRange),
                // Nothing is lost: the kernel keeps the pages.
                Err(_) => reply.ok(Returned::Refused(data)),
            }
        }
    }

    impl Dispatch for Zpager<'_> {
        fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
            let port = object_of(request);
            if port == self.port {
                return default_pager::dispatch(self, request, outbox);
            }
            let Some(object) = self.objects.get_mut(&port) else {
                return Dispatched::NotMine;
            };
            let mut server = ObjectServer {
                object,
                store: &mut self.store,
                terminated: false,
            };
            let dispatched = memory_object::dispatch(&mut server, request, outbox);
            if server.terminated {
                if let Some(object) = self.objects.remove(&port) {
                    self.terminate(object);
                }
            }
            dispatched
        }
    }

    impl Zpager<'_> {
        /// Lets go of `object`: its pages, its port and its control port.
        fn terminate(&mut self, object: Object) {
            let Object {
                pages,
                port,
                control,
            } = object;
            let (held, zero, bytes) = (pages.pages(), pages.zero_pages(), pages.bytes());
            self.store.remove(pages);
            drop((port, control));
            let s = self.store.statistics();
            println!(
                "zpager: terminated an object holding {held} pages ({zero} zero) in {bytes} \
                 bytes; now {} objects, {} pages ({} zero) in {} bytes; {} returns of {} \
                 pages, {} refused; {} requests, {} unavailable, {} pages supplied",
                self.objects.len(),
                s.pages,
                s.zero_pages,
                s.bytes,
                s.returns,
                s.pages_returned,
                s.refusals,
                s.requests,
                s.unavailable,
                s.pages_supplied
            );
        }
    }
}

/// The store's default budget: a sixteenth of the memory free when zpager starts (at least
/// 1 MiB): a quarter of memory paged out at a compression of 4 to 1, more for emptier pages.
#[cfg(target_os = "none")]
fn default_limit() -> usize {
    let free = libipc::sys::vm_statistics().map_or(0, |s| s.free_frames);
    ((free * libipc::abi::syscall::PAGE_SIZE / 16) as usize).max(1 << 20)
}

/// Touches `bytes` of heap (then frees them to the allocator, which keeps the pages): the
/// store and its tables grow into memory already resident.
#[cfg(target_os = "none")]
fn prefault_heap(bytes: usize) {
    let mut block: alloc::vec::Vec<u8> = alloc::vec::Vec::new();
    if block.try_reserve_exact(bytes).is_err() {
        libipc::println!("zpager: could not take {bytes} bytes of memory at start");
        return;
    }
    let page = libipc::abi::syscall::PAGE_SIZE as usize;
    let base = block.as_mut_ptr();
    for offset in (0..bytes).step_by(page) {
        // SAFETY: `offset` is inside the block's reserved capacity; writing a byte there
        // (volatile, so it happens) faults the page in.
        unsafe { core::ptr::write_volatile(base.add(offset), 0) };
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use libipc::interface::{serve, PortSet, ReceiveRight};
    use libipc::pager::DEFAULT_PAGER_NAME;
    use libipc::println;

    let Some(mut names) = libipc::names::Client::from_start_args(&args) else {
        println!("zpager: started without a name service");
        return 1;
    };
    let limit = match args.arg1 {
        0 => default_limit(),
        bytes => usize::try_from(bytes).unwrap_or(usize::MAX),
    };
    let Ok(store) = zpager::Store::new(limit) else {
        println!("zpager: no memory for the store");
        return 1;
    };
    let set = PortSet::allocate();
    let port = ReceiveRight::allocate();
    let (Ok(set), Ok(port)) = (set, port) else {
        println!("zpager: cannot allocate its ports");
        return 1;
    };
    let registered = set
        .insert(&port)
        .map_err(|e| alloc::format!("{e}"))
        .and_then(|()| port.make_send().map_err(|e| alloc::format!("{e}")))
        .and_then(|send| {
            names
                .register(DEFAULT_PAGER_NAME.into(), &send)
                .map_err(|e| alloc::format!("{e:?}"))
        });
    if let Err(error) = registered {
        println!("zpager: cannot register as {DEFAULT_PAGER_NAME}: {error}");
        return 1;
    }
    // Sized at start-up (once registered, so whoever waits for the registration does not
    // wait for this): the store's memory is taken now, while memory is plentiful, and kept
    // (the kernel never pages out the default pager's pages). When pageout runs later,
    // zpager must not need more memory than the small reserve the kernel keeps for it.
    prefault_heap(limit);
    let mut zpager = pager::Zpager::new(&set, &port, store);
    let served = serve(&set, &mut zpager);
    // `names` lives until here: whoever started zpager may take the end of its right to the
    // name service for zpager's end (bootstrap does).
    drop(names);
    match served {
        Ok(()) => 0,
        Err(error) => {
            println!("zpager: receiving failed: {error:?}");
            1
        }
    }
}

/// On the host (`cargo test` at the workspace root) the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}
