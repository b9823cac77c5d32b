//! `bootfs`: the program pager, and the smallest complete pager to learn from. The kernel
//! hands it each boot-archive file a program is loaded from (`program_pager.create`: the
//! object's port, its control port, the file's name and contents); bootfs then serves the
//! object's `data_request`s by copying from the file into fresh pages, which move to the
//! kernel without a copy. Exec maps program text from these objects: one object per file,
//! shared by every task running the program, paged in (and, being clean, dropped by the
//! pageout daemon and paged in again) in clusters.
//!
//! On the same port it serves the file interface (`libipc::file`) over every file of the boot
//! archive, programs and data (`files`): the kernel maps the whole archive for it, read-only
//! (`sys::boot_archive`).
//!
//! It registers its port with the name service it is given (its first start argument) under
//! `libipc::pager::PROGRAM_PAGER_NAME`; bootstrap (or a test acting as first task) then
//! makes it the kernel's program pager with `host_set_program_pager`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod files;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
mod serve {
    use crate::files::Files;
    use alloc::string::String;
    use alloc::vec::Vec;
    use libipc::abi::syscall::PAGE_SIZE;
    use libipc::file::file_server;
    use libipc::interface::{Dispatch, Dispatched, Outbox, Pages, Replied, Reply, SendRight};
    use libipc::ipc::{Name, PortSet, ReceiveRight, Received};
    use libipc::pager::{
        memory_object, object_of, program_pager, Attributes, PagerError, Returned, Supply,
    };

    /// Pages per cluster: program text is read front to back, so clusters are large.
    const CLUSTER_PAGES: u32 = 8;

    /// One file the kernel made an object of.
    struct File {
        /// The object's port (received from the kernel); requests arrive on it.
        port: ReceiveRight,
        /// The object's control port (unused: bootfs never changes the kernel's cache).
        _control: SendRight,
        name: String,
        /// The file's bytes (a copy-on-write view of the archive; only read).
        data: Pages,
        /// The file's length in bytes (`data` is rounded up to pages).
        len: u64,
    }

    /// The pager: the port set it serves (objects' and file ports join it), the files the
    /// kernel made objects of, and the archive's files for the file interface.
    pub struct Bootfs<'a> {
        set: &'a PortSet,
        files: Vec<File>,
        archive: Files<'a>,
    }

    impl<'a> Bootfs<'a> {
        pub fn new(set: &'a PortSet) -> Bootfs<'a> {
            Bootfs {
                set,
                files: Vec::new(),
                archive: Files::new(set),
            }
        }
    }

    impl program_pager::Server for Bootfs<'_> {
        fn create(
            &mut self,
            object: ReceiveRight,
            control: SendRight,
            name: String,
            size: u64,
            file: Pages,
            reply: Reply<'_, Attributes, PagerError>,
        ) -> Replied {
            if self.set.insert(&object).is_err() || self.files.try_reserve(1).is_err() {
                // The object's port goes (dropped): the kernel's faults on it get errors.
                return reply.err(PagerError::Failed(1));
            }
            let len = size.min(file.len());
            self.files.push(File {
                port: object,
                _control: control,
                name,
                data: file,
                len,
            });
            reply.ok(Attributes {
                cluster_pages: CLUSTER_PAGES,
            })
        }
    }

    /// One file's object, as `memory_object` serves it.
    struct FileObject<'a> {
        file: &'a File,
        terminated: bool,
    }

    impl memory_object::Server for FileObject<'_> {
        fn init(
            &mut self,
            _control: SendRight,
            _size: u64,
            reply: Reply<'_, Attributes, PagerError>,
        ) -> Replied {
            // Only if someone maps the object with vm_map: the same attributes.
            reply.ok(Attributes {
                cluster_pages: CLUSTER_PAGES,
            })
        }

        fn data_request(
            &mut self,
            offset: u64,
            length: u64,
            _access: u32,
            reply: Reply<'_, Supply, PagerError>,
        ) -> Replied {
            let file = self.file;
            if offset >= file.len || !offset.is_multiple_of(PAGE_SIZE) {
                return reply.err(PagerError::OutOfRange);
            }
            let Ok(mut pages) = Pages::allocate(length) else {
                return reply.err(PagerError::Failed(2));
            };
            // The file's bytes from `offset`; the rest of the last page stays zero.
            let end = (offset + length).min(file.len);
            let source = &file.data.as_slice()[offset as usize..end as usize];
            pages.as_mut_slice()[..source.len()].copy_from_slice(source);
            reply.ok(Supply::Data(pages))
        }

        fn terminate(&mut self, reply: Reply<'_, (), PagerError>) -> Replied {
            self.terminated = true;
            reply.ok(())
        }

        /// Text is never written: a page returned all the same is given back.
        fn data_return(
            &mut self,
            _offset: u64,
            data: Pages,
            _dirty: bool,
            reply: Reply<'_, Returned, PagerError>,
        ) -> Replied {
            reply.ok(Returned::Refused(data))
        }
    }

    impl Dispatch for Bootfs<'_> {
        fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
            let on: Name = object_of(request);
            if let Some(file) = self.archive.file_on(on) {
                return self.archive.dispatch_file(file, request, outbox);
            }
            let Some(index) = self.files.iter().position(|f| f.port.name() == on) else {
                // On bootfs's own port: a client's `open`, or the kernel's `create`.
                return match file_server::dispatch(&mut self.archive, request, outbox) {
                    Dispatched::NotMine => program_pager::dispatch(self, request, outbox),
                    handled => handled,
                };
            };
            let mut object = FileObject {
                file: &self.files[index],
                terminated: false,
            };
            let handled = memory_object::dispatch(&mut object, request, outbox);
            if object.terminated {
                let file = self.files.swap_remove(index);
                libipc::println!("bootfs: {} no longer mapped", file.name);
            }
            handled
        }
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use libipc::ipc::{PortSet, ReceiveRight};
    let Some(mut names) = libipc::names::Client::from_start_args(&args) else {
        libipc::println!("bootfs: started without a name service");
        return 1;
    };
    let (Ok(port), Ok(set)) = (ReceiveRight::allocate(), PortSet::allocate()) else {
        libipc::println!("bootfs: no port");
        return 1;
    };
    let registered = set.insert(&port).is_ok()
        && port.make_send().is_ok_and(|send| {
            names
                .register(libipc::pager::PROGRAM_PAGER_NAME.into(), &send)
                .is_ok()
        });
    if !registered {
        libipc::println!("bootfs: could not register with the name service");
        return 1;
    }
    // Above ordinary threads, as the default pagers: every task's text faults wait for
    // bootfs, which must not queue behind a thousand runnable tasks (a request unanswered
    // for `pager_timeout` is a memory error for the faulting task).
    let _ = libipc::sys::thread_set_priority(libipc::abi::syscall::PAGER_PRIORITY);
    let mut bootfs = serve::Bootfs::new(&set);
    let result = libipc::interface::serve(&set, &mut bootfs);
    libipc::println!("bootfs: stopped: {result:?}");
    drop(port);
    1
}

#[cfg(not(target_os = "none"))]
fn main() {}
