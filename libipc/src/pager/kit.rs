//! A pager in a few lines, after Hurd's libpager but clustered: the author says what an
//! object's pages hold ([`Backing`]: `read`, and optionally `write`, the objects' names and
//! the cluster size), and [`Pager`] does the rest: the port set, the objects' ports and
//! their life (`init`, `terminate`, `init` again when the same object is mapped again), the
//! clusters the kernel asks for, the pages it sends, the answers, per-object counters, the
//! standard open-object interface ([`memory_object_server`]) through which clients get a
//! right to map an object, writing an object back when a client asks (`sync`), and a clean
//! stop ([`Pager::stop`]).
//!
//! The same kit serves the objects the kernel makes itself: a default pager's anonymous
//! memory ([`Backing::create`], `default_pager.create`) and a program pager's files
//! ([`Backing::create_program`]); such an object ends at its `terminate`
//! ([`Backing::terminated`]). A pager that needs more than whole pages read in place
//! overrides [`Backing::supply`] (zero-filled ranges, part of a cluster, pages from
//! elsewhere) and [`Backing::keep`] (pages it may refuse, moved rather than copied); one
//! whose answers must wait (a disk) overrides [`Backing::request`] and defers the reply.
//!
//! ```ignore
//! struct Squares;
//! impl Backing for Squares {
//!     type Object = ();
//!     fn open(&mut self, name: &str) -> Option<((), u64)> {
//!         (name == "squares").then_some(((), 64 * PAGE_SIZE))
//!     }
//!     fn read(&mut self, _: &mut (), offset: u64, pages: &mut [u8]) -> Result<(), PagerError> {
//!         for (i, word) in pages.chunks_exact_mut(8).enumerate() {
//!             let n = offset / 8 + i as u64;
//!             word.copy_from_slice(&(n * n).to_le_bytes());
//!         }
//!         Ok(())
//!     }
//! }
//! let mut pager = Pager::new(Squares)?;
//! pager.register(&mut names, "squares")?;
//! pager.serve()?;
//! ```

use alloc::string::String;
use hashbrown::HashMap;

use super::{
    default_pager, memory_control, memory_object, memory_object_server, program_pager, Attributes,
    AttributesRefused, PagerError, Returned, Supply, DEFAULT_CLUSTER_PAGES,
};
use crate::abi::syscall::PAGE_SIZE;
use crate::abi::KernReturn;
use crate::hosted::DirectPager;
use crate::interface::{Dispatch, Dispatched, Outbox, Pages, RemoteError, Replied, Reply};
use crate::interface::{PortSet, ReceiveRight, SendRight};
use crate::ipc::{Name, Received};

/// What a pager's objects hold: the part of a pager that is the author's. Every method but
/// the object's type has a default; a pager implements those of the objects it serves
/// (`open`, or the kernel's `create`s) and of reading (`read`, or `supply`).
pub trait Backing {
    /// What the pager keeps of each object (`()` when nothing: a computed object). The kit
    /// holds it with the object's ports and hands it to every call on that object.
    type Object;

    /// A client's `open(name)` of a name not opened before: the object and its size in
    /// bytes; `None` (the default): no such object, the client gets
    /// [`PagerError::OutOfRange`]. Opened again, the name gives the same object (its port):
    /// an opened object lasts as long as the pager, mapped or not.
    fn open(&mut self, name: &str) -> Option<(Self::Object, u64)> {
        let _ = name;
        None
    }

    /// The kernel made an object of anonymous memory of `size` bytes (`default_pager.create`:
    /// this pager is a default pager). The default refuses.
    fn create(&mut self, size: u64) -> Result<Self::Object, PagerError> {
        let _ = size;
        Err(PagerError::OutOfRange)
    }

    /// The kernel made an object of the program file `name` (`program_pager.create`: this
    /// pager is the program pager): `size` bytes, whose contents are `file` (read-only,
    /// rounded up to pages). The default refuses.
    fn create_program(
        &mut self,
        name: String,
        size: u64,
        file: Pages,
    ) -> Result<Self::Object, PagerError> {
        let _ = (name, size, file);
        Err(PagerError::OutOfRange)
    }

    /// An object the kernel made (`create`, `create_program`) is no longer mapped anywhere
    /// (`terminate`): it is gone, its port with it. The default drops it.
    fn terminated(&mut self, object: Self::Object) {
        drop(object);
    }

    /// Pages per cluster for `object`: a power of two from 1 to 16. Large clusters suit data
    /// read front to back, small ones random access.
    fn cluster_pages(&self, object: &Self::Object) -> u32 {
        let _ = object;
        DEFAULT_CLUSTER_PAGES
    }

    /// Fills `pages` (whole pages, at most a cluster) with the object's data from byte
    /// `offset`. An error is the faulting threads' memory error. The default has no data
    /// (a pager that overrides [`supply`](Backing::supply) does not need it).
    fn read(
        &mut self,
        object: &mut Self::Object,
        offset: u64,
        pages: &mut [u8],
    ) -> Result<(), PagerError> {
        let _ = (object, offset, pages);
        Err(PagerError::OutOfRange)
    }

    /// The answer to the kernel's `data_request` for `length` bytes from `offset`
    /// (`access`: the faulting access, `VM_PROT_*`): the pages (at least the first, at most
    /// `length` bytes), [`Supply::Unavailable`] for zero-filled pages, or an error. The
    /// default allocates the pages and fills them with [`read`](Backing::read).
    fn supply(
        &mut self,
        object: &mut Self::Object,
        offset: u64,
        length: u64,
        access: u32,
    ) -> Result<Supply, PagerError> {
        let _ = access;
        let mut pages = Pages::allocate(length)
            .map_err(|_| PagerError::Failed(KernReturn::ResourceShortage as u32))?;
        self.read(object, offset, pages.as_mut_slice())?;
        Ok(Supply::Data(pages))
    }

    /// The kernel's `data_request`, for a pager whose answer must wait (for a disk, another
    /// server, a client): take the reply with [`Reply::defer`], keep the
    /// [`Deferred`](crate::interface::Deferred), and answer later with `deferred.send`
    /// (`Ok(Supply::Data(pages))`, ...) when what it waits for comes, typically a message on
    /// a port of the pager's own in [`Pager::set`], which the pager's own `Dispatch` sees
    /// before the kit's. The faulting threads wait meanwhile, and the pager serves on.
    /// `Err(reply)` (the default) hands the request back to be answered now with
    /// [`supply`](Backing::supply).
    fn request<'r>(
        &mut self,
        object: &mut Self::Object,
        offset: u64,
        length: u64,
        access: u32,
        reply: Reply<'r, Supply, PagerError>,
    ) -> Result<Replied, Reply<'r, Supply, PagerError>> {
        let _ = (object, offset, length, access);
        Err(reply)
    }

    /// Keeps pages the kernel pages out or writes back (`offset`: their first byte in the
    /// object), to give them back through `read` later. The default keeps nothing: the
    /// kernel holds on to them (nothing is lost while the object is mapped; a read-only or
    /// computed object needs no more).
    fn write(
        &mut self,
        object: &mut Self::Object,
        offset: u64,
        pages: &[u8],
    ) -> Result<(), PagerError> {
        let _ = (object, offset, pages);
        Err(PagerError::OutOfRange)
    }

    /// The answer to the kernel's `data_return` of `data` from `offset` (`dirty`: changed
    /// since the pager last had them): [`Returned::Stored`], or [`Returned::Refused`] with
    /// the pages, which the kernel keeps. The default keeps them with
    /// [`write`](Backing::write), and refuses them when it fails.
    fn keep(
        &mut self,
        object: &mut Self::Object,
        offset: u64,
        data: Pages,
        dirty: bool,
    ) -> Result<Returned, PagerError> {
        let _ = dirty;
        match self.write(object, offset, data.as_slice()) {
            Ok(()) => Ok(Returned::Stored),
            // Nothing is lost: the kernel keeps the pages.
            Err(_) => Ok(Returned::Refused(data)),
        }
    }
}

/// What a pager did for one object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `init`s (one per time the object was mapped while not mapped anywhere).
    pub inits: u64,
    /// `data_request`s, and the pages they asked for.
    pub requests: u64,
    pub pages_requested: u64,
    /// Pages supplied with data, and requests answered "unavailable" (zero-filled).
    pub pages_supplied: u64,
    pub unavailable: u64,
    /// Requests answered with an error.
    pub read_errors: u64,
    /// Requests the backing answered itself ([`Backing::request`]: later, or at once); their
    /// pages are not in `pages_supplied`.
    pub deferred: u64,
    /// `data_return`s, the pages they brought, and the pages kept (not refused).
    pub returns: u64,
    pub pages_returned: u64,
    pub pages_kept: u64,
    /// `sync`s asked for by clients.
    pub syncs: u64,
    /// `terminate`s.
    pub terminates: u64,
    /// Attribute refusals from the kernel (`AttributesRefused`).
    pub attributes_refused: u64,
}

/// One object: the author's part, its ports, its figures.
struct Object<T> {
    backing: T,
    size: u64,
    /// Its port. An opened object keeps it for good (a second mapping reaches the same
    /// object); a kernel-made one drops it at `terminate`.
    port: ReceiveRight,
    /// The control port while the kernel has the object mapped.
    control: Option<memory_control::Client>,
    /// The cluster size in use (given at `init` or `create`).
    cluster_pages: u32,
    /// Made by the kernel (`create`, `create_program`): it ends at `terminate`.
    made: bool,
    statistics: Counts,
}

/// A pager serving a [`Backing`]'s objects.
pub struct Pager<B: Backing> {
    backing: B,
    set: PortSet,
    service: ReceiveRight,
    /// The objects, by the name of their port.
    objects: HashMap<Name, Object<B::Object>>,
    /// The objects clients opened, by the name they opened them with.
    opened: HashMap<String, Name>,
}

/// A refusal for want of memory or rights.
fn shortage() -> PagerError {
    PagerError::Failed(KernReturn::ResourceShortage as u32)
}

impl<B: Backing> Pager<B> {
    /// A pager for `backing`, its service port (for `open`, and the kernel's `create`s) in
    /// a port set of its own.
    pub fn new(backing: B) -> Result<Self, KernReturn> {
        let set = PortSet::allocate()?;
        let service = ReceiveRight::allocate()?;
        set.insert(&service)?;
        Ok(Pager {
            backing,
            set,
            service,
            objects: HashMap::new(),
            opened: HashMap::new(),
        })
    }

    /// A send right to the service port, to register with the name service (or with the
    /// kernel, as its default or program pager).
    pub fn service(&self) -> Result<SendRight, KernReturn> {
        self.service.make_send()
    }

    /// The name of the service port.
    pub fn service_name(&self) -> Name {
        self.service.name()
    }

    /// The port set the pager serves from. A pager that serves more ports than the kit's
    /// (files, a device's replies) adds them here and tries its own dispatch first.
    pub fn set(&self) -> &PortSet {
        &self.set
    }

    /// Registers the service port with name service `names` under `name`, for clients to
    /// look up and `open` objects through.
    pub fn register(
        &self,
        names: &mut crate::names::Client,
        name: &str,
    ) -> Result<(), RemoteError<crate::names::NameError>> {
        let port = self
            .service()
            .map_err(crate::interface::TransportError::ReplyPort)?;
        names.register(name.into(), &port)
    }

    /// The backing, to look at or change between requests.
    pub fn backing(&mut self) -> &mut B {
        &mut self.backing
    }

    /// What the pager did for the object opened as `name` (`None`: never opened).
    pub fn counts(&self, name: &str) -> Option<Counts> {
        let port = self.opened.get(name)?;
        self.objects.get(port).map(|o| o.statistics)
    }

    /// Serves until receiving fails (the pager's port set was destroyed), or a dispatch of
    /// the author's around the kit's says [`Dispatched::Stop`] (then `Ok`).
    #[cfg(target_os = "none")]
    pub fn serve(&mut self) -> Result<(), crate::interface::IpcError> {
        let set = self.set.name();
        crate::interface::serve(&set, self)
    }

    /// A clean stop (Hurd's `pager_shutdown`): every mapped object's changed pages are
    /// written back through [`Backing::keep`] and its cached pages dropped, and the messages
    /// already queued for the pager are served; then the ports go (a later fault on an
    /// object is a memory error for the faulting task, as when any pager ends) and the
    /// backing is given back, to save what it holds. Returns the first object that could
    /// not be written back, if any, with the backing.
    #[cfg(target_os = "none")]
    pub fn stop(mut self) -> (B, Result<(), PagerError>) {
        let mut written = Ok(());
        for object in self.objects.values_mut() {
            if let Err(error) = write_back(object, true) {
                written = written.and(Err(error));
            }
        }
        // The returns are queued on the objects' ports by now.
        let mut buffer = alloc::boxed::Box::new(crate::ipc::MessageBuffer::new());
        let mut outbox = alloc::boxed::Box::new(Outbox::new());
        let set = self.set.name();
        while let Ok(request) = crate::ipc::receive(set, &mut buffer, Some(0)) {
            let _ = self.dispatch(&request, &mut outbox);
            if let Some(reply) = outbox.take_reply() {
                let _ = crate::ipc::send_message(&reply, Some(0));
            }
        }
        let Pager { backing, .. } = self;
        (backing, written)
    }

    /// Takes `object` (a port the kernel made and handed over) as a new object holding
    /// `backing`; its attributes for the kernel.
    fn adopt(
        &mut self,
        object: ReceiveRight,
        control: SendRight,
        size: u64,
        backing: B::Object,
    ) -> Result<Attributes, PagerError> {
        let cluster_pages = self.backing.cluster_pages(&backing);
        let attributes = checked(cluster_pages, "a kernel-made object");
        if self.objects.try_reserve(1).is_err() || self.set.insert(&object).is_err() {
            // The port goes (dropped): the kernel's faults on it get errors.
            self.backing.terminated(backing);
            return Err(shortage());
        }
        self.objects.insert(
            object.name(),
            Object {
                backing,
                size,
                port: object,
                control: Some(memory_control::Client::new(control)),
                cluster_pages: attributes.cluster_pages,
                made: true,
                statistics: Counts::default(),
            },
        );
        Ok(attributes)
    }

    /// Lets go of the kernel-made object on `port`, terminated.
    fn end(&mut self, port: Name) {
        if let Some(object) = self.objects.remove(&port) {
            let Object { backing, .. } = object;
            self.backing.terminated(backing);
        }
    }
}

/// `cluster_pages` as attributes the kernel accepts: invalid, the default, said where the
/// author looks (the kernel would replace them anyway, and report back).
fn checked(cluster_pages: u32, what: &str) -> Attributes {
    let asked = Attributes { cluster_pages };
    if asked.is_valid() {
        return asked;
    }
    crate::println!(
        "pager kit: clusters of {cluster_pages} pages for {what} are invalid (a power of two \
         from 1 to {}); using {DEFAULT_CLUSTER_PAGES}",
        super::MAX_CLUSTER_PAGES,
    );
    Attributes::default()
}

impl<B: Backing> Pager<B> {
    /// A send right to the object called `name`, as a client's `open` gets it: made by
    /// [`Backing::open`] the first time, the same object (and port) every later time. For a
    /// pager that maps its own objects, or hands rights out some other way.
    pub fn open(&mut self, name: &str) -> Result<SendRight, PagerError> {
        // One port per object: opened again, the same object.
        if let Some(object) = self.opened.get(name).and_then(|p| self.objects.get(p)) {
            return object.port.make_send().map_err(|_| shortage());
        }
        if self.objects.try_reserve(1).is_err() || self.opened.try_reserve(1).is_err() {
            return Err(shortage());
        }
        let (backing, size) = self.backing.open(name).ok_or(PagerError::OutOfRange)?;
        let made = ReceiveRight::allocate().and_then(|port| {
            self.set.insert(&port)?;
            let send = port.make_send()?;
            Ok((port, send))
        });
        let (port, send) = made.map_err(|_| shortage())?;
        let cluster_pages = self.backing.cluster_pages(&backing);
        self.opened.insert(name.into(), port.name());
        self.objects.insert(
            port.name(),
            Object {
                backing,
                size,
                port,
                control: None,
                cluster_pages,
                made: false,
                statistics: Counts::default(),
            },
        );
        Ok(send)
    }
}

impl<B: Backing> memory_object_server::Server for Pager<B> {
    fn open(&mut self, name: String, reply: Reply<'_, SendRight, PagerError>) -> Replied {
        match Pager::open(self, &name) {
            Ok(send) => reply.ok(&send),
            Err(error) => reply.err(error),
        }
    }

    fn sync(&mut self, name: String, reply: Reply<'_, (), PagerError>) -> Replied {
        let Some(object) = self.opened.get(&name).and_then(|p| self.objects.get_mut(p)) else {
            return reply.err(PagerError::OutOfRange);
        };
        object.statistics.syncs += 1;
        match write_back(object, false) {
            Ok(()) => reply.ok(()),
            Err(error) => reply.err(error),
        }
    }
}

/// Asks the kernel for `object`'s changed pages (`lock_request(clean)`, one cluster at a
/// time; `flush`: its cached pages dropped too). The returns it starts reach the object's
/// port before the kernel's answer, so before any request made after it. Nothing to do for
/// an object not mapped: the kernel holds none of its pages.
fn write_back<T>(object: &mut Object<T>, flush: bool) -> Result<(), PagerError> {
    let cluster = u64::from(object.cluster_pages) * PAGE_SIZE;
    let Some(control) = object.control.as_mut() else {
        return Ok(());
    };
    let mut offset = 0;
    while offset < object.size {
        let length = cluster.min(object.size - offset);
        if let Err(error) = control.lock_request(offset, length, true, flush) {
            let code = match error {
                RemoteError::Server(refusal) => refusal as u32,
                _ => KernReturn::Failure as u32,
            };
            return Err(PagerError::Failed(code));
        }
        offset += length;
    }
    Ok(())
}

impl<B: Backing> default_pager::Server for Pager<B> {
    fn create(
        &mut self,
        object: ReceiveRight,
        control: SendRight,
        size: u64,
        reply: Reply<'_, Attributes, PagerError>,
    ) -> Replied {
        let made = self
            .backing
            .create(size)
            .and_then(|backing| self.adopt(object, control, size, backing));
        match made {
            Ok(attributes) => reply.ok(attributes),
            Err(error) => reply.err(error),
        }
    }
}

impl<B: Backing> program_pager::Server for Pager<B> {
    fn create(
        &mut self,
        object: ReceiveRight,
        control: SendRight,
        name: String,
        size: u64,
        file: Pages,
        reply: Reply<'_, Attributes, PagerError>,
    ) -> Replied {
        let made = self
            .backing
            .create_program(name, size, file)
            .and_then(|backing| self.adopt(object, control, size, backing));
        match made {
            Ok(attributes) => reply.ok(attributes),
            Err(error) => reply.err(error),
        }
    }
}

/// The `memory_object` server of one object.
struct ObjectServer<'a, B: Backing> {
    backing: &'a mut B,
    object: &'a mut Object<B::Object>,
    terminated: bool,
}

impl<B: Backing> memory_object::Server for ObjectServer<'_, B> {
    fn init(
        &mut self,
        control: SendRight,
        _size: u64,
        reply: Reply<'_, Attributes, PagerError>,
    ) -> Replied {
        // Mapped again after a `terminate`: the same object, a new control port.
        self.object.control = Some(memory_control::Client::new(control));
        self.object.statistics.inits += 1;
        let cluster_pages = self.backing.cluster_pages(&self.object.backing);
        let attributes = checked(cluster_pages, "an opened object");
        self.object.cluster_pages = attributes.cluster_pages;
        reply.ok(attributes)
    }

    fn data_request(
        &mut self,
        offset: u64,
        length: u64,
        access: u32,
        reply: Reply<'_, Supply, PagerError>,
    ) -> Replied {
        let s = &mut self.object.statistics;
        s.requests += 1;
        s.pages_requested += length / PAGE_SIZE;
        if offset >= self.object.size {
            s.read_errors += 1;
            return reply.err(PagerError::OutOfRange);
        }
        let object = &mut *self.object;
        let reply = match self
            .backing
            .request(&mut object.backing, offset, length, access, reply)
        {
            // Answered, or kept for later.
            Ok(replied) => {
                object.statistics.deferred += 1;
                return replied;
            }
            Err(reply) => reply,
        };
        match self
            .backing
            .supply(&mut object.backing, offset, length, access)
        {
            Ok(Supply::Data(pages)) => {
                object.statistics.pages_supplied += pages.len() / PAGE_SIZE;
                reply.ok(Supply::Data(pages))
            }
            Ok(Supply::Unavailable) => {
                object.statistics.unavailable += 1;
                reply.ok(Supply::Unavailable)
            }
            Err(error) => {
                object.statistics.read_errors += 1;
                reply.err(error)
            }
        }
    }

    fn terminate(&mut self, reply: Reply<'_, (), PagerError>) -> Replied {
        // An opened object stays (its port, its data): a later mapping sends `init` again.
        // A kernel-made one goes (the caller ends it).
        self.object.control = None;
        self.object.statistics.terminates += 1;
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
        let pages = data.len() / PAGE_SIZE;
        let object = &mut *self.object;
        object.statistics.returns += 1;
        object.statistics.pages_returned += pages;
        match self.backing.keep(&mut object.backing, offset, data, dirty) {
            Ok(Returned::Stored) => {
                object.statistics.pages_kept += pages;
                reply.ok(Returned::Stored)
            }
            Ok(refused) => reply.ok(refused),
            Err(error) => reply.err(error),
        }
    }
}

impl<B: Backing> DirectPager for Pager<B> {
    fn with_object<R>(
        &mut self,
        port: Name,
        serve: impl FnOnce(&mut dyn memory_object::Server) -> R,
    ) -> Option<R> {
        let object = self.objects.get_mut(&port)?;
        let mut server = ObjectServer {
            backing: &mut self.backing,
            object,
            terminated: false,
        };
        let served = serve(&mut server);
        let ended = server.terminated && server.object.made;
        if ended {
            self.end(port);
        }
        Some(served)
    }

    fn with_default_pager<R>(
        &mut self,
        port: Name,
        serve: impl FnOnce(&mut dyn default_pager::Server) -> R,
    ) -> Option<R> {
        (port == self.service.name()).then(|| serve(self))
    }

    fn with_program_pager<R>(
        &mut self,
        port: Name,
        serve: impl FnOnce(&mut dyn program_pager::Server) -> R,
    ) -> Option<R> {
        (port == self.service.name()).then(|| serve(self))
    }
}

impl<B: Backing> Dispatch for Pager<B> {
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
        let on = super::object_of(request);
        if on == self.service.name() {
            return match memory_object_server::dispatch(self, request, outbox) {
                Dispatched::NotMine => match default_pager::dispatch(self, request, outbox) {
                    Dispatched::NotMine => program_pager::dispatch(self, request, outbox),
                    handled => handled,
                },
                handled => handled,
            };
        }
        if let Some(refused) = AttributesRefused::from_request(request) {
            let Some(object) = self.objects.get_mut(&on) else {
                return Dispatched::NotMine;
            };
            object.statistics.attributes_refused += 1;
            crate::println!(
                "pager kit: the kernel refused clusters of {} pages (valid: a power of two \
                 up to {}); it uses {}",
                refused.asked,
                refused.max_cluster_pages,
                refused.used
            );
            object.cluster_pages = refused.used;
            return Dispatched::Handled;
        }
        self.with_object(on, |server| {
            memory_object::dispatch(server, request, outbox)
        })
        .unwrap_or(Dispatched::NotMine)
    }
}
