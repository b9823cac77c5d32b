//! A pager in a few lines, after Hurd's libpager but clustered: the author says what an
//! object's pages hold ([`Backing`]: `read`, and optionally `write`, `open` and the cluster
//! size), and [`Pager`] does the rest: the port set, the objects' ports and their life
//! (`init`, `terminate`, `init` again when the same object is mapped again), the clusters
//! the kernel asks for, the pages it sends, the answers, per-object counters, and the
//! standard open-object interface ([`memory_object_server`])
//! through which clients get a right to map an object.
//!
//! ```ignore
//! struct Squares;
//! impl Backing for Squares {
//!     fn open(&mut self, name: &str) -> Option<(ObjectKey, u64)> {
//!         (name == "squares").then_some((0, 64 * PAGE_SIZE))
//!     }
//!     fn read(&mut self, _: ObjectKey, offset: u64, pages: &mut [u8]) -> Result<(), PagerError> {
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
use alloc::vec::Vec;

use super::{
    memory_object, memory_object_server, Attributes, PagerError, Returned, Supply,
    DEFAULT_CLUSTER_PAGES,
};
use crate::abi::syscall::PAGE_SIZE;
use crate::abi::KernReturn;
use crate::interface::{Dispatch, Dispatched, Outbox, Pages, Replied, Reply};
use crate::interface::{PortSet, ReceiveRight, SendRight};
use crate::ipc::{Name, Received};

/// How a [`Backing`] names its objects (its own numbering: an index, a file number).
pub type ObjectKey = u64;

/// What a pager's objects hold: the part of a pager that is the author's.
pub trait Backing {
    /// The object a client's `open(name)` gives, and its size in bytes; `None`: no such
    /// object (the client gets [`PagerError::OutOfRange`]).
    fn open(&mut self, name: &str) -> Option<(ObjectKey, u64)>;

    /// Fills `pages` (whole pages, at most a cluster) with the object's data from byte
    /// `offset`. An error is the faulting threads' memory error.
    fn read(&mut self, object: ObjectKey, offset: u64, pages: &mut [u8]) -> Result<(), PagerError>;

    /// Keeps pages the kernel pages out (`offset`: their first byte in the object), to give
    /// them back through `read` later. The default keeps nothing: the kernel holds on to
    /// them (nothing is lost; a read-only or computed object needs no more).
    fn write(&mut self, object: ObjectKey, offset: u64, pages: &[u8]) -> Result<(), PagerError> {
        let _ = (object, offset, pages);
        Err(PagerError::OutOfRange)
    }

    /// Pages per cluster for `object`: a power of two from 1 to 16. Large clusters suit data
    /// read front to back, small ones random access.
    fn cluster_pages(&self, object: ObjectKey) -> u32 {
        let _ = object;
        DEFAULT_CLUSTER_PAGES
    }
}

/// What a pager did for one object, since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `init`s (one per time the object was mapped while not mapped anywhere).
    pub inits: u64,
    /// `data_request`s, and the pages they asked for.
    pub requests: u64,
    pub pages_requested: u64,
    /// Pages supplied (all those asked for, unless a read failed).
    pub pages_supplied: u64,
    /// Reads that failed.
    pub read_errors: u64,
    /// `data_return`s, the pages they brought, and the pages `write` kept.
    pub returns: u64,
    pub pages_returned: u64,
    pub pages_kept: u64,
    /// `terminate`s.
    pub terminates: u64,
}

/// One object: its port (kept for good, so a second mapping reaches the same object).
struct Object {
    key: ObjectKey,
    size: u64,
    port: ReceiveRight,
    /// The control port while the kernel has the object mapped.
    control: Option<SendRight>,
    statistics: Counts,
}

/// A pager serving a [`Backing`]'s objects.
pub struct Pager<B: Backing> {
    backing: B,
    set: PortSet,
    service: ReceiveRight,
    objects: Vec<Object>,
}

impl<B: Backing> Pager<B> {
    /// A pager for `backing`, its service port (for `open`) in a port set of its own.
    pub fn new(backing: B) -> Result<Self, KernReturn> {
        let set = PortSet::allocate()?;
        let service = ReceiveRight::allocate()?;
        set.insert(&service)?;
        Ok(Pager {
            backing,
            set,
            service,
            objects: Vec::new(),
        })
    }

    /// A send right to the service port, to register with the name service.
    pub fn service(&self) -> Result<SendRight, KernReturn> {
        self.service.make_send()
    }

    /// Registers the service port with name service `names` under `name`, for clients to
    /// look up and `open` objects through.
    pub fn register(
        &self,
        names: &mut crate::names::Client,
        name: &str,
    ) -> Result<(), crate::interface::RemoteError<crate::names::NameError>> {
        let port = self
            .service()
            .map_err(crate::interface::TransportError::ReplyPort)?;
        names.register(name.into(), &port)
    }

    /// The backing, to look at or change between requests.
    pub fn backing(&mut self) -> &mut B {
        &mut self.backing
    }

    /// What the pager did for the object `key` (`None`: never opened).
    pub fn counts(&self, key: ObjectKey) -> Option<Counts> {
        self.objects
            .iter()
            .find(|o| o.key == key)
            .map(|o| o.statistics)
    }

    /// Serves until receiving fails (the pager's port set was destroyed).
    #[cfg(target_os = "none")]
    pub fn serve(&mut self) -> Result<(), crate::interface::IpcError> {
        let set = self.set.name();
        crate::interface::serve(&set, self)
    }

    /// The object on port `port`, if it is one of this pager's.
    fn object_on(&mut self, port: Name) -> Option<usize> {
        self.objects.iter().position(|o| o.port.name() == port)
    }
}

impl<B: Backing> memory_object_server::Server for Pager<B> {
    fn open(&mut self, name: String, reply: Reply<'_, SendRight, PagerError>) -> Replied {
        let Some((key, size)) = self.backing.open(&name) else {
            return reply.err(PagerError::OutOfRange);
        };
        // One port per object: opened again, the same object.
        if let Some(object) = self.objects.iter().find(|o| o.key == key) {
            return match object.port.make_send() {
                Ok(send) => reply.ok(&send),
                Err(_) => reply.err(PagerError::Failed(KernReturn::ResourceShortage as u32)),
            };
        }
        let made = ReceiveRight::allocate().and_then(|port| {
            self.set.insert(&port)?;
            let send = port.make_send()?;
            Ok((port, send))
        });
        let Ok((port, send)) = made else {
            return reply.err(PagerError::Failed(KernReturn::ResourceShortage as u32));
        };
        if self.objects.try_reserve(1).is_err() {
            return reply.err(PagerError::Failed(KernReturn::ResourceShortage as u32));
        }
        self.objects.push(Object {
            key,
            size,
            port,
            control: None,
            statistics: Counts::default(),
        });
        reply.ok(&send)
    }
}

/// The `memory_object` server of one object.
struct ObjectServer<'a, B: Backing> {
    backing: &'a mut B,
    object: &'a mut Object,
}

impl<B: Backing> memory_object::Server for ObjectServer<'_, B> {
    fn init(
        &mut self,
        control: SendRight,
        _size: u64,
        reply: Reply<'_, Attributes, PagerError>,
    ) -> Replied {
        // Mapped again after a `terminate`: the same object, a new control port.
        self.object.control = Some(control);
        self.object.statistics.inits += 1;
        let asked = Attributes {
            cluster_pages: self.backing.cluster_pages(self.object.key),
        };
        // An invalid size would be replaced by the kernel's default anyway (and reported
        // back): the kit says so here, where the author looks.
        if !asked.is_valid() {
            crate::println!(
                "pager kit: clusters of {} pages for object {} are invalid (a power of two \
                 from 1 to {}); using {}",
                asked.cluster_pages,
                self.object.key,
                super::MAX_CLUSTER_PAGES,
                DEFAULT_CLUSTER_PAGES
            );
            return reply.ok(Attributes::default());
        }
        reply.ok(asked)
    }

    fn data_request(
        &mut self,
        offset: u64,
        length: u64,
        _access: u32,
        reply: Reply<'_, Supply, PagerError>,
    ) -> Replied {
        let s = &mut self.object.statistics;
        s.requests += 1;
        s.pages_requested += length / PAGE_SIZE;
        if offset >= self.object.size {
            return reply.err(PagerError::OutOfRange);
        }
        let Ok(mut pages) = Pages::allocate(length) else {
            return reply.err(PagerError::Failed(KernReturn::ResourceShortage as u32));
        };
        match self
            .backing
            .read(self.object.key, offset, pages.as_mut_slice())
        {
            Ok(()) => {
                self.object.statistics.pages_supplied += length / PAGE_SIZE;
                reply.ok(Supply::Data(pages))
            }
            Err(error) => {
                self.object.statistics.read_errors += 1;
                reply.err(error)
            }
        }
    }

    fn terminate(&mut self, reply: Reply<'_, (), PagerError>) -> Replied {
        // The object stays (its port, its data): a later mapping sends `init` again.
        self.object.control = None;
        self.object.statistics.terminates += 1;
        reply.ok(())
    }

    fn data_return(
        &mut self,
        offset: u64,
        data: Pages,
        _dirty: bool,
        reply: Reply<'_, Returned, PagerError>,
    ) -> Replied {
        let pages = data.len() / PAGE_SIZE;
        let s = &mut self.object.statistics;
        s.returns += 1;
        s.pages_returned += pages;
        match self.backing.write(self.object.key, offset, data.as_slice()) {
            Ok(()) => {
                self.object.statistics.pages_kept += pages;
                reply.ok(Returned::Stored)
            }
            // Nothing is lost: the kernel keeps the pages.
            Err(_) => reply.ok(Returned::Refused(data)),
        }
    }
}

impl<B: Backing> Dispatch for Pager<B> {
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
        let on = super::object_of(request);
        if on == self.service.name() {
            return memory_object_server::dispatch(self, request, outbox);
        }
        let Some(index) = self.object_on(on) else {
            return Dispatched::NotMine;
        };
        let mut server = ObjectServer {
            backing: &mut self.backing,
            object: &mut self.objects[index],
        };
        memory_object::dispatch(&mut server, request, outbox)
    }
}
