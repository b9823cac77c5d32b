//! The machine around the workload: file systems, modules, the swap disk, the memory cgroup,
//! and the end of the run.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use linux_workloads::stats::DiskStat;
use linux_workloads::swap;

/// The virtio disk: swap, and the device whose requests are counted.
pub const DISK: &str = "vda";
/// The cgroup the workload's processes join.
pub const CGROUP: &str = "/sys/fs/cgroup/workload";
/// The list of modules to load, in order, one file name (under `/lib/modules`) a line.
const MODULE_LIST: &str = "/modules";
/// How long the disk may take to appear after its driver is loaded.
const DISK_PATIENCE: Duration = Duration::from_secs(10);
/// QEMU's `isa-debug-exit` port: a byte `c` written there ends QEMU with status `2c + 1`.
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// What the workload's report needs of the machine.
pub struct Machine {
    /// `/dev/vda`'s stat file.
    pub disk_stat: String,
    /// The cgroup to join (each worker writes itself into it), if memory is limited.
    pub cgroup: Option<String>,
    /// The limit, for the report.
    pub memory_limit: Option<u64>,
}

impl Machine {
    /// The disk's counters now (zero if unreadable, which the report would show).
    pub fn disk(&self) -> DiskStat {
        fs::read_to_string(&self.disk_stat)
            .ok()
            .and_then(|text| DiskStat::parse(&text))
            .unwrap_or_default()
    }
}

fn mount(source: &str, target: &str, kind: &str) -> Result<(), String> {
    fs::create_dir_all(target).map_err(|e| format!("creating {target}: {e}"))?;
    let c = |s: &str| CString::new(s).expect("no NUL in a constant");
    let (source_c, target_c, kind_c) = (c(source), c(target), c(kind));
    // SAFETY: the three strings are valid NUL-terminated C strings that outlive the call, and
    // no mount data is passed.
    let result = unsafe {
        libc::mount(
            source_c.as_ptr(),
            target_c.as_ptr(),
            kind_c.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if result != 0 {
        return Err(format!(
            "mounting {kind} on {target}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// `/proc`, `/sys`, `/dev` (devtmpfs: the disk's node appears by itself) and cgroup v2.
pub fn mount_filesystems() -> Result<(), String> {
    mount("proc", "/proc", "proc")?;
    mount("sysfs", "/sys", "sysfs")?;
    mount("devtmpfs", "/dev", "devtmpfs")?;
    mount("cgroup2", "/sys/fs/cgroup", "cgroup2")
}

/// Loads the modules, makes the disk swap and the cgroup; what the workload needs.
pub fn prepare(memory_limit: Option<u64>) -> Result<Machine, String> {
    load_modules()?;
    let device = format!("/dev/{DISK}");
    wait_for(&device)?;
    make_swap(&device)?;
    let cgroup = match memory_limit {
        Some(limit) => Some(make_cgroup(limit)?),
        None => None,
    };
    Ok(Machine {
        disk_stat: format!("/sys/block/{DISK}/stat"),
        cgroup,
        memory_limit,
    })
}

fn load_modules() -> Result<(), String> {
    let list =
        fs::read_to_string(MODULE_LIST).map_err(|e| format!("reading {MODULE_LIST}: {e}"))?;
    for name in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = format!("/lib/modules/{name}");
        let file = File::open(&path).map_err(|e| format!("opening {path}: {e}"))?;
        let no_params = c"";
        // SAFETY: the descriptor is open for the call's duration and the parameter string is
        // a valid empty C string; finit_module only reads them.
        let result = unsafe {
            libc::syscall(
                libc::SYS_finit_module,
                file.as_raw_fd(),
                no_params.as_ptr(),
                0,
            )
        };
        if result != 0 {
            let error = std::io::Error::last_os_error();
            // Built in, or loaded already: nothing to do.
            if error.raw_os_error() != Some(libc::EEXIST) {
                return Err(format!("loading module {name}: {error}"));
            }
        }
    }
    Ok(())
}

fn wait_for(path: &str) -> Result<(), String> {
    let start = Instant::now();
    while !Path::new(path).exists() {
        if start.elapsed() > DISK_PATIENCE {
            return Err(format!(
                "{path} did not appear within {} s of loading the virtio modules (is the \
                 disk attached?)",
                DISK_PATIENCE.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Writes a swap header over the whole device and turns it on.
fn make_swap(device: &str) -> Result<(), String> {
    let sectors: u64 = fs::read_to_string(format!("/sys/block/{DISK}/size"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| format!("the size of {device} is unknown"))?;
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let uuid = *b"linux-workloads\0";
    let header =
        swap::header(page_size, sectors * 512, uuid).map_err(|e| format!("{device}: {e}"))?;
    let disk = OpenOptions::new()
        .write(true)
        .open(device)
        .map_err(|e| format!("opening {device}: {e}"))?;
    disk.write_all_at(&header, 0)
        .and_then(|()| disk.sync_all())
        .map_err(|e| format!("writing the swap header on {device}: {e}"))?;
    drop(disk);
    let path = CString::new(device).expect("no NUL in a device path");
    // SAFETY: `path` is a valid C string for the call; no flags.
    if unsafe { libc::swapon(path.as_ptr(), 0) } != 0 {
        return Err(format!(
            "swapon {device}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn make_cgroup(limit: u64) -> Result<String, String> {
    let write = |path: &str, text: &str| {
        fs::write(path, text).map_err(|e| format!("writing `{}` to {path}: {e}", text.trim()))
    };
    write("/sys/fs/cgroup/cgroup.subtree_control", "+memory")?;
    fs::create_dir_all(CGROUP).map_err(|e| format!("creating {CGROUP}: {e}"))?;
    write(&format!("{CGROUP}/memory.max"), &limit.to_string())?;
    Ok(CGROUP.to_string())
}

/// Moves the calling process into `cgroup` (a worker, just forked).
pub fn join_cgroup(cgroup: &str) -> Result<(), String> {
    let path = format!("{cgroup}/cgroup.procs");
    fs::write(&path, "0").map_err(|e| format!("joining {cgroup}: {e}"))
}

/// Ends the machine with `status`: through `isa-debug-exit` (QEMU then exits with `2 *
/// status + 1`, which the host reads as the microkernel's status), else by powering off.
pub fn end(status: i32) -> ! {
    let _ = std::io::stdout().flush();
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    // SAFETY: ioperm only changes this process's I/O permission bitmap; PID 1 has
    // CAP_SYS_RAWIO.
    if unsafe { libc::ioperm(DEBUG_EXIT_PORT.into(), 1, 1) } == 0 {
        let code = status.clamp(0, 127) as u8;
        // SAFETY: the port was just opened to this process; writing it makes QEMU's
        // isa-debug-exit device end the machine, or does nothing if there is none.
        unsafe {
            core::arch::asm!("out dx, al", in("dx") DEBUG_EXIT_PORT, in("al") code,
                options(nomem, nostack, preserves_flags));
        }
    }
    println!("linux-workloads: no isa-debug-exit device; powering off (status {status})");
    // SAFETY: reboot with POWER_OFF ends the machine; PID 1 has CAP_SYS_BOOT.
    unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_POWER_OFF) };
    // PID 1 must not exit (the kernel would panic): wait for the power to go.
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The running kernel's release (`6.1.0-...`), `?` if unreadable.
pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|_| "?".to_string())
}

/// Free memory now (`MemFree` of `/proc/meminfo`), in KiB; 0 if unreadable.
pub fn free_kib() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| {
            meminfo
                .lines()
                .find_map(|line| line.strip_prefix("MemFree:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// Whether a mapping is shared with the processes forked after it is made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Private,
    Shared,
}

/// A fresh zero-filled, readable and writable anonymous mapping of `bytes`, at an address of
/// the kernel's choosing: its start.
pub fn map_anonymous(bytes: usize, sharing: Sharing) -> std::io::Result<*mut u8> {
    let kind = match sharing {
        Sharing::Private => libc::MAP_PRIVATE,
        Sharing::Shared => libc::MAP_SHARED,
    };
    // SAFETY: a new anonymous mapping; no file and no existing memory is touched.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            kind | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(base as *mut u8)
}
