//! The disk's image files under `target/disk/`: the shared image, written in full once per size
//! and reused, and the per-run sparse images that concurrent boots get.
//!
//! No `qemu-img`: an image is a raw file of zeros, which the tool writes itself.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::disk::{DiskImage, DiskSize};

/// The shared image is written in chunks of this many bytes, one progress step each.
const CHUNK_BYTES: usize = 4 << 20;

/// `target/disk/`.
pub fn disk_dir() -> PathBuf {
    crate::target_dir().join("disk")
}

/// `target/disk/run/`: per-run images, and those kept after a failed run.
pub fn run_dir() -> PathBuf {
    disk_dir().join("run")
}

/// The shared image of `size`: `target/disk/disk-<MiB>M.img`.
pub fn shared_image_path(size: DiskSize) -> PathBuf {
    disk_dir().join(format!("disk-{}M.img", size.mib()))
}

/// What [`ensure_image`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prepared {
    /// The file had the right length and was left alone (contents and all).
    Reused,
    /// The file was missing or had another length, and was written anew.
    Created,
}

/// Makes `path` a raw image of `size`: reused if its length is `size`, else written in full
/// (zeros, not sparse, so that the guest's writes need no block allocation on the host) to a
/// temporary file beside it, which then replaces it; an interrupted write leaves no image of
/// the right length behind. `progress` shows a progress bar (when stderr is a terminal).
pub fn ensure_image(path: &Path, size: DiskSize, progress: bool) -> Result<Prepared> {
    if std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.len() == size.bytes()) {
        return Ok(Prepared::Reused);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = PathBuf::from(partial);
    if progress {
        eprintln!(
            "creating the {size} disk image {} (written in full once, reused by later runs)",
            path.display()
        );
    }
    let written = write_zeros(&partial, size, progress);
    if let Err(error) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    std::fs::rename(&partial, path).with_context(|| {
        let _ = std::fs::remove_file(&partial);
        format!("renaming {} to {}", partial.display(), path.display())
    })?;
    Ok(Prepared::Created)
}

fn write_zeros(path: &Path, size: DiskSize, progress: bool) -> Result<()> {
    let bar = if progress {
        let bar = ProgressBar::new(size.bytes());
        bar.set_style(
            ProgressStyle::with_template(
                "  [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let zeros = vec![0u8; CHUNK_BYTES];
    let mut left = size.bytes();
    while left > 0 {
        let chunk = left.min(CHUNK_BYTES as u64);
        file.write_all(&zeros[..chunk as usize])
            .with_context(|| format!("writing {} ({size})", path.display()))?;
        left -= chunk;
        bar.inc(chunk);
    }
    file.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    bar.finish_and_clear();
    Ok(())
}

/// The image file of one boot, kept that boot's own while this value lives: the shared image
/// under an exclusive lock, or a per-run file, removed on drop unless [`AttachedImage::keep`]
/// was called.
#[derive(Debug)]
pub struct AttachedImage {
    path: PathBuf,
    /// The shared image's lock (released when the file closes); `None` for a per-run image.
    lock: Option<File>,
}

impl AttachedImage {
    /// Prepares the image `image` asks for. The shared image is created if needed (with a
    /// progress bar) and locked; if another run holds it, this run gets a per-run image.
    pub fn attach(image: DiskImage) -> Result<AttachedImage> {
        match image {
            DiskImage::PerRun(size) => AttachedImage::per_run_in(&run_dir(), size),
            DiskImage::Shared(size) => {
                let path = shared_image_path(size);
                ensure_image(&path, size, true)?;
                match AttachedImage::lock_shared(&path)? {
                    Some(attached) => Ok(attached),
                    None => {
                        let attached = AttachedImage::per_run_in(&run_dir(), size)?;
                        eprintln!(
                            "note: {} is in use by another run; this one pages to {}",
                            path.display(),
                            attached.path.display()
                        );
                        Ok(attached)
                    }
                }
            }
        }
    }

    /// The shared image at `path`, locked; `None` if another process holds the lock.
    fn lock_shared(path: &Path) -> Result<Option<AttachedImage>> {
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(AttachedImage {
                path: path.to_path_buf(),
                lock: Some(file),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    /// A new sparse image of `size` in `dir`, named after this process and a counter.
    pub fn per_run_in(dir: &Path, size: DiskSize) -> Result<AttachedImage> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = format!(
            "run-{}-{}-{}M.img",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            size.mib()
        );
        let path = dir.join(name);
        let file = File::create_new(&path)
            .with_context(|| format!("creating disk image {}", path.display()))?;
        let attached = AttachedImage { path, lock: None };
        file.set_len(size.bytes())
            .with_context(|| format!("sizing disk image {}", attached.path.display()))?;
        Ok(attached)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a per-run image (removed on drop unless kept).
    pub fn is_per_run(&self) -> bool {
        self.lock.is_none()
    }

    /// Leaves a per-run image in place and returns its path (the caller removes it with
    /// [`remove_run_image`] or keeps it); releases the shared image and returns `None`.
    pub fn keep(mut self) -> Option<PathBuf> {
        if self.is_per_run() {
            Some(std::mem::take(&mut self.path))
        } else {
            None
        }
    }
}

impl Drop for AttachedImage {
    fn drop(&mut self) {
        if self.is_per_run() && !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes a per-run image that [`AttachedImage::keep`] left (a missing file is no error).
pub fn remove_run_image(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("image-disk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn mib(mib: u32) -> DiskSize {
        DiskSize::from_mib(mib).unwrap()
    }

    #[test]
    fn shared_image_is_named_after_its_size() {
        assert!(shared_image_path(mib(256)).ends_with("target/disk/disk-256M.img"));
        assert!(shared_image_path(mib(1024)).ends_with("target/disk/disk-1024M.img"));
    }

    #[test]
    fn image_is_created_in_full_then_reused_then_recreated_on_size_change() {
        let dir = scratch_dir("reuse");
        let path = dir.join("nested").join("disk-5M.img");
        // 5 MiB: one whole chunk and a partial one.
        assert_eq!(
            ensure_image(&path, mib(5), false).unwrap(),
            Prepared::Created
        );
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 5 << 20);
        assert!(
            meta.blocks() * 512 >= meta.len(),
            "not written in full: {} blocks",
            meta.blocks()
        );
        assert!(std::fs::read(&path).unwrap().iter().all(|&b| b == 0));

        // What a guest wrote stays when the size matches.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[4096] = 0xa5;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            ensure_image(&path, mib(5), false).unwrap(),
            Prepared::Reused
        );
        assert_eq!(std::fs::read(&path).unwrap()[4096], 0xa5);

        // Another length (a different size, or a truncated file): written anew, zeros.
        assert_eq!(
            ensure_image(&path, mib(2), false).unwrap(),
            Prepared::Created
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 2 << 20);
        assert!(bytes.iter().all(|&b| b == 0));
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        assert_eq!(
            ensure_image(&path, mib(2), false).unwrap(),
            Prepared::Created
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 << 20);

        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["disk-5M.img"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn per_run_images_are_distinct_and_removed_unless_kept() {
        let dir = scratch_dir("per-run");
        let first = AttachedImage::per_run_in(&dir, mib(3)).unwrap();
        let second = AttachedImage::per_run_in(&dir, mib(3)).unwrap();
        assert_ne!(first.path(), second.path());
        assert!(first.is_per_run());
        assert_eq!(std::fs::metadata(first.path()).unwrap().len(), 3 << 20);

        let dropped = first.path().to_path_buf();
        drop(first);
        assert!(!dropped.exists());

        let kept = second.keep().unwrap();
        assert!(kept.exists());
        remove_run_image(&kept);
        assert!(!kept.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_locked_shared_image_is_not_handed_out_twice() {
        let dir = scratch_dir("lock");
        let path = dir.join("disk-1M.img");
        ensure_image(&path, mib(1), false).unwrap();
        let held = AttachedImage::lock_shared(&path).unwrap().unwrap();
        assert!(!held.is_per_run());
        assert!(AttachedImage::lock_shared(&path).unwrap().is_none());
        assert_eq!(held.keep(), None);
        assert!(path.exists(), "the shared image is never removed");
        assert!(AttachedImage::lock_shared(&path).unwrap().is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
