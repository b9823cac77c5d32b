//! The pager and file server, written with the pager kit (`libipc::pager::kit`): the same
//! in both builds, the program (`main.rs`) and the server collocated in the kernel
//! ([`hosted`]).

use crate::files::Files;
use alloc::string::String;
use libipc::abi::archive::{Archive, NAME_MAX};
use libipc::abi::syscall::PAGE_SIZE;
use libipc::file::file_server;
use libipc::hosted::DirectPager;
use libipc::interface::{Dispatch, Dispatched, Outbox, Pages};
use libipc::ipc::{Name, Received};
use libipc::pager::kit::{Backing, Pager};
use libipc::pager::{memory_object, object_of, program_pager, PagerError};

/// Pages per cluster: program text is read front to back, so clusters are large.
const CLUSTER_PAGES: u32 = 8;

/// What an object's pages hold.
pub enum Contents {
    /// A program file the kernel made an object of (`program_pager.create`): its name and
    /// bytes (a copy-on-write view of the archive, only read; rounded up to pages, so the
    /// next file's bytes may follow its `len`).
    Program { name: String, data: Pages, len: u64 },
    /// An archive file a client opened (`memory_object_server.open`): the archive's bytes.
    Archived(&'static [u8]),
}

/// The kit's part: the objects' bytes, and the archive clients open files of.
pub struct Programs {
    archive: Option<Archive<'static>>,
}

impl Backing for Programs {
    type Object = Contents;

    /// Any file of the boot archive, to map read-only.
    fn open(&mut self, name: &str) -> Option<(Contents, u64)> {
        if name.is_empty() || name.len() > NAME_MAX {
            return None;
        }
        let file = self.archive?.files().find(|f| f.name == name)?;
        Some((Contents::Archived(file.data), file.data.len() as u64))
    }

    fn create_program(
        &mut self,
        name: String,
        size: u64,
        file: Pages,
    ) -> Result<Contents, PagerError> {
        let len = size.min(file.len());
        Ok(Contents::Program {
            name,
            data: file,
            len,
        })
    }

    fn terminated(&mut self, object: Contents) {
        if let Contents::Program { name, .. } = object {
            libipc::println!("bootfs: {name} no longer mapped");
        }
    }

    fn cluster_pages(&self, _object: &Contents) -> u32 {
        CLUSTER_PAGES
    }

    /// The file's bytes from `offset`; the rest of the last page stays zero.
    fn read(
        &mut self,
        object: &mut Contents,
        offset: u64,
        pages: &mut [u8],
    ) -> Result<(), PagerError> {
        let bytes = match object {
            Contents::Program { data, len, .. } => &data.as_slice()[..*len as usize],
            Contents::Archived(bytes) => bytes,
        };
        if !offset.is_multiple_of(PAGE_SIZE) || offset >= bytes.len() as u64 {
            return Err(PagerError::OutOfRange);
        }
        let end = (offset as usize + pages.len()).min(bytes.len());
        let source = &bytes[offset as usize..end];
        pages[..source.len()].copy_from_slice(source);
        Ok(())
    }

    // Text is never written: a page returned all the same is given back (the default).
}

/// bootfs: the kit's pager of program files (and of any archive file a client opens), and
/// the file interface over the archive, on the same port.
pub struct Bootfs {
    pager: Pager<Programs>,
    files: Files,
}

impl Bootfs {
    /// bootfs with its ports (its own port in a port set of its own).
    pub fn new() -> Result<Bootfs, libipc::abi::KernReturn> {
        // The file interface comes first: file ports join the pager's set.
        let mut pager = Pager::new(Programs { archive: None })?;
        let files = Files::new(pager.set().name());
        pager.backing().archive = files.archive();
        Ok(Bootfs { pager, files })
    }

    /// The pager (its service port, its set).
    pub fn pager(&self) -> &Pager<Programs> {
        &self.pager
    }
}

impl Dispatch for Bootfs {
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
        let on: Name = object_of(request);
        if let Some(file) = self.files.file_on(on) {
            return self.files.dispatch_file(file, request, outbox);
        }
        // The objects, and on bootfs's own port the kernel's `create` and a client's
        // `open` of an object; then a client's `open` of a file.
        match self.pager.dispatch(request, outbox) {
            Dispatched::NotMine if on == self.pager.service_name() => {
                file_server::dispatch(&mut self.files, request, outbox)
            }
            handled => handled,
        }
    }
}

impl DirectPager for Bootfs {
    fn with_object<R>(
        &mut self,
        port: Name,
        serve: impl FnOnce(&mut dyn memory_object::Server) -> R,
    ) -> Option<R> {
        self.pager.with_object(port, serve)
    }

    fn with_program_pager<R>(
        &mut self,
        port: Name,
        serve: impl FnOnce(&mut dyn program_pager::Server) -> R,
    ) -> Option<R> {
        self.pager.with_program_pager(port, serve)
    }
}

/// bootfs collocated in the kernel ([`libipc::hosted::Start`]), with the program's start
/// arguments: the first a send right to a name service, where it registers its port under
/// `program_pager` as the program does (sending the request without waiting for the answer,
/// which it cannot). Its service port is that port.
pub fn hosted(
    args: libipc::rt::StartArgs,
) -> Result<libipc::hosted::Started, libipc::abi::KernReturn> {
    let bootfs = Bootfs::new()?;
    let service = bootfs.pager().service()?;
    libipc::hosted::register(&args, libipc::pager::PROGRAM_PAGER_NAME, &service);
    Ok(libipc::hosted::Started::pager_holding_its_port(
        bootfs.pager().set().name(),
        bootfs,
        service,
    ))
}
