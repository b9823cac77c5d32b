//! `bootfs`: the program pager, and the smallest complete pager to learn from. The kernel
//! hands it each boot-archive file a program is loaded from (`program_pager.create`: the
//! object's port, its control port, the file's name and contents); bootfs then serves the
//! object's `data_request`s by copying from the file into fresh pages, which move to the
//! kernel without a copy. Exec maps program text from these objects: one object per file,
//! shared by every task running the program, paged in (and, being clean, dropped by the
//! pageout daemon and paged in again) in clusters.
//!
//! On the same port it serves the file interface (`libipc::file`) over every file of the boot
//! archive, programs and data (`files`): the kernel maps the whole archive for it, read-only
//! (`sys::boot_archive`).
//!
//! It registers its port with the name service it is given (its first start argument) under
//! `libipc::pager::PROGRAM_PAGER_NAME`; bootstrap (or a test acting as first task) then
//! makes it the kernel's program pager with `host_set_program_pager`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    let Some(mut names) = libipc::names::Client::from_start_args(&args) else {
        libipc::println!("bootfs: started without a name service");
        return 1;
    };
    let Ok(mut bootfs) = bootfs::serve::Bootfs::new() else {
        libipc::println!("bootfs: no port");
        return 1;
    };
    if bootfs
        .pager()
        .register(&mut names, libipc::pager::PROGRAM_PAGER_NAME)
        .is_err()
    {
        libipc::println!("bootfs: could not register with the name service");
        return 1;
    }
    // Above ordinary threads, as the default pagers: every task's text faults wait for
    // bootfs, which must not queue behind a thousand runnable tasks (a request unanswered
    // for `pager_timeout` is a memory error for the faulting task).
    let _ = libipc::sys::thread_set_priority(libipc::abi::syscall::PAGER_PRIORITY);
    let set = bootfs.pager().set().name();
    let result = libipc::interface::serve(&set, &mut bootfs);
    libipc::println!("bootfs: stopped: {result:?}");
    1
}

#[cfg(not(target_os = "none"))]
fn main() {}
