//! `bootstrap`: the first task the kernel starts. For now it announces itself and exits with 0;
//! it grows into the name service that hands out the other servers' ports.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(_args: libipc::rt::StartArgs) -> i32 {
    libipc::println!("bootstrap: started");
    0
}

/// On the host (`cargo test` at the workspace root) the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}
