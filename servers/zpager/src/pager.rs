//! The pager: the objects zpager keeps pages of and how it answers the kernel, over the store
//! (the crate's root), written with the pager kit (`libipc::pager::kit`), which holds the
//! ports and speaks the protocol. The same in both builds: the program (`main.rs`) and the
//! server collocated in the kernel ([`hosted`]).

use crate::{failure, route, ObjectPages, Route, Store, StoreError};
use hashbrown::HashSet;
use libipc::abi::syscall::PAGE_SIZE;
use libipc::interface::{Pages, ReceiveRight, RemoteError, SendRight};
use libipc::pager::kit::{Backing, Pager};
use libipc::pager::{default_pager, memory_object, Attributes, PagerError, Returned, Supply};
use libipc::println;

/// The object's counterpart in the backing store, when zpager is stacked in front of one.
struct Stacked {
    /// The backing store's memory object (zpager speaks `memory_object` to it as the
    /// kernel would).
    object: memory_object::Client,
    /// Its control port, which zpager holds and the backing store does not use.
    _control: ReceiveRight,
    /// Pages whose newest copy is in the backing store.
    on_backing: HashSet<u64>,
}

/// A memory object zpager keeps pages of (the kit holds its ports).
pub struct Object {
    pages: ObjectPages,
    /// Its clusters: the default, or the backing store's when stacked.
    cluster_pages: u32,
    backing: Option<Stacked>,
}

/// The kit's part of zpager: the store, and the backing store it is stacked in front of,
/// if any.
pub struct Zstore {
    store: Store,
    backing_store: Option<default_pager::Client>,
    /// Objects held.
    objects: u64,
    /// Returns sent on to the backing store, and their pages.
    forwarded: (u64, u64),
}

/// zpager: the kit's pager over [`Zstore`].
pub type Zpager = Pager<Zstore>;

impl Zstore {
    /// The store, stacked in front of `backing_store` if given.
    pub fn new(store: Store, backing_store: Option<SendRight>) -> Self {
        Zstore {
            store,
            backing_store: backing_store.map(default_pager::Client::new),
            objects: 0,
            forwarded: (0, 0),
        }
    }

    /// An object of `size` bytes in the backing store, for an object of zpager's; its
    /// attributes (cluster size) are the ones to give the kernel.
    fn backing_object(&mut self, size: u64) -> Result<(Stacked, Attributes), PagerError> {
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
            Stacked {
                object: memory_object::Client::new(send),
                _control: control,
                on_backing: HashSet::new(),
            },
            attributes,
        ))
    }
}

impl Backing for Zstore {
    type Object = Object;

    /// The kernel's anonymous memory. Stacked, the object's clusters are the backing
    /// store's: a return zpager cannot keep goes on whole.
    fn create(&mut self, size: u64) -> Result<Object, PagerError> {
        let (backing, attributes) = match self.backing_store.is_some() {
            true => {
                let (backing, attributes) = self.backing_object(size)?;
                (Some(backing), attributes)
            }
            false => (None, Attributes::default()),
        };
        self.objects += 1;
        Ok(Object {
            pages: ObjectPages::new(size),
            cluster_pages: attributes.cluster_pages,
            backing,
        })
    }

    fn cluster_pages(&self, object: &Object) -> u32 {
        object.cluster_pages
    }

    fn supply(
        &mut self,
        object: &mut Object,
        offset: u64,
        length: u64,
        access: u32,
    ) -> Result<Supply, PagerError> {
        let (first, count) = (offset / PAGE_SIZE, length / PAGE_SIZE);
        let routed = match &object.backing {
            Some(backing) => route(first, count, |page| backing.on_backing.contains(&page)),
            None => Route::Store {
                pages: count,
                whole: true,
            },
        };
        let pages = match routed {
            Route::Backing { pages } => {
                let backing = object.backing.as_mut().expect("routed to it");
                return match backing
                    .object
                    .data_request(offset, pages * PAGE_SIZE, access)
                {
                    Ok(supply) => Ok(supply),
                    Err(RemoteError::Server(error)) => Err(error),
                    Err(_) => Err(PagerError::Failed(failure::BACKING)),
                };
            }
            Route::Store { whole: true, .. } => {
                match self.store.request(&object.pages, offset, length) {
                    Ok(true) => count,
                    Ok(false) => return Ok(Supply::Unavailable),
                    Err(_) => return Err(PagerError::OutOfRange),
                }
            }
            // The rest is in the backing store: zeros and the store's pages up to it.
            Route::Store { pages, .. } => pages,
        };
        let mut data = Pages::allocate(pages * PAGE_SIZE)
            .map_err(|_| PagerError::Failed(failure::NO_MEMORY))?;
        match self.store.read(&object.pages, offset, data.as_mut_slice()) {
            Ok(()) => Ok(Supply::Data(data)),
            Err(_) => Err(PagerError::Failed(failure::CORRUPT)),
        }
    }

    fn keep(
        &mut self,
        object: &mut Object,
        offset: u64,
        data: Pages,
        dirty: bool,
    ) -> Result<Returned, PagerError> {
        let (first, count) = (offset / PAGE_SIZE, data.len() / PAGE_SIZE);
        match self
            .store
            .put(&mut object.pages, offset, data.as_slice(), dirty)
        {
            // Dropping the pages unmaps them: the memory goes back to the kernel.
            Ok(()) => {
                if let Some(backing) = object.backing.as_mut() {
                    // The store's copy is the newest now.
                    for page in first..first + count {
                        backing.on_backing.remove(&page);
                    }
                }
                drop(data);
                Ok(Returned::Stored)
            }
            Err(StoreError::BadRange) => Err(PagerError::OutOfRange),
            // Stacked: what the store cannot keep goes on to the backing store.
            Err(_) if object.backing.is_some() => {
                let backing = object.backing.as_mut().expect("checked");
                if backing.on_backing.try_reserve(count as usize).is_err() {
                    return Ok(Returned::Refused(data));
                }
                match backing.object.data_return(offset, data, dirty) {
                    Ok(Returned::Stored) => {
                        backing.on_backing.extend(first..first + count);
                        // Older copies in the store must not shadow the newer ones.
                        self.store.drop_pages(&mut object.pages, first, count);
                        self.forwarded.0 += 1;
                        self.forwarded.1 += count;
                        Ok(Returned::Stored)
                    }
                    // Nothing is lost: the kernel keeps the pages.
                    Ok(Returned::Refused(pages)) => Ok(Returned::Refused(pages)),
                    Err(error) => {
                        println!("zpager: the backing store failed a return: {error}");
                        Err(PagerError::Failed(failure::BACKING))
                    }
                }
            }
            // Nothing is lost: the kernel keeps the pages.
            Err(_) => Ok(Returned::Refused(data)),
        }
    }

    /// Lets go of `object`: its pages, and its backing store object (whose pages the
    /// backing store frees). The kit drops its ports.
    fn terminated(&mut self, object: Object) {
        let Object { pages, backing, .. } = object;
        self.objects -= 1;
        let (held, zero, bytes) = (pages.pages(), pages.zero_pages(), pages.bytes());
        self.store.remove(pages);
        if let Some(mut backing) = backing {
            let _ = backing.object.terminate();
        }
        let s = self.store.statistics();
        println!(
            "zpager: terminated an object holding {held} pages ({zero} zero) in {bytes} \
             bytes; now {} objects, {} pages ({} zero) in {} bytes; {} returns of {} \
             pages, {} refused, {} of {} pages sent on to the backing store; {} requests, \
             {} unavailable, {} pages supplied",
            self.objects,
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
    let zpager = Pager::new(Zstore::new(store, None))?;
    let service = zpager.service()?;
    libipc::hosted::register(&args, libipc::pager::DEFAULT_PAGER_NAME, &service);
    Ok(libipc::hosted::Started::pager_holding_its_port(
        zpager.set().name(),
        zpager,
        service,
    ))
}
