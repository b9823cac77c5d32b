//! The pager: zpager's ports, objects and the protocol it speaks, over the store (the crate's
//! root). The same in both builds: the program (`main.rs`) and the server collocated in the
//! kernel ([`hosted`]).

use crate::{failure, route, ObjectPages, Route, Store, StoreError};
use hashbrown::{HashMap, HashSet};
use libipc::abi::syscall::PAGE_SIZE;
use libipc::hosted::DirectPager;
use libipc::interface::{
    Dispatch, Dispatched, Outbox, Pages, PortSet, ReceiveRight, RemoteError, Replied, Reply,
    SendRight,
};
use libipc::ipc::{Name, Received};
use libipc::pager::{
    default_pager, memory_object, object_of, Attributes, PagerError, Returned, Supply,
};
use libipc::println;

/// The object's counterpart in the backing store, when zpager is stacked in front of one.
struct Backing {
    /// The backing store's memory object (zpager speaks `memory_object` to it as the
    /// kernel would).
    object: memory_object::Client,
    /// Its control port, which zpager holds and the backing store does not use.
    _control: ReceiveRight,
    /// Pages whose newest copy is in the backing store.
    on_backing: HashSet<u64>,
}

/// A memory object zpager keeps pages of.
struct Object {
    pages: ObjectPages,
    /// Its port: dropping it destroys the port, which leaves the set.
    port: ReceiveRight,
    /// Its control port (none for an object mapped with `vm_map` until `init`). Kept for
    /// the object's life, unused for now.
    control: Option<SendRight>,
    backing: Option<Backing>,
}

/// The pager: its port, its objects by port name, the store, and the backing store it
/// is stacked in front of, if any.
pub struct Zpager {
    set: PortSet,
    port: Name,
    objects: HashMap<Name, Object>,
    store: Store,
    backing_store: Option<default_pager::Client>,
    /// Returns sent on to the backing store, and their pages.
    forwarded: (u64, u64),
}

impl Zpager {
    /// A pager whose default-pager port is `port` (in `set`, which it keeps), adding
    /// objects' ports to `set`; with `backing_store`, stacked in front of it.
    pub fn new(
        set: PortSet,
        port: &ReceiveRight,
        store: Store,
        backing_store: Option<SendRight>,
    ) -> Self {
        Zpager {
            set,
            port: port.name(),
            objects: HashMap::new(),
            store,
            backing_store: backing_store.map(default_pager::Client::new),
            forwarded: (0, 0),
        }
    }

    /// An object of `size` bytes in the backing store, for an object of zpager's; its
    /// attributes (cluster size) are the ones to give the kernel.
    fn backing_object(&mut self, size: u64) -> Result<(Backing, Attributes), PagerError> {
        let failed = |_| PagerError::Failed(failure::NO_MEMORY);
        let store = self.backing_store.as_mut().ok_or(PagerError::OutOfRange)?;
        let port = ReceiveRight::allocate().map_err(failed)?;
        let send = port.make_send().map_err(failed)?;
        let control = ReceiveRight::allocate().map_err(failed)?;
        let control_send = control.make_send().map_err(failed)?;
        let attributes = match store.create(port, &control_send, size) {
            Ok(attributes) => attributes,
            Err(RemoteError::Server(error)) => return Err(error),
            Err(_) => return Err(PagerError::Failed(failure::BACKING)),
        };
        Ok((
            Backing {
                object: memory_object::Client::new(send),
                _control: control,
                on_backing: HashSet::new(),
            },
            attributes,
        ))
    }
}

impl default_pager::Server for Zpager {
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
        // Stacked, the object's clusters are the backing store's: a return zpager
        // cannot keep goes on whole.
        let (backing, attributes) = match self.backing_store.is_some() {
            true => match self.backing_object(size) {
                Ok((backing, attributes)) => (Some(backing), attributes),
                Err(error) => return reply.err(error),
            },
            false => (None, Attributes::default()),
        };
        if let Err(error) = self.set.insert(&object) {
            return reply.err(PagerError::Failed(error as u32));
        }
        let record = Object {
            pages: ObjectPages::new(size),
            port: object,
            control: Some(control),
            backing,
        };
        self.objects.insert(record.port.name(), record);
        reply.ok(attributes)
    }
}

/// The `memory_object` server for one object.
struct ObjectServer<'a> {
    object: &'a mut Object,
    store: &'a mut Store,
    forwarded: &'a mut (u64, u64),
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
        access: u32,
        reply: Reply<'_, Supply, PagerError>,
    ) -> Replied {
        let (first, count) = (offset / PAGE_SIZE, length / PAGE_SIZE);
        let routed = match &self.object.backing {
            Some(backing) => route(first, count, |page| backing.on_backing.contains(&page)),
            None => Route::Store {
                pages: count,
                whole: true,
            },
        };
        let pages = match routed {
            Route::Backing { pages } => {
                let backing = self.object.backing.as_mut().expect("routed to it");
                return match backing
                    .object
                    .data_request(offset, pages * PAGE_SIZE, access)
                {
                    Ok(supply) => reply.ok(supply),
                    Err(RemoteError::Server(error)) => reply.err(error),
                    Err(_) => reply.err(PagerError::Failed(failure::BACKING)),
                };
            }
            Route::Store { whole: true, .. } => {
                match self.store.request(&self.object.pages, offset, length) {
                    Ok(true) => count,
                    Ok(false) => return reply.ok(Supply::Unavailable),
                    Err(_) => return reply.err(PagerError::OutOfRange),
                }
            }
            // The rest is in the backing store: zeros and the store's pages up to it.
            Route::Store { pages, .. } => pages,
        };
        let Ok(mut data) = Pages::allocate(pages * PAGE_SIZE) else {
            return reply.err(PagerError::Failed(failure::NO_MEMORY));
        };
        match self
            .store
            .read(&self.object.pages, offset, data.as_mut_slice())
        {
            Ok(()) => reply.ok(Supply::Data(data)),
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
        let (first, count) = (offset / PAGE_SIZE, data.len() / PAGE_SIZE);
        match self
            .store
            .put(&mut self.object.pages, offset, data.as_slice(), dirty)
        {
            // Dropping the pages unmaps them: the memory goes back to the kernel.
            Ok(()) => {
                if let Some(backing) = self.object.backing.as_mut() {
                    // The store's copy is the newest now.
                    for page in first..first + count {
                        backing.on_backing.remove(&page);
                    }
                }
                drop(data);
                reply.ok(Returned::Stored)
            }
            Err(StoreError::BadRange) => reply.err(PagerError::OutOfRange),
            // Stacked: what the store cannot keep goes on to the backing store.
            Err(_) if self.object.backing.is_some() => {
                let backing = self.object.backing.as_mut().expect("checked");
                if backing.on_backing.try_reserve(count as usize).is_err() {
                    return reply.ok(Returned::Refused(data));
                }
                match backing.object.data_return(offset, data, dirty) {
                    Ok(Returned::Stored) => {
                        backing.on_backing.extend(first..first + count);
                        // Older copies in the store must not shadow the newer ones.
                        self.store.drop_pages(&mut self.object.pages, first, count);
                        self.forwarded.0 += 1;
                        self.forwarded.1 += count;
                        reply.ok(Returned::Stored)
                    }
                    // Nothing is lost: the kernel keeps the pages.
                    Ok(Returned::Refused(pages)) => reply.ok(Returned::Refused(pages)),
                    Err(error) => {
                        println!("zpager: the backing store failed a return: {error}");
                        reply.err(PagerError::Failed(failure::BACKING))
                    }
                }
            }
            // Nothing is lost: the kernel keeps the pages.
            Err(_) => reply.ok(Returned::Refused(data)),
        }
    }
}

impl Dispatch for Zpager {
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
        let port = object_of(request);
        if let Some(dispatched) =
            self.with_default_pager(port, |s| default_pager::dispatch(s, request, &mut *outbox))
        {
            return dispatched;
        }
        self.with_object(port, |s| memory_object::dispatch(s, request, outbox))
            .unwrap_or(Dispatched::NotMine)
    }
}

impl DirectPager for Zpager {
    fn with_object<R>(
        &mut self,
        port: Name,
        serve: impl FnOnce(&mut dyn memory_object::Server) -> R,
    ) -> Option<R> {
        let object = self.objects.get_mut(&port)?;
        let mut server = ObjectServer {
            object,
            store: &mut self.store,
            forwarded: &mut self.forwarded,
            terminated: false,
        };
        let served = serve(&mut server);
        if server.terminated {
            if let Some(object) = self.objects.remove(&port) {
                self.terminate(object);
            }
        }
        Some(served)
    }

    fn with_default_pager<R>(
        &mut self,
        port: Name,
        serve: impl FnOnce(&mut dyn default_pager::Server) -> R,
    ) -> Option<R> {
        (port == self.port).then(|| serve(self))
    }
}

impl Zpager {
    /// Lets go of `object`: its pages, its ports, and its backing store object (whose
    /// pages the backing store frees).
    fn terminate(&mut self, object: Object) {
        let Object {
            pages,
            port,
            control,
            backing,
        } = object;
        let (held, zero, bytes) = (pages.pages(), pages.zero_pages(), pages.bytes());
        self.store.remove(pages);
        drop((port, control));
        if let Some(mut backing) = backing {
            let _ = backing.object.terminate();
        }
        let s = self.store.statistics();
        println!(
            "zpager: terminated an object holding {held} pages ({zero} zero) in {bytes} \
             bytes; now {} objects, {} pages ({} zero) in {} bytes; {} returns of {} \
             pages, {} refused, {} of {} pages sent on to the backing store; {} requests, \
             {} unavailable, {} pages supplied",
            self.objects.len(),
            s.pages,
            s.zero_pages,
            s.bytes,
            s.returns,
            s.pages_returned,
            s.refusals,
            self.forwarded.0,
            self.forwarded.1,
            s.requests,
            s.unavailable,
            s.pages_supplied
        );
    }
}

/// The store's default budget: a sixteenth of the memory free when zpager starts (at least
/// 1 MiB): a quarter of memory paged out at a compression of 4 to 1, more for emptier pages.
pub fn default_limit() -> usize {
    let free = libipc::sys::vm_statistics().map_or(0, |s| s.free_frames);
    ((free * PAGE_SIZE / 16) as usize).max(1 << 20)
}

impl Zpager {
    /// The name of the port set it serves from.
    pub fn set_name(&self) -> Name {
        self.set.name()
    }
}

/// zpager collocated in the kernel ([`libipc::hosted::Start`]), with the program's start
/// arguments: the first a send right to a name service, where it registers its default-pager
/// port under `default_pager` as the program does (it sends the request and does not wait
/// for the answer, which it cannot); the second its budget in bytes (0: [`default_limit`]).
/// It cannot be stacked (a collocated start cannot wait to look the backing store up). Its
/// service port is its default-pager port too. Its store is in the kernel's heap; the
/// program's pre-faulting of it has no meaning there.
pub fn hosted(
    args: libipc::rt::StartArgs,
) -> Result<libipc::hosted::Started, libipc::abi::KernReturn> {
    use libipc::abi::KernReturn;
    if args.arg1 & crate::STACKED != 0 {
        println!("zpager: a collocated zpager cannot be stacked in front of a backing store");
        return Err(KernReturn::InvalidArgument);
    }
    let limit = match args.arg1 {
        0 => default_limit(),
        bytes => usize::try_from(bytes).unwrap_or(usize::MAX),
    };
    let store = Store::new(limit).map_err(|_| KernReturn::ResourceShortage)?;
    let set = PortSet::allocate()?;
    let port = ReceiveRight::allocate()?;
    set.insert(&port)?;
    let service = port.make_send()?;
    libipc::hosted::register(&args, libipc::pager::DEFAULT_PAGER_NAME, &service);
    let zpager = Zpager::new(set, &port, store, None);
    Ok(libipc::hosted::Started::pager(
        zpager.set_name(),
        zpager,
        port,
        service,
    ))
}
