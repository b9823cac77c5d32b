//! The memory-object protocol (clustered EMMI): how the kernel asks a pager for pages and how
//! the pager answers and steers the kernel's cache of its objects.
//!
//! A *memory object* is a port of the pager's. A task maps it with
//! [`vm_map`](crate::sys::vm_map); the kernel then holds a send right to it and speaks
//! [`memory_object`] to it, and gives the pager a send right to the object's *control port*,
//! on which the pager speaks [`memory_control`] to the kernel. Every routine is a remote
//! procedure call with a reply, so a collocated pager can be called directly.
//!
//! - `init` comes first (once per object, when it is first mapped): the pager answers with
//!   the object's [`Attributes`], its cluster size above all. The kernel asks for nothing
//!   before. Invalid attributes are replaced by the default, and the pager is told with an
//!   [`AttributesRefused`] message on the object's port.
//! - A fault on an absent page sends one `data_request` for a run of pages inside one
//!   cluster (a cluster is `cluster_pages` pages aligned on that size): the faulting page and
//!   the pages the region's access strategy predicts, none of them resident or already
//!   asked for. The pager answers with the data ([`Supply::Data`]: the pages move into the
//!   object, no copy), [`Supply::Unavailable`] (zero-filled), or an error (for the
//!   request's first page: the threads faulting on it get a memory error, the others ask
//!   again). It may defer the reply until its disk answers.
//! - `terminate` tells the pager the object is no longer mapped anywhere.
//!
//! A pager serving several objects tells them apart by the port a request arrived on
//! ([`object_of`]). The guide to writing one, with the example pagers, is [`guide`].

use serde::{Deserialize, Serialize};

#[cfg(any(test, feature = "transport"))]
pub mod guide;
#[cfg(all(feature = "transport", target_os = "none"))]
pub mod kit;

#[cfg(any(test, feature = "transport"))]
use crate::interface::{Decoder, Encoder, Malformed, Pages, Wire};
#[cfg(any(test, feature = "transport"))]
use crate::ipc::message::{MessageError, Name, Received};

/// The protocol's message ids, for code that speaks it without the generated stubs (the
/// kernel); the same as [`memory_object::ids`] and [`memory_control::ids`] (a test checks).
pub mod ids {
    pub const INIT: u32 = 2200;
    pub const DATA_REQUEST: u32 = 2201;
    pub const TERMINATE: u32 = 2202;
    pub const DATA_RETURN: u32 = 2203;
    pub const DATA_SUPPLY: u32 = 2300;
    pub const DATA_UNAVAILABLE: u32 = 2301;
    pub const DATA_ERROR: u32 = 2302;
    pub const LOCK_REQUEST: u32 = 2303;
    pub const SET_ATTRIBUTES: u32 = 2304;
    pub const STATISTICS: u32 = 2305;
    pub const CREATE: u32 = 2400;
    pub const CREATE_PROGRAM: u32 = 2500;
    /// Kernel → pager, on an object's port, no reply: the attributes the pager gave in its
    /// answer to `init` were invalid ([`AttributesRefused`](super::AttributesRefused)).
    pub const ATTRIBUTES_REFUSED: u32 = 2299;
}

/// What the kernel tells a pager whose answer to `init` gave invalid attributes (a message
/// of id [`ids::ATTRIBUTES_REFUSED`] on the object's port, no reply): the cluster size it
/// asked for, the one the kernel uses instead, and the largest valid one (a power of two
/// from 1 to [`MAX_CLUSTER_PAGES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributesRefused {
    pub asked: u32,
    pub used: u32,
    pub max_cluster_pages: u32,
}

#[cfg(feature = "transport")]
impl AttributesRefused {
    /// The message's contents, if `request` is one.
    pub fn from_request(request: &Received<'_>) -> Option<AttributesRefused> {
        if request.id() != ids::ATTRIBUTES_REFUSED {
            return None;
        }
        postcard::from_bytes(crate::abi::body::values(request.body)?).ok()
    }
}

/// The first value of an encoded [`Supply`]: which variant follows.
pub mod supply_tag {
    /// [`Supply::Data`](super::Supply::Data): one out-of-line region follows.
    pub const DATA: u8 = 0;
    /// [`Supply::Unavailable`](super::Supply::Unavailable).
    pub const UNAVAILABLE: u8 = 1;
}

/// The name a default pager registers its port under with the name service; bootstrap, on
/// seeing it registered, makes that port the kernel's default pager.
pub const DEFAULT_PAGER_NAME: &str = "default_pager";

/// The name a default pager registers under when it serves behind another (the disk pager
/// behind zpager stacked in front of it as a compressed cache): the pager in front looks it
/// up and sends it what it cannot keep.
pub const BACKING_STORE_NAME: &str = "backing_store";

/// Set in zpager's second start argument (with its budget in bytes in the other bits): it
/// runs stacked in front of the backing store registered as [`BACKING_STORE_NAME`], as a
/// compressed cache, sending it the returns its budget cannot take.
pub const STACKED: u64 = 1 << 63;

/// The name a program pager (one that serves the boot archive's files for exec, like
/// `servers/bootfs`) registers its port under; bootstrap then makes it the kernel's.
pub const PROGRAM_PAGER_NAME: &str = "program_pager";

/// Pages in a cluster unless the pager says otherwise.
pub const DEFAULT_CLUSTER_PAGES: u32 = 4;
/// The largest cluster the kernel accepts, in pages.
pub const MAX_CLUSTER_PAGES: u32 = 16;

/// How the kernel should treat an object, set by the pager in its answer to `init` (or with
/// `set_attributes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// Pages per cluster: a power of two from 1 to [`MAX_CLUSTER_PAGES`]. The kernel never
    /// asks for or returns more than one cluster at a time.
    pub cluster_pages: u32,
}

impl Attributes {
    /// Whether the kernel accepts these attributes.
    pub fn is_valid(&self) -> bool {
        self.cluster_pages.is_power_of_two() && self.cluster_pages <= MAX_CLUSTER_PAGES
    }
}

impl Default for Attributes {
    fn default() -> Self {
        Attributes {
            cluster_pages: DEFAULT_CLUSTER_PAGES,
        }
    }
}

/// A pager's answer to `data_request`.
#[cfg(any(test, feature = "transport"))]
#[derive(Debug, PartialEq, Eq)]
pub enum Supply {
    /// The contents of the pages from the requested offset on: at least one page, at most
    /// the length asked for. Pages asked for and not supplied stay absent (a later fault
    /// asks again).
    Data(Pages),
    /// The pager has no data for the range: the kernel zero-fills it.
    Unavailable,
}

#[cfg(any(test, feature = "transport"))]
impl Wire for Supply {
    type Give<'a> = Supply;

    fn encode(value: Supply, encoder: &mut Encoder<'_>) -> Result<(), MessageError> {
        match value {
            Supply::Data(pages) => {
                encoder.data(&supply_tag::DATA)?;
                Pages::encode(pages, encoder)
            }
            Supply::Unavailable => encoder.data(&supply_tag::UNAVAILABLE),
        }
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<Supply, Malformed> {
        match decoder.data::<u8>()? {
            supply_tag::DATA => Ok(Supply::Data(Pages::decode(decoder)?)),
            supply_tag::UNAVAILABLE => Ok(Supply::Unavailable),
            _ => Err(Malformed),
        }
    }
}

/// The first value of an encoded [`Returned`]: which variant follows.
pub mod returned_tag {
    /// [`Returned::Stored`](super::Returned::Stored).
    pub const STORED: u8 = 0;
    /// [`Returned::Refused`](super::Returned::Refused): one out-of-line region follows.
    pub const REFUSED: u8 = 1;
}

/// A pager's answer to `data_return`.
#[cfg(any(test, feature = "transport"))]
#[derive(Debug, PartialEq, Eq)]
pub enum Returned {
    /// The pages are safe with the pager; it will supply them when asked.
    Stored,
    /// The pager could not keep them (its store is full, its disk failed): it gives them
    /// back, all of them, and the kernel keeps them dirty. Nothing is lost.
    Refused(Pages),
}

#[cfg(any(test, feature = "transport"))]
impl Wire for Returned {
    type Give<'a> = Returned;

    fn encode(value: Returned, encoder: &mut Encoder<'_>) -> Result<(), MessageError> {
        match value {
            Returned::Stored => encoder.data(&returned_tag::STORED),
            Returned::Refused(pages) => {
                encoder.data(&returned_tag::REFUSED)?;
                Pages::encode(pages, encoder)
            }
        }
    }

    fn decode(decoder: &mut Decoder<'_>) -> Result<Returned, Malformed> {
        match decoder.data::<u8>()? {
            returned_tag::STORED => Ok(Returned::Stored),
            returned_tag::REFUSED => Ok(Returned::Refused(Pages::decode(decoder)?)),
            _ => Err(Malformed),
        }
    }
}

/// What the kernel did with one pager object since it was made (`memory_control.statistics`,
/// and `vm_region` for a region that maps it): the pager's view of its clients' faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectStatistics {
    /// `data_request`s sent, and the pages they asked for.
    pub requests: u64,
    pub pages_requested: u64,
    /// Of those, pages asked for ahead of the faulting one, and those then faulted on.
    pub prefetched: u64,
    pub prefetch_used: u64,
    /// `data_return`s sent, and the pages they carried.
    pub returns: u64,
    pub pages_returned: u64,
}

/// Why a pager could not answer a request: the threads faulting on its first page get a
/// memory error (those waiting for its other pages ask again).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PagerError {
    /// Reading the data failed (an I/O error, with the pager's own code).
    Failed(u32),
    /// The request was outside what the pager holds for the object.
    OutOfRange,
}

/// Why the kernel refused a pager's call on a control port. Every refusal is counted
/// (`VmStatistics::pager_rejects`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlError {
    /// The offset is not page-aligned or lies beyond the object's end.
    BadOffset,
    /// The length is zero, not whole pages, or runs past the object's end or a cluster.
    BadSize,
    /// The attributes are invalid (a cluster size that is not a power of two up to 16).
    BadAttributes,
    /// The object is being terminated; its pager no longer manages it.
    Terminated,
    /// No kernel memory for the pages now; the pager may try again.
    NoMemory,
}

#[cfg(any(test, feature = "transport"))]
crate::interface! {
    /// Kernel → pager, on the memory object's port (ids 2200..).
    pub mod memory_object = 2200 {
        type Error = PagerError;

        /// The object is being mapped for the first time: `control` is its control port
        /// (for [`memory_control`](super::memory_control) calls) and `size` its size in bytes as the first mapping
        /// sees it.
        ///
        /// Reply: the object's [`Attributes`](super::Attributes). Until it comes, faults on the object wait.
        fn init(control: SendRight, size: u64) -> Attributes;

        /// Asks for the pages `[offset, offset + length)`, inside one cluster; `access` is
        /// the access the fault needs (`VM_PROT_*` bits).
        ///
        /// Reply: a [`Supply`](super::Supply), or a [`PagerError`](super::PagerError) (a memory error for the faulting
        /// threads). May be deferred.
        fn data_request(offset: u64, length: u64, access: u32) -> Supply;

        /// The object is no longer mapped anywhere; the kernel has dropped its pages and its
        /// control port.
        ///
        /// Reply: `()` (the kernel does not wait for it).
        fn terminate() -> ();

        /// Pageout: the pages `[offset, offset + data.len())` (inside one cluster) move to
        /// the pager, which must supply them when they are asked for again. `dirty`: they
        /// were written since the pager last had them (else the pager may already hold this
        /// data; the kernel returns clean pages only when it swaps a task out).
        ///
        /// Reply: [`Returned::Stored`](super::Returned::Stored) once the pages are safe, or [`Returned::Refused`](super::Returned::Refused)
        /// with the pages. The kernel limits the pages in flight to a pager and never waits
        /// for the reply to go on.
        fn data_return(offset: u64, data: Pages, dirty: bool) -> Returned;
    }
}

#[cfg(any(test, feature = "transport"))]
crate::interface! {
    /// Pager → kernel, on an object's control port (ids 2300..).
    pub mod memory_control = 2300 {
        type Error = ControlError;

        /// Data the kernel did not ask for (or the late answer to a request): the pages move
        /// into the object from `offset` (page-aligned), at most one cluster and not past
        /// the object's end. Pages already resident are kept and the supplied copies dropped.
        ///
        /// Reply: `()`, or `BadOffset`, `BadSize`, `Terminated`, `NoMemory`.
        fn data_supply(offset: u64, data: Pages) -> ();

        /// The pager has no data for `[offset, offset + length)`: threads waiting for those
        /// pages get zero-filled pages.
        ///
        /// Reply: `()`, or `BadOffset`, `BadSize`, `Terminated`.
        fn data_unavailable(offset: u64, length: u64) -> ();

        /// The pages `[offset, offset + length)` cannot be had: threads waiting for them get
        /// a memory error (the pager's `code` is logged).
        ///
        /// Reply: `()`, or `BadOffset`, `BadSize`, `Terminated`.
        fn data_error(offset: u64, length: u64, code: u32) -> ();

        /// Cleans and/or flushes `[offset, offset + length)`. `clean`: its dirty pages are
        /// sent back with `data_return` (copies, when they stay; the pages are clean
        /// afterwards). `flush`: its resident pages are taken from every task that maps them
        /// and dropped (dirty ones returned first if `clean`, else their changes are lost),
        /// so later faults ask the pager again.
        ///
        /// Reply: `()` once done (the returns are on their way), or `BadOffset`, `BadSize`,
        /// `Terminated`, `NoMemory` (nothing could be returned).
        fn lock_request(offset: u64, length: u64, clean: bool, flush: bool) -> ();

        /// Changes the object's attributes (the cluster size of later requests).
        ///
        /// Reply: `()`, or `BadAttributes`, `Terminated`.
        fn set_attributes(attributes: Attributes) -> ();

        /// What the kernel did with the object: its requests, read-ahead and returns.
        ///
        /// Reply: its [`ObjectStatistics`](super::ObjectStatistics), or `Terminated`.
        fn statistics() -> ObjectStatistics;
    }
}

#[cfg(any(test, feature = "transport"))]
crate::interface! {
    /// Kernel → default pager, on the port registered with `host_set_default_pager`
    /// (ids 2400..): anonymous memory the kernel pages out.
    pub mod default_pager = 2400 {
        type Error = PagerError;

        /// A new memory object for anonymous memory of `size` bytes: `object` is its port
        /// (the pager now holds the receive right and serves [`memory_object`](super::memory_object) on it, without
        /// an `init`), `control` its control port. Its first `data_return` follows.
        ///
        /// Reply: the object's [`Attributes`](super::Attributes). The kernel returns no page of it before.
        fn create(object: ReceiveRight, control: SendRight, size: u64) -> Attributes;
    }
}

#[cfg(any(test, feature = "transport"))]
crate::interface! {
    /// Client → pager, on the pager's service port (ids 2550..): the standard way to get a
    /// right to one of a pager's objects, to map it with `vm_map` (served by
    /// [`kit::Pager`](crate::pager::kit::Pager) for every pager written with it).
    pub mod memory_object_server = 2550 {
        type Error = PagerError;

        /// A send right to the object called `name` (the same object, and port, each time).
        ///
        /// Reply: the right, or `OutOfRange` when the pager has no such object.
        fn open(name: String) -> SendRight;

        /// Writes the object called `name` back: the pages changed since the pager last had
        /// them are returned to it (`data_return`, which its kit pager keeps with
        /// `Backing::write`) before any later request on the object, and stay mapped,
        /// clean. Hurd's `pager_sync`, asked for by a client (an `msync`).
        ///
        /// Reply: `()` once the returns are on their way (at once when the object is not
        /// mapped), or `OutOfRange` when the pager has no such object, `Failed` with the
        /// kernel's refusal.
        fn sync(name: String) -> ();
    }
}

/// What a default pager says of its backing store (`backing_store.info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackingStoreInfo {
    /// Memory objects it holds pages of.
    pub objects: u64,
    /// Clusters of its paging space: all, in use, and the most ever in use.
    pub clusters_total: u64,
    pub clusters_used: u64,
    pub clusters_peak: u64,
    /// Pages of a cluster.
    pub cluster_pages: u64,
    /// Pages read back (paged in) and written out (paged out), and the clusters they were in.
    pub pages_in: u64,
    pub pages_out: u64,
    pub clusters_in: u64,
    pub clusters_out: u64,
    /// Device operations it asked for.
    pub device_reads: u64,
    pub device_writes: u64,
    /// Returns it refused (its space full, a write failed): the kernel kept the pages.
    pub refused_returns: u64,
    /// Device operations that failed.
    pub io_errors: u64,
    /// Device operations in flight or queued now.
    pub transfers: u64,
    /// Clusters in use in each paging segment (in the order they were configured).
    pub segment_clusters_used: [u64; 8],
    /// Device operations by the pages they moved: `[n - 1]` of n pages (`[7]`: 8 or more).
    pub operations_by_pages: [u64; 8],
}

#[cfg(any(test, feature = "transport"))]
crate::interface! {
    /// Anyone → a default pager, on its registered port (ids 2450..): what its backing store
    /// holds and has done, for `swapinfo`, tests and benchmarks.
    pub mod backing_store = 2450 {
        type Error = PagerError;

        /// The pager's counters now.
        ///
        /// Reply: a [`BackingStoreInfo`](super::BackingStoreInfo).
        fn info() -> BackingStoreInfo;
    }
}

#[cfg(any(test, feature = "transport"))]
crate::interface! {
    /// Kernel → program pager, on the port registered with `host_set_program_pager`
    /// (ids 2500..): the files of the boot archive that programs are loaded from.
    pub mod program_pager = 2500 {
        type Error = PagerError;

        /// A memory object over boot-archive file `name`, `size` bytes long: `object` is its
        /// port (the pager now holds the receive right and serves [`memory_object`](super::memory_object) on it,
        /// without an `init`), `control` its control port, and `file` the pages holding the
        /// file (a copy-on-write view of the archive, read-only in practice: the pager copies
        /// from it into the pages it supplies; bytes past `size` are not the file's). Exec
        /// maps program text from the object, shared by every task running the program.
        ///
        /// Reply: the object's [`Attributes`](super::Attributes). Faults on it wait until then.
        fn create(
            object: ReceiveRight,
            control: SendRight,
            name: String,
            size: u64,
            file: Pages,
        ) -> Attributes;
    }
}

/// The memory object a request to a pager is about: the pager's name for the port it
/// arrived on.
#[cfg(any(test, feature = "transport"))]
pub fn object_of(request: &Received<'_>) -> Name {
    request.header.local_port
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_generated_ones() {
        assert_eq!(memory_object::ids::init, ids::INIT);
        assert_eq!(memory_object::ids::data_request, ids::DATA_REQUEST);
        assert_eq!(memory_object::ids::terminate, ids::TERMINATE);
        assert_eq!(memory_object::ids::data_return, ids::DATA_RETURN);
        assert_eq!(default_pager::ids::create, ids::CREATE);
        assert_eq!(program_pager::ids::create, ids::CREATE_PROGRAM);
        assert_eq!(memory_control::ids::data_supply, ids::DATA_SUPPLY);
        assert_eq!(memory_control::ids::data_unavailable, ids::DATA_UNAVAILABLE);
        assert_eq!(memory_control::ids::data_error, ids::DATA_ERROR);
        assert_eq!(memory_control::ids::lock_request, ids::LOCK_REQUEST);
        assert_eq!(memory_control::ids::set_attributes, ids::SET_ATTRIBUTES);
        assert_eq!(memory_control::ids::statistics, ids::STATISTICS);
    }

    #[test]
    fn attributes_are_checked() {
        assert!(Attributes::default().is_valid());
        for pages in [1, 2, 4, 8, 16] {
            assert!(Attributes {
                cluster_pages: pages
            }
            .is_valid());
        }
        for pages in [0, 3, 32] {
            assert!(!Attributes {
                cluster_pages: pages
            }
            .is_valid());
        }
    }

    #[test]
    fn a_supply_travels_as_a_tag_and_a_region() {
        let mut body = [0u8; 64];
        let mut encoder = Encoder::new(&mut body);
        // SAFETY: on the host `Pages` only records its release; nothing is mapped.
        let pages = unsafe { Pages::from_raw(0x10_0000, 0x2000) };
        Supply::encode(Supply::Data(pages), &mut encoder).unwrap();
        let len = encoder.len();
        let message = encoder.message(7).unwrap();
        let mut buffer = [0u8; 256];
        let size = message.encode(&mut buffer).unwrap();
        assert_eq!(
            crate::interface::values(&body[..len]),
            Some(&[supply_tag::DATA][..])
        );
        let received = Received::parse(&buffer, size).unwrap();
        let mut decoder = Decoder::new(&received);
        let supply = Supply::decode(&mut decoder).unwrap();
        decoder.finish().unwrap();
        let Supply::Data(pages) = supply else {
            panic!("data expected")
        };
        assert_eq!((pages.address(), pages.len()), (0x10_0000, 0x2000));
        drop(pages);
        assert_eq!(
            crate::interface::host_log(),
            [crate::interface::Event::Unmapped(0x10_0000, 0x2000)]
        );
    }
}
