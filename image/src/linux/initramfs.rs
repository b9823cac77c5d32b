//! The Linux guest's initramfs, written as a cpio archive in the `newc` format the kernel
//! unpacks into its root file system: `/init` (the static workload program), the kernel
//! modules it loads and their order in `/modules`, the directories it mounts on, and
//! `/dev/console` (so the kernel can give `/init` the serial console as its output).
//!
//! The `newc` format (the kernel's Documentation/driver-api/early-userspace/buffer-format.rst):
//! each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hexadecimal fields:
//! inode, mode, uid, gid, links, mtime, file size, device major and minor, the device's
//! major and minor for a device node, the name's length with its NUL, a checksum of 0), the
//! name and a NUL padded to a multiple of 4 bytes, then the data padded the same way; the
//! archive ends with an entry named `TRAILER!!!`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The header's magic: `newc` without checksums.
pub const MAGIC: &[u8; 6] = b"070701";
/// The header's size in bytes.
pub const HEADER_SIZE: usize = 110;
/// The name of the last entry.
pub const TRAILER: &str = "TRAILER!!!";

/// File type bits of a mode (`S_IFDIR`, `S_IFREG`, `S_IFCHR`).
pub const DIRECTORY: u32 = 0o040000;
pub const REGULAR: u32 = 0o100000;
pub const CHARACTER_DEVICE: u32 = 0o020000;

/// A `newc` archive being written. Names are relative (no leading `/`), as the kernel
/// expects; a file's directories must be added before it.
#[derive(Debug, Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
    finished: bool,
}

impl Archive {
    pub fn new() -> Archive {
        Archive {
            bytes: Vec::new(),
            next_inode: 1,
            finished: false,
        }
    }

    /// A directory with permissions `permissions` (e.g. 0o755).
    pub fn directory(&mut self, name: &str, permissions: u32) -> Result<()> {
        self.entry(name, DIRECTORY | permissions, 2, (0, 0), &[])
    }

    /// A regular file holding `data`.
    pub fn file(&mut self, name: &str, permissions: u32, data: &[u8]) -> Result<()> {
        self.entry(name, REGULAR | permissions, 1, (0, 0), data)
    }

    /// A character device node with device number `major`:`minor`.
    pub fn character_device(
        &mut self,
        name: &str,
        permissions: u32,
        major: u32,
        minor: u32,
    ) -> Result<()> {
        self.entry(name, CHARACTER_DEVICE | permissions, 1, (major, minor), &[])
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        links: u32,
        device: (u32, u32),
        data: &[u8],
    ) -> Result<()> {
        if self.finished {
            bail!("cpio: {name} added after the trailer");
        }
        if name.is_empty() || name.starts_with('/') || name.contains('\0') || name == TRAILER {
            bail!("cpio: bad entry name {name:?} (relative, no NUL, not the trailer's)");
        }
        let size = u32::try_from(data.len())
            .with_context(|| format!("cpio: {name} is larger than 4 GiB"))?;
        let inode = self.next_inode;
        self.next_inode += 1;
        self.push(
            name,
            [inode, mode, 0, 0, links, 0, size, 0, 0, device.0, device.1],
            data,
        );
        Ok(())
    }

    /// Writes one header (fields up to the device numbers; the name's length and the
    /// checksum follow), the name and the data, each padded to 4 bytes.
    fn push(&mut self, name: &str, fields: [u32; 11], data: &[u8]) {
        self.bytes.extend_from_slice(MAGIC);
        let name_size = name.len() as u32 + 1;
        for field in fields.iter().chain(&[name_size, 0]) {
            self.bytes
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.push(TRAILER, [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], &[]);
        self.finished = true;
        self.bytes
    }
}

/// What goes into the guest's initramfs.
#[derive(Clone, Debug)]
pub struct Contents {
    /// The static program run as `/init`.
    pub init: PathBuf,
    /// Kernel modules to load, in load order (each goes to `/lib/modules/<file name>`).
    pub modules: Vec<PathBuf>,
    /// Data files for the root (`/<name>`): the boot archive's pattern files, which NONAIM's
    /// file_test reads on Linux as it reads them through bootfs on our kernel.
    pub files: Vec<(String, Vec<u8>)>,
}

/// The initramfs for `contents`.
pub fn build(contents: &Contents) -> Result<Vec<u8>> {
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let mut archive = Archive::new();
    for dir in ["dev", "proc", "sys", "lib", "lib/modules"] {
        archive.directory(dir, 0o755)?;
    }
    // The kernel opens /dev/console for /init's standard streams before running it.
    archive.character_device("dev/console", 0o600, 5, 1)?;
    archive.file("init", 0o755, &read(&contents.init)?)?;
    let mut order = String::new();
    for module in &contents.modules {
        let name = module
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("module path {} has no file name", module.display()))?;
        archive.file(&format!("lib/modules/{name}"), 0o644, &read(module)?)?;
        order.push_str(name);
        order.push('\n');
    }
    archive.file("modules", 0o644, order.as_bytes())?;
    for (name, data) in &contents.files {
        archive.file(name, 0o444, data)?;
    }
    Ok(archive.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry read back: the header's fields in order, the name, the data.
    #[derive(Debug, PartialEq)]
    struct Entry {
        fields: [u32; 13],
        name: String,
        data: Vec<u8>,
    }

    /// Reads a `newc` archive strictly: magic, hexadecimal fields, NUL-terminated names,
    /// padding of zeros to 4 bytes, and the trailer last with nothing after it.
    fn read(bytes: &[u8]) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut at = 0;
        let padded = |n: usize| n.next_multiple_of(4);
        loop {
            assert_eq!(&bytes[at..at + 6], MAGIC, "magic at {at}");
            let mut fields = [0u32; 13];
            for (index, field) in fields.iter_mut().enumerate() {
                let start = at + 6 + 8 * index;
                let text = std::str::from_utf8(&bytes[start..start + 8]).unwrap();
                assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
                *field = u32::from_str_radix(text, 16).unwrap();
            }
            let name_size = fields[11] as usize;
            let name_start = at + HEADER_SIZE;
            assert_eq!(bytes[name_start + name_size - 1], 0, "the name's NUL");
            let name = std::str::from_utf8(&bytes[name_start..name_start + name_size - 1])
                .unwrap()
                .to_string();
            let data_start = padded(name_start + name_size);
            assert!(bytes[name_start + name_size..data_start]
                .iter()
                .all(|&b| b == 0));
            let data_end = data_start + fields[6] as usize;
            let next = padded(data_end);
            assert!(
                bytes[data_end..next].iter().all(|&b| b == 0),
                "data padding"
            );
            let data = bytes[data_start..data_end].to_vec();
            let last = name == TRAILER;
            entries.push(Entry { fields, name, data });
            at = next;
            if last {
                assert_eq!(at, bytes.len(), "nothing after the trailer");
                return entries;
            }
        }
    }

    #[test]
    fn entries_round_trip_with_their_headers_and_padding() {
        let mut archive = Archive::new();
        archive.directory("dev", 0o755).unwrap();
        archive
            .character_device("dev/console", 0o600, 5, 1)
            .unwrap();
        archive.file("init", 0o755, b"\x7fELF and more").unwrap();
        archive.file("a", 0o644, b"").unwrap();
        archive.file("abc", 0o644, b"1234").unwrap();
        let bytes = archive.finish();
        assert_eq!(bytes.len() % 4, 0);
        let entries = read(&bytes);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "init", "a", "abc", TRAILER]);

        let [ino, mode, uid, gid, links, mtime, size, major, minor, rmajor, rminor, name_size, check] =
            entries[1].fields;
        assert_eq!(
            (ino, mode, uid, gid, links, mtime),
            (2, 0o020600, 0, 0, 1, 0)
        );
        assert_eq!((size, major, minor, rmajor, rminor), (0, 0, 0, 5, 1));
        assert_eq!((name_size, check), (12, 0));

        assert_eq!(entries[0].fields[1], 0o040755);
        assert_eq!(entries[0].fields[4], 2, "a directory's links");
        assert_eq!(entries[2].fields[1], 0o100755);
        assert_eq!(entries[2].data, b"\x7fELF and more");
        assert_eq!(entries[2].fields[6], 13);
        assert!(entries[3].data.is_empty());
        assert_eq!(entries[4].data, b"1234");
        let inodes: Vec<u32> = entries[..5].iter().map(|e| e.fields[0]).collect();
        assert_eq!(inodes, [1, 2, 3, 4, 5], "every entry its own inode");
        let trailer = &entries[5];
        assert_eq!(trailer.fields[11], 11);
        assert!(trailer.data.is_empty());
    }

    #[test]
    fn the_header_is_ascii_hex_of_fixed_size() {
        let mut archive = Archive::new();
        archive.file("x", 0o644, b"y").unwrap();
        let bytes = archive.finish();
        let header = std::str::from_utf8(&bytes[..HEADER_SIZE]).unwrap();
        let expected = [
            "070701", "00000001", "000081A4", "00000000", "00000000", "00000001", "00000000",
            "00000001", "00000000", "00000000", "00000000", "00000000", "00000002", "00000000",
        ]
        .concat();
        assert_eq!(header, expected);
        // Name "x" + NUL at 110..112, padded to 112 (already a multiple of 4), data "y" at 112.
        assert_eq!(&bytes[110..112], b"x\0");
        assert_eq!(&bytes[112..116], b"y\0\0\0");
    }

    #[test]
    fn bad_names_and_entries_after_the_end_are_refused() {
        let mut archive = Archive::new();
        assert!(archive.file("/init", 0o755, b"").is_err());
        assert!(archive.file("", 0o755, b"").is_err());
        assert!(archive.file("a\0b", 0o755, b"").is_err());
        assert!(archive.file(TRAILER, 0o644, b"").is_err());
    }

    #[test]
    fn an_initramfs_has_init_the_modules_in_order_and_the_console() {
        let dir = std::env::temp_dir().join(format!("image-initramfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let init = dir.join("program");
        std::fs::write(&init, b"program bytes").unwrap();
        let first = dir.join("virtio_ring.ko");
        let second = dir.join("virtio.ko");
        std::fs::write(&first, b"ring").unwrap();
        std::fs::write(&second, b"virtio").unwrap();
        let bytes = build(&Contents {
            init,
            modules: vec![first, second],
            files: vec![("nonaim_data".to_string(), b"pattern".to_vec())],
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let entries = read(&bytes);
        let find = |name: &str| {
            entries
                .iter()
                .find(|e| e.name == name)
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        assert_eq!(find("init").data, b"program bytes");
        assert_eq!(find("init").fields[1], 0o100755);
        assert_eq!(find("dev/console").fields[9..11], [5, 1]);
        assert_eq!(find("lib/modules/virtio_ring.ko").data, b"ring");
        assert_eq!(find("modules").data, b"virtio_ring.ko\nvirtio.ko\n");
        assert_eq!(find("nonaim_data").data, b"pattern");
        assert_eq!(find("nonaim_data").fields[1], 0o100444);
        let position = |name: &str| entries.iter().position(|e| e.name == name).unwrap();
        assert!(position("lib/modules") < position("lib/modules/virtio.ko"));
        assert_eq!(entries.last().unwrap().name, TRAILER);
    }
}
