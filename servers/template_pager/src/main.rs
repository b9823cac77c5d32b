//! `template_pager`: a pager to start from. `cargo image new-pager NAME` copies it (and its
//! client, `template_pager_test`) to a crate of your own, with this name replaced.
//!
//! It serves writable objects, written with the pager kit (`libipc::pager::kit`): a client
//! looks the pager up under `template_pager`, asks for an object by name
//! (`memory_object_server.open`), and maps the right it gets with `vm_map`. An object's
//! pages hold computed words (each 8-byte word its own offset in the object, plus the
//! object's number times 2^32) until a client writes them; pages the kernel gives back
//! (paged out, written back on a client's `memory_object_server.sync`, or when the last
//! mapping goes) are kept here in memory and served from here from then on.
//!
//! To make it yours: change [`Store::open`] (which names exist, how big), [`Store::read`]
//! (what unwritten pages hold) and [`Store::write`] (where written pages go: a disk, a
//! server of yours).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
mod store {
    use alloc::boxed::Box;
    use alloc::collections::BTreeMap;
    use libipc::abi::syscall::PAGE_SIZE;
    use libipc::pager::kit::Backing;
    use libipc::pager::PagerError;

    /// Pages per object, and per cluster (what the kernel asks for at a time).
    pub const OBJECT_PAGES: u64 = 256;
    const CLUSTER_PAGES: u32 = 4;

    /// One object: its number, and the pages written to it, by page index.
    pub struct Object {
        number: u64,
        written: BTreeMap<u64, Box<[u8]>>,
    }

    /// The objects' data: what the kit does not do for you.
    #[derive(Default)]
    pub struct Store {
        opened: u64,
    }

    impl Backing for Store {
        type Object = Object;

        /// Any name of 1 to 32 lowercase letters, digits or `_` is an object, made at its
        /// first open; the kit gives the same object for every later open.
        fn open(&mut self, name: &str) -> Option<(Object, u64)> {
            let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
            if name.is_empty() || name.len() > 32 || !name.chars().all(valid) {
                return None;
            }
            self.opened += 1;
            let object = Object {
                number: self.opened,
                written: BTreeMap::new(),
            };
            Some((object, OBJECT_PAGES * PAGE_SIZE))
        }

        fn cluster_pages(&self, _object: &Object) -> u32 {
            CLUSTER_PAGES
        }

        /// Written pages as written, the others computed.
        fn read(
            &mut self,
            object: &mut Object,
            offset: u64,
            pages: &mut [u8],
        ) -> Result<(), PagerError> {
            for (i, page) in pages.chunks_exact_mut(PAGE_SIZE as usize).enumerate() {
                let at = offset + i as u64 * PAGE_SIZE;
                match object.written.get(&(at / PAGE_SIZE)) {
                    Some(kept) => page.copy_from_slice(kept),
                    None => fill(page, object.number, at),
                }
            }
            Ok(())
        }

        /// Keeps the pages the kernel gives back. A refusal (no memory here) is no loss:
        /// the kernel keeps the pages.
        fn write(
            &mut self,
            object: &mut Object,
            offset: u64,
            pages: &[u8],
        ) -> Result<(), PagerError> {
            for (i, page) in pages.chunks_exact(PAGE_SIZE as usize).enumerate() {
                let mut copy = alloc::vec::Vec::new();
                if copy.try_reserve_exact(page.len()).is_err() {
                    return Err(PagerError::Failed(1));
                }
                copy.extend_from_slice(page);
                let index = offset / PAGE_SIZE + i as u64;
                object.written.insert(index, copy.into_boxed_slice());
            }
            Ok(())
        }
    }

    /// An unwritten page of object `number` at byte `offset`: each word its offset in the
    /// object, plus the object's number times 2^32.
    pub fn fill(page: &mut [u8], number: u64, offset: u64) {
        for (i, word) in page.chunks_exact_mut(8).enumerate() {
            let value = (number << 32) + offset + 8 * i as u64;
            word.copy_from_slice(&value.to_le_bytes());
        }
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    let Some(mut names) = libipc::names::Client::from_start_args(&args) else {
        libipc::println!("template_pager: started without a name service");
        return 1;
    };
    let mut pager = match libipc::pager::kit::Pager::new(store::Store::default()) {
        Ok(pager) => pager,
        Err(error) => {
            libipc::println!("template_pager: no ports: {error}");
            return 1;
        }
    };
    if let Err(error) = pager.register(&mut names, "template_pager") {
        libipc::println!("template_pager: cannot register: {error}");
        return 1;
    }
    let served = pager.serve();
    libipc::println!("template_pager: stopped: {served:?}");
    1
}

#[cfg(not(target_os = "none"))]
fn main() {}
