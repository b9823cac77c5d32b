//! `zpager`: the compressing in-memory default pager. It keeps the anonymous memory the
//! kernel pages out LZ4-compressed in its own memory (the store is `zpager`'s library).
//!
//! Its first start argument is a send right to a name service: it registers its default
//! pager port there under [`DEFAULT_PAGER_NAME`] (bootstrap then makes it the kernel's
//! default pager) and serves forever. Its second start argument, when not 0, is the most
//! bytes of page contents it keeps; past that it refuses returns (tests use it).
//!
//! The kernel's `default_pager::create` gives it an object's port (the receive right) and
//! control port; the pager kit (`libipc::pager::kit`) puts the object's port in zpager's
//! port set and tells the requests on it (`memory_object`) apart by the port they arrive on.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use libipc::pager::DEFAULT_PAGER_NAME;
    use libipc::println;

    let Some(mut names) = libipc::names::Client::from_start_args(&args) else {
        println!("zpager: started without a name service");
        return 1;
    };
    let stacked = args.arg1 & zpager::STACKED != 0;
    let limit = match args.arg1 & !zpager::STACKED {
        0 => zpager::pager::default_limit(),
        bytes => usize::try_from(bytes).unwrap_or(usize::MAX),
    };
    // Stacked: the backing store registers (as it starts, maybe after us) under its name.
    let backing_store = if stacked {
        let mut found = None;
        for _ in 0..500 {
            match names.lookup(libipc::pager::BACKING_STORE_NAME.into()) {
                Ok(right) => {
                    found = Some(right);
                    break;
                }
                Err(_) => libipc::rt::sleep_ms(10),
            }
        }
        match found {
            Some(_) => println!(
                "zpager: a compressed cache of {limit} bytes in front of the backing store"
            ),
            None => println!("zpager: no backing store registered; not stacked"),
        }
        found
    } else {
        None
    };
    let Ok(store) = zpager::Store::new(limit) else {
        println!("zpager: no memory for the store");
        return 1;
    };
    let pager = zpager::pager::Zstore::new(store, backing_store);
    let mut zpager = match zpager::pager::Zpager::new(pager) {
        Ok(zpager) => zpager,
        Err(error) => {
            println!("zpager: cannot allocate its ports: {error}");
            return 1;
        }
    };
    if let Err(error) = zpager.register(&mut names, DEFAULT_PAGER_NAME) {
        println!("zpager: cannot register as {DEFAULT_PAGER_NAME}: {error}");
        return 1;
    }
    // Sized at start-up (once registered, so whoever waits for the registration does not
    // wait for this): the store's memory is taken now, while memory is plentiful, and kept
    // (the kernel never pages out the default pager's pages). When pageout runs later,
    // zpager must not need more memory than the small reserve the kernel keeps for it.
    if !libipc::rt::heap::prefault(limit) {
        println!("zpager: could not take {limit} bytes of memory at start");
    }
    // Paging waits on this pager: it runs before ordinary threads when it has work.
    let _ = libipc::sys::thread_set_priority(libipc::abi::syscall::PAGER_PRIORITY);
    let served = zpager.serve();
    // `names` lives until here: whoever started zpager may take the end of its right to the
    // name service for zpager's end (bootstrap does).
    drop(names);
    match served {
        Ok(()) => 0,
        Err(error) => {
            println!("zpager: receiving failed: {error:?}");
            1
        }
    }
}

/// On the host (`cargo test` at the workspace root) the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}
