//! The pager and file server: the same in both builds, the program (`main.rs`) and the
//! server collocated in the kernel ([`hosted`]).

use crate::files::Files;
use alloc::string::String;
use alloc::vec::Vec;
use libipc::abi::syscall::PAGE_SIZE;
use libipc::file::file_server;
use libipc::hosted::DirectPager;
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
pub struct Bootfs {
    set: PortSet,
    /// Its own port (the kernel's `create`, clients' `open`).
    port: Name,
    files: Vec<File>,
    archive: Files,
}

impl Bootfs {
    /// The pager serving from `set` (which it keeps), `port` (in the set) its own port.
    pub fn new(set: PortSet, port: &ReceiveRight) -> Bootfs {
        let archive = Files::new(set.name());
        Bootfs {
            set,
            port: port.name(),
            files: Vec::new(),
            archive,
        }
    }

    /// The name of the port set it serves from.
    pub fn set_name(&self) -> Name {
        self.set.name()
    }
}

impl program_pager::Server for Bootfs {
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

impl Dispatch for Bootfs {
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
        let on: Name = object_of(request);
        if let Some(file) = self.archive.file_on(on) {
            return self.archive.dispatch_file(file, request, outbox);
        }
        if let Some(handled) = self.with_object(on, |object| {
            memory_object::dispatch(object, request, outbox)
        }) {
            return handled;
        }
        // On bootfs's own port: a client's `open`, or the kernel's `create`.
        match file_server::dispatch(&mut self.archive, request, outbox) {
            Dispatched::NotMine => program_pager::dispatch(self, request, outbox),
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
        let index = self.files.iter().position(|f| f.port.name() == port)?;
        let mut object = FileObject {
            file: &self.files[index],
            terminated: false,
        };
        let served = serve(&mut object);
        if object.terminated {
            let file = self.files.swap_remove(index);
            libipc::println!("bootfs: {} no longer mapped", file.name);
        }
        Some(served)
    }

    fn with_program_pager<R>(
        &mut self,
        port: Name,
        serve: impl FnOnce(&mut dyn program_pager::Server) -> R,
    ) -> Option<R> {
        (port == self.port).then(|| serve(self))
    }
}

/// bootfs collocated in the kernel ([`libipc::hosted::Start`]), with the program's start
/// arguments: the first a send right to a name service, where it registers its port under
/// `program_pager` as the program does (sending the request without waiting for the answer,
/// which it cannot). Its service port is that port.
pub fn hosted(
    args: libipc::rt::StartArgs,
) -> Result<libipc::hosted::Started, libipc::abi::KernReturn> {
    let port = ReceiveRight::allocate()?;
    let set = PortSet::allocate()?;
    set.insert(&port)?;
    let service = port.make_send()?;
    libipc::hosted::register(&args, libipc::pager::PROGRAM_PAGER_NAME, &service);
    let bootfs = Bootfs::new(set, &port);
    Ok(libipc::hosted::Started::pager(
        bootfs.set_name(),
        bootfs,
        port,
        service,
    ))
}
