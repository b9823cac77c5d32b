//! The user runtime: a program's start, its console output, heap and panic handling.
//!
//! A user program is a binary crate that calls [`program!`](crate::program) with its main
//! function. The macro emits the three things a binary may have only once (the `_start`
//! entry, the panic handler, the global allocator), each a thin shim over this module, so the
//! runtime's state lives here and nothing conflicts if a kernel build ever unified the
//! `runtime` feature in by mistake.
//!
//! Start-up contract with the kernel: a task's first thread enters user mode at `_start` with
//! `rsp` = [`USER_STACK_TOP`](crate::abi::syscall::USER_STACK_TOP) (16-byte aligned) and
//! `rdi`, `rsi`, `rdx` holding the three start arguments its creator chose.

pub mod print;
#[cfg(all(feature = "runtime", target_os = "none"))]
pub mod selftest;

#[cfg(all(feature = "runtime", target_os = "none"))]
pub mod heap;
#[cfg(all(feature = "runtime", target_os = "none"))]
mod start;

#[cfg(all(feature = "runtime", target_os = "none"))]
pub use start::{panic, start, PANIC_EXIT_STATUS};

/// The three raw start arguments a task's creator passed (`rdi`, `rsi`, `rdx` at `_start`).
/// What they mean is between the creator and the program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartArgs {
    pub arg0: u64,
    pub arg1: u64,
    pub arg2: u64,
}

impl StartArgs {
    pub const fn new(arg0: u64, arg1: u64, arg2: u64) -> Self {
        StartArgs { arg0, arg1, arg2 }
    }

    /// The arguments in order.
    pub const fn to_array(self) -> [u64; 3] {
        [self.arg0, self.arg1, self.arg2]
    }
}

/// Makes the crate a user program whose main function is `$main`, a
/// `fn(libipc::rt::StartArgs) -> i32`; its return value becomes the task's exit status.
///
/// Emits, for `target_os = "none"` only: the `_start` entry (clears `rbp` for stack walks and
/// the direction flag, then calls the runtime's start with the three start arguments), the
/// panic handler (prints `panic in <program>: <message> at <file>:<line>`, exits with 101)
/// and the global allocator. The program's name is its cargo package name.
#[macro_export]
macro_rules! program {
    ($main:path) => {
        /// The program's name in panic messages.
        #[cfg(target_os = "none")]
        static __LIBIPC_PROGRAM_NAME: &str = ::core::env!("CARGO_PKG_NAME");

        // The entry point, in its own section so the linker script can place it first. rsp is
        // 16-byte aligned here; the call pushes the return address, which is the alignment the
        // SysV ABI expects at a function's entry.
        #[cfg(target_os = "none")]
        ::core::arch::global_asm!(
            ".pushsection .text._start, \"ax\", @progbits",
            ".globl _start",
            ".type _start, @function",
            "_start:",
            "    xor ebp, ebp",
            "    cld",
            "    call {start}",
            "    ud2",
            ".size _start, . - _start",
            ".popsection",
            start = sym __libipc_start,
        );

        #[cfg(target_os = "none")]
        #[doc(hidden)]
        extern "C" fn __libipc_start(arg0: u64, arg1: u64, arg2: u64) -> ! {
            $crate::rt::start($crate::rt::StartArgs::new(arg0, arg1, arg2), $main)
        }

        #[cfg(target_os = "none")]
        #[panic_handler]
        fn __libipc_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::rt::panic(info, __LIBIPC_PROGRAM_NAME)
        }

        #[cfg(target_os = "none")]
        #[global_allocator]
        static __LIBIPC_HEAP: $crate::rt::heap::GlobalHeap = $crate::rt::heap::GlobalHeap;
    };
}

/// Waits `ms` milliseconds: a receive, with that timeout, on a port nobody sends to.
#[cfg(all(feature = "transport", target_os = "none"))]
pub fn sleep_ms(ms: u64) {
    if let Ok(port) = crate::interface::ReceiveRight::allocate() {
        let mut buffer = crate::ipc::MessageBuffer::new();
        let _ = crate::ipc::receive(port.name(), &mut buffer, Some(ms));
    }
}

/// This task's arguments as text: its arguments block (`abi::syscall::ARGS_BLOCK`): for
/// the first task the kernel's `args=` option, for a spawned one what its parent gave
/// (`sys::task_spawn_with_args`); empty when there is none (or after an exec).
#[cfg(all(feature = "runtime", target_os = "none"))]
pub fn args(buffer: &mut [u8; crate::abi::syscall::ARGS_MAX]) -> &str {
    use crate::abi::syscall::{ARGS_BLOCK, ARGS_MAGIC};
    // SAFETY: the block lies at the top of this task's stack, which is always mapped (zero
    // where nothing was written); the reads are of plain words and bytes.
    let (magic, len) = unsafe {
        (
            (ARGS_BLOCK as *const u64).read_volatile(),
            ((ARGS_BLOCK + 8) as *const u64).read_volatile(),
        )
    };
    if magic != ARGS_MAGIC || len as usize > buffer.len() {
        return "";
    }
    let len = len as usize;
    for (i, byte) in buffer[..len].iter_mut().enumerate() {
        // SAFETY: as above; `len` bytes follow the header inside the block.
        *byte = unsafe { ((ARGS_BLOCK + 16 + i as u64) as *const u8).read_volatile() };
    }
    core::str::from_utf8(&buffer[..len]).unwrap_or("")
}

/// The first task's arguments (its arguments block: the kernel's `args=A,B,...` option)
/// split at commas, empty when not given.
#[cfg(all(feature = "runtime", target_os = "none"))]
pub fn first_task_args(buffer: &mut [u8; 256]) -> impl Iterator<Item = &str> {
    args(buffer).split(',').filter(|a| !a.is_empty())
}
