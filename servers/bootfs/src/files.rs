//! The file interface (`libipc::file`) over the whole boot archive, which the kernel maps for
//! bootfs read-only (`sys::boot_archive`): `open` gives a file port per archive file (made at
//! its first open, kept for every later one: a file port has no position, so it needs no
//! per-client state), and `size` and `read` on it answer from the archive's bytes.

use alloc::string::String;
use alloc::vec::Vec;
use libipc::abi::archive::{Archive, NAME_MAX};
use libipc::file::{file, file_server, Bytes, FileError, MAX_READ};
use libipc::interface::{Dispatched, Outbox, Replied, Reply, SendRight};
use libipc::ipc::{Name, ReceiveRight, Received};

/// A file some client opened: its port (in bootfs's port set) and the archive file it reads.
struct OpenFile {
    port: ReceiveRight,
    /// The right `open` hands out copies of.
    send: SendRight,
    /// The file's place in the archive's table.
    index: usize,
}

/// The archive's files and the ports of those opened so far.
pub struct Files {
    /// bootfs's port set (its name), which file ports join.
    set: Name,
    /// `None` if the kernel would not map it (said on the console): every `open` is refused.
    archive: Option<Archive<'static>>,
    open: Vec<OpenFile>,
}

impl Files {
    /// Maps the archive; file ports will join port set `set`.
    pub fn new(set: Name) -> Files {
        let archive = match libipc::sys::boot_archive() {
            Ok((address, size)) => {
                let (start, len) = (address as *const u8, size as usize);
                // SAFETY: the kernel just mapped `size` readable bytes at `address` for this
                // task, and bootfs never unmaps them: the slice is valid for its whole life.
                let bytes = unsafe { core::slice::from_raw_parts(start, len) };
                match Archive::parse(bytes) {
                    Ok(archive) => Some(archive),
                    Err(e) => {
                        libipc::println!("bootfs: the boot archive: {e}; no files served");
                        None
                    }
                }
            }
            Err(e) => {
                libipc::println!("bootfs: mapping the boot archive: {e}; no files served");
                None
            }
        };
        Files {
            set,
            archive,
            open: Vec::new(),
        }
    }

    /// The archive, if the kernel mapped it.
    pub fn archive(&self) -> Option<Archive<'static>> {
        self.archive
    }

    /// Whether requests on port `name` are for an open file (its place in `open`).
    pub fn file_on(&self, name: Name) -> Option<usize> {
        self.open.iter().position(|f| f.port.name() == name)
    }

    /// Serves `request`, which arrived on open file `which`'s port.
    pub fn dispatch_file(
        &mut self,
        which: usize,
        request: &Received<'_>,
        outbox: &mut Outbox,
    ) -> Dispatched {
        let Some(data) = self
            .archive
            .and_then(|archive| archive.file(self.open[which].index))
            .map(|file| file.data)
        else {
            // Cannot happen: a file port exists only for a file of the archive.
            return Dispatched::NotMine;
        };
        file::dispatch(&mut FileData(data), request, outbox)
    }
}

impl file_server::Server for Files {
    fn open(&mut self, name: String, reply: Reply<'_, SendRight, FileError>) -> Replied {
        if name.is_empty() || name.len() > NAME_MAX {
            return reply.err(FileError::BadName);
        }
        let Some(archive) = self.archive else {
            return reply.err(FileError::NoArchive);
        };
        let Some(index) = archive.files().position(|f| f.name == name) else {
            return reply.err(FileError::NoSuchFile);
        };
        if let Some(open) = self.open.iter().find(|f| f.index == index) {
            return reply.ok(&open.send);
        }
        let made = ReceiveRight::allocate().and_then(|port| {
            let send = port.make_send()?;
            libipc::sys::port_move(port.name(), self.set)?;
            Ok(OpenFile { port, send, index })
        });
        match made {
            Ok(file) if self.open.try_reserve(1).is_ok() => {
                self.open.push(file);
                let file = self.open.last().expect("just pushed");
                reply.ok(&file.send)
            }
            // The port (if made) goes with `made`.
            _ => reply.err(FileError::NoResources),
        }
    }
}

/// One file's bytes, as `file` serves them.
struct FileData(&'static [u8]);

impl file::Server for FileData {
    fn size(&mut self, reply: Reply<'_, u64, FileError>) -> Replied {
        reply.ok(self.0.len() as u64)
    }

    fn read(&mut self, offset: u64, length: u32, reply: Reply<'_, Bytes, FileError>) -> Replied {
        let size = self.0.len() as u64;
        if offset > size {
            return reply.err(FileError::PastEnd { size });
        }
        if length > MAX_READ {
            return reply.err(FileError::TooLong { max: MAX_READ });
        }
        let end = (offset + u64::from(length)).min(size);
        let mut bytes = Vec::new();
        if bytes.try_reserve_exact((end - offset) as usize).is_err() {
            return reply.err(FileError::NoResources);
        }
        bytes.extend_from_slice(&self.0[offset as usize..end as usize]);
        reply.ok(Bytes(bytes))
    }
}
