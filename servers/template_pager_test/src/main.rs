//! `template_pager_test`: the client and test of `template_pager`, run as the first task
//! (`init=template_pager_test`; `cargo image new-pager NAME` copies it with the pager). It
//! starts the pager, opens objects through the standard `memory_object_server.open`, maps
//! them with `vm_map`, and checks what the pager promises: unwritten pages hold computed
//! words; pages written, synced (`memory_object_server.sync`), unmapped and mapped again
//! come back as written (the kit's write path), and so do pages written and unmapped alone
//! (the kernel returns them before it terminates the object); each name is its own object;
//! bad names are refused. Reports `ktest <name> ok` / `ktest <name> FAILED: why`, then `N passed, M failed`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
mod cases {
    use alloc::format;
    use alloc::string::String;
    use core::cell::RefCell;
    use libipc::abi::syscall::{PAGE_SIZE, VM_ANYWHERE, VM_PROT_READ, VM_PROT_WRITE};
    use libipc::interface::{RemoteError, SendRight};
    use libipc::pager::{memory_object_server, PagerError};
    use libipc::sys;

    /// The pager's objects: 256 pages.
    const PAGES: u64 = 256;
    const SIZE: u64 = PAGES * PAGE_SIZE;
    /// Pages the write case writes, and what it writes in each word.
    const WRITTEN: [u64; 3] = [5, 6, 200];
    const MARK: u64 = 0x5a5a_0000_0000_0000;

    /// A client of the pager (set once it runs).
    struct Pager(RefCell<Option<memory_object_server::Client>>);
    // SAFETY: the test has one thread.
    unsafe impl Sync for Pager {}
    static PAGER: Pager = Pager(RefCell::new(None));

    fn open(name: &str) -> Result<SendRight, RemoteError<PagerError>> {
        let mut pager = PAGER.0.borrow_mut();
        pager.as_mut().expect("the pager runs").open(name.into())
    }

    fn sync(name: &str) -> Result<(), RemoteError<PagerError>> {
        let mut pager = PAGER.0.borrow_mut();
        pager.as_mut().expect("the pager runs").sync(name.into())
    }

    /// The word at `offset` of object number `number`, never written.
    fn computed(number: u64, offset: u64) -> u64 {
        (number << 32) + offset
    }

    /// Maps `object` readable and writable.
    fn map(object: &SendRight) -> Result<u64, String> {
        sys::vm_map(
            0,
            SIZE,
            VM_ANYWHERE,
            object.name(),
            0,
            VM_PROT_READ | VM_PROT_WRITE,
        )
        .map_err(|e| format!("vm_map: {e}"))
    }

    fn unmap(base: u64) -> Result<(), String> {
        // SAFETY: the mapping is the test's and nothing refers to it any more.
        unsafe { sys::vm_deallocate(base, SIZE) }.map_err(|e| format!("unmap: {e}"))
    }

    fn word(base: u64, offset: u64) -> u64 {
        // SAFETY: callers pass a mapping of SIZE readable bytes at `base`, `offset` < SIZE.
        unsafe { core::ptr::read_volatile((base + offset) as *const u64) }
    }

    /// Checks every word of page `page` of the mapping at `base` against `expected`.
    fn check_page(base: u64, page: u64, expected: impl Fn(u64) -> u64) -> Result<(), String> {
        for at in (page * PAGE_SIZE..(page + 1) * PAGE_SIZE).step_by(8) {
            let (value, want) = (word(base, at), expected(at));
            if value != want {
                return Err(format!(
                    "the word at {at:#x} holds {value:#x}, not {want:#x}"
                ));
            }
        }
        Ok(())
    }

    fn unwritten_pages_hold_computed_words() -> Result<(), String> {
        let object = open("first").map_err(|e| format!("open: {e}"))?;
        let base = map(&object)?;
        let checked = (0..PAGES).try_for_each(|page| check_page(base, page, |at| computed(1, at)));
        unmap(base)?;
        checked
    }

    fn written_pages_come_back_after_sync_and_a_new_mapping() -> Result<(), String> {
        let object = open("first").map_err(|e| format!("open: {e}"))?;
        let base = map(&object)?;
        for page in WRITTEN {
            for at in (page * PAGE_SIZE..(page + 1) * PAGE_SIZE).step_by(8) {
                // SAFETY: the mapping is writable, `at` inside it.
                unsafe { core::ptr::write_volatile((base + at) as *mut u64, MARK + at) };
            }
        }
        // Written back to the pager, then dropped from the kernel's cache with the
        // mapping: what the new mapping reads can only come from the pager.
        sync("first").map_err(|e| format!("sync: {e}"))?;
        let returns = sys::vm_region(base).map_err(|e| format!("vm_region: {e}"))?;
        unmap(base)?;
        let base = map(&object)?;
        let checked = (0..PAGES).try_for_each(|page| match WRITTEN.contains(&page) {
            true => check_page(base, page, |at| MARK + at),
            false => check_page(base, page, |at| computed(1, at)),
        });
        unmap(base)?;
        checked?;
        let returned = returns.pager_pages_returned;
        match returned >= WRITTEN.len() as u64 {
            true => Ok(()),
            false => Err(format!("the kernel returned {returned} pages at the sync")),
        }
    }

    /// Unmapping is enough: the kernel returns an object's changed pages to its pager before
    /// it terminates the object (Mach's clean at termination).
    fn written_pages_come_back_after_unmapping_alone() -> Result<(), String> {
        let object = open("unsynced").map_err(|e| format!("open: {e}"))?;
        let base = map(&object)?;
        let page = 9;
        for at in (page * PAGE_SIZE..(page + 1) * PAGE_SIZE).step_by(8) {
            // SAFETY: the mapping is writable, `at` inside it.
            unsafe { core::ptr::write_volatile((base + at) as *mut u64, MARK + at) };
        }
        unmap(base)?;
        let base = map(&object)?;
        let checked = check_page(base, page, |at| MARK + at)
            // The third object opened (after `first` and `second`).
            .and_then(|()| check_page(base, page + 1, |at| computed(3, at)));
        unmap(base)?;
        checked
    }

    fn each_name_is_its_own_object() -> Result<(), String> {
        let first = open("first").map_err(|e| format!("open: {e}"))?;
        let again = open("first").map_err(|e| format!("open again: {e}"))?;
        if again.name() != first.name() {
            return Err(format!("open again gave {:?}, not {:?}", again, first));
        }
        let second = open("second").map_err(|e| format!("open second: {e}"))?;
        let base = map(&second)?;
        let checked = check_page(base, 0, |at| computed(2, at));
        unmap(base)?;
        checked
    }

    fn bad_names_are_refused() -> Result<(), String> {
        let refused = |r: Result<(), RemoteError<PagerError>>| {
            matches!(r, Err(RemoteError::Server(PagerError::OutOfRange)))
        };
        for name in [
            "",
            "Capital",
            "has-dash",
            "a_name_longer_than_thirty_two_bytes",
        ] {
            if !refused(open(name).map(drop)) {
                return Err(format!("open({name:?}) was not refused"));
            }
        }
        if !refused(sync("never_opened")) {
            return Err(String::from(
                "sync of an object never opened was not refused",
            ));
        }
        Ok(())
    }

    pub const ALL: &[(&str, libipc::rt::selftest::Case)] = &[
        (
            "template_pager_unwritten_pages_hold_computed_words",
            unwritten_pages_hold_computed_words,
        ),
        (
            "template_pager_written_pages_come_back_after_sync_and_a_new_mapping",
            written_pages_come_back_after_sync_and_a_new_mapping,
        ),
        (
            "template_pager_each_name_is_its_own_object",
            each_name_is_its_own_object,
        ),
        (
            "template_pager_written_pages_come_back_after_unmapping_alone",
            written_pages_come_back_after_unmapping_alone,
        ),
        (
            "template_pager_bad_names_are_refused",
            bad_names_are_refused,
        ),
    ];

    /// Starts the pager (this task answers its name-service registration) and runs the
    /// cases against it.
    pub fn run() -> i32 {
        match libipc::names::spawn_registered("template_pager", "template_pager", 5000) {
            Ok((_task, service)) => {
                *PAGER.0.borrow_mut() = Some(memory_object_server::Client::new(service));
                libipc::rt::selftest::run(ALL)
            }
            Err(error) => {
                libipc::println!("template_pager_test: starting template_pager: {error}");
                1
            }
        }
    }
}

#[cfg(target_os = "none")]
fn main(_args: libipc::rt::StartArgs) -> i32 {
    cases::run()
}

#[cfg(not(target_os = "none"))]
fn main() {}
