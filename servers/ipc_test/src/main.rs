//! `ipc_test`: in-guest tests of tasks, ports and messages (filled in below).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(_args: libipc::rt::StartArgs) -> i32 {
    0
}

#[cfg(not(target_os = "none"))]
fn main() {}
