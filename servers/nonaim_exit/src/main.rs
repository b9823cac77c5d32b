//! `nonaim_exit`: the program NONAIM's exec_test execs, as small as a program gets: it exits
//! at once with `nonaim::mix::exit_status_for` its argument, which the parent checks.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    nonaim::mix::exit_status_for(args.arg1)
}

/// On the host the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}
