//! `names`: the name service as a task. bootstrap starts it first, through a service of its
//! own that answers the lookup of [`HOST_NAME`](libipc::names::HOST_NAME) with the host port
//! and takes the registration of the admin port under
//! [`ADMIN_NAME`](libipc::names::ADMIN_NAME) (`libipc::names::spawn_registered_answering`);
//! then it serves until its ports fail.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    use libipc::ipc::ReceiveRight;
    use libipc::names::{ADMIN_NAME, HOST_NAME};
    let Some(mut starter) = libipc::names::Client::from_start_args(&args) else {
        libipc::println!("names: started without a starter to register with");
        return 1;
    };
    // The host port, kept for good (it makes registered pagers the kernel's).
    let host = match starter.lookup(HOST_NAME.into()) {
        Ok(host) => host.into_raw(),
        Err(error) => {
            libipc::println!("names: no host port ({error:?}); pagers are not the kernel's");
            0
        }
    };
    let Ok(admin) = ReceiveRight::allocate() else {
        libipc::println!("names: no port");
        return 1;
    };
    let mut service = match names::serve::NameService::new(&admin, host) {
        Ok(service) => service,
        Err(error) => {
            libipc::println!("names: cannot start: {error}");
            return 1;
        }
    };
    let registered = admin
        .make_send()
        .is_ok_and(|send| starter.register(ADMIN_NAME.into(), &send).is_ok());
    drop(starter);
    if !registered {
        libipc::println!("names: cannot hand over the admin port");
        return 1;
    }
    let set = service.set_name();
    let served = libipc::interface::serve(&set, &mut service);
    libipc::println!("names: stopped: {served:?}");
    drop(admin);
    1
}

/// On the host the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}
