//! `echo_task`: the echo server as a task. It registers with the name service under
//! [`echo::TASK_NAME`] and serves until its port dies.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    let Some(mut names) = libipc::names::Client::from_start_args(&args) else {
        libipc::println!("echo: started without the name service");
        return 1;
    };
    let (mut echo, port) = match echo::start() {
        Ok(started) => started,
        Err(error) => {
            libipc::println!("echo: cannot start: {error}");
            return 1;
        }
    };
    let send = match port.make_send() {
        Ok(send) => send,
        Err(error) => {
            libipc::println!("echo: cannot make a send right: {error:?}");
            return 1;
        }
    };
    if let Err(error) = names.register(echo::TASK_NAME.into(), &send) {
        libipc::println!("echo: cannot register: {error:?}");
        return 1;
    }
    match libipc::interface::serve(&port, &mut echo) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// On the host the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}
