//! `hello`: the smallest user program; greets, prints its three start arguments, exits with 0.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    libipc::println!("hello from user space");
    libipc::println!(
        "hello: start arguments {:#x} {:#x} {:#x}",
        args.arg0,
        args.arg1,
        args.arg2
    );
    0
}

/// On the host (`cargo test` at the workspace root) the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}
