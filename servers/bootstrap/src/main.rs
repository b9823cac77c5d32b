//! `bootstrap`: the first task the kernel starts. It holds the privileged host port the
//! kernel gives it, starts the programs that `servers/boot.toml` marks `start = true`, serves
//! them the name service ([`libipc::names`]), reports each one's exit, and once all have
//! exited powers the machine off through the host port: with status 0 if every one exited
//! with 0, else 1. With nothing to start it announces itself and shuts down with 0. Programs
//! marked `daemon = true` serve for good: bootstrap does not wait for them.
//!
//! A port registered under [`DEFAULT_PAGER_NAME`](libipc::pager::DEFAULT_PAGER_NAME)
//! becomes the kernel's default pager (`host_set_default_pager`, through the host port), one
//! registered under [`PROGRAM_PAGER_NAME`](libipc::pager::PROGRAM_PAGER_NAME) its program
//! pager (`host_set_program_pager`), one under
//! [`BACKING_STORE_NAME`](libipc::pager::BACKING_STORE_NAME) the default pager's backing store
//! (`host_set_backing_store`).
//!
//! With a disk it starts the disk pager (`default_pager`), without one zpager; with a disk
//! and the kernel option `zcache=SIZE`, both: zpager with a budget of SIZE as the default
//! pager, stacked in front of the disk pager as a compressed cache. Only programs marked
//! `devices = true` get the device master port when they look it up.
//!
//! Each child gets its own port to the name service (all in one port set), and bootstrap keeps
//! no send right to it: the port's no-senders notification then says the child is gone
//! (unless it handed its right on, in which case when the last holder is), and `TaskWait`
//! reads its status at once. That keeps bootstrap a single thread that never blocks but in
//! its receive. A registered port that dies leaves the table through a dead-name
//! notification.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
mod start {
    include!(concat!(env!("OUT_DIR"), "/start.rs"));
}

#[cfg(target_os = "none")]
mod serve {
    use alloc::string::String;
    use alloc::vec::Vec;

    use bootstrap::{NameTable, Program, NAME_TABLE_CAPACITY};
    use libipc::abi::message::notify;
    use libipc::device::{device_master, DEVICE_MASTER_NAME, FIRST_DISK};
    use libipc::interface::{Dispatch, Dispatched, Outbox, Replied, Reply};
    use libipc::ipc::{Name, PortSet, ReceiveRight, Received, SendRight, Task};
    use libipc::names::{self, NameError};
    use libipc::pager::{BACKING_STORE_NAME, DEFAULT_PAGER_NAME, PROGRAM_PAGER_NAME};
    use libipc::{println, sys};

    /// The name service.
    struct Names {
        table: NameTable<SendRight>,
        /// Where dead-name notifications of registered ports arrive.
        notify: Name,
        /// The host port, to make a registered default pager the kernel's.
        host: Name,
        /// The device master port, given only to programs marked `devices = true`.
        device_master: Option<SendRight>,
        /// Whether the request being served comes from such a program.
        asker_has_devices: bool,
    }

    impl names::Server for Names {
        fn register(
            &mut self,
            name: String,
            port: SendRight,
            reply: Reply<'_, (), NameError>,
        ) -> Replied {
            let watched = port.name();
            // Pagers the kernel is told of: what, and the call that tells it.
            type Set = fn(Name, Name) -> Result<(), libipc::abi::KernReturn>;
            let pager: Option<(&str, Set)> = match name.as_str() {
                DEFAULT_PAGER_NAME => Some(("default pager", sys::host_set_default_pager)),
                BACKING_STORE_NAME => Some(("backing store", sys::host_set_backing_store)),
                PROGRAM_PAGER_NAME => Some(("program pager", sys::host_set_program_pager)),
                _ => None,
            };
            let result = self.table.register(name, port);
            if result.is_ok() {
                // If the request fails the entry stays until looked up in vain; the table
                // is the service's, not a correctness matter for clients.
                let _ = sys::port_request_notification(watched, notify::DEAD_NAME, self.notify);
                if let Some((what, set)) = pager {
                    // The kernel takes a send right of its own; the table keeps ours.
                    match set(self.host, watched) {
                        Ok(()) => println!("bootstrap: the {what} is registered"),
                        Err(error) => {
                            println!(
                                "bootstrap: cannot register the {what} with the kernel: {error}"
                            )
                        }
                    }
                }
            }
            reply.send(result)
        }

        fn lookup(&mut self, name: String, reply: Reply<'_, SendRight, NameError>) -> Replied {
            if name == DEVICE_MASTER_NAME {
                return match (&self.device_master, self.asker_has_devices) {
                    (Some(master), true) => reply.ok(master),
                    _ => reply.err(NameError::Unknown),
                };
            }
            match self.table.lookup(&name) {
                Ok(port) => reply.ok(port),
                Err(error) => reply.err(error),
            }
        }
    }

    /// A program bootstrap started.
    struct Child {
        program: Program,
        /// Its name-service port: no senders left means the child is gone.
        port: ReceiveRight,
        task: Task,
        status: Option<u64>,
    }

    struct Bootstrap {
        names: Names,
        children: Vec<Child>,
        /// Children that could not be started.
        failed_to_start: usize,
    }

    impl Bootstrap {
        fn child_gone(&mut self, port: Name) -> Dispatched {
            if let Some(child) = self
                .children
                .iter_mut()
                .find(|c| c.port.name() == port && c.status.is_none())
            {
                let status = child.task.wait().unwrap_or(u64::MAX);
                println!(
                    "bootstrap: {} exited with status {}",
                    child.program.name, status as i64
                );
                child.status = Some(status);
            }
            if bootstrap::waited_for_have_exited(self.states()) {
                Dispatched::Stop
            } else {
                Dispatched::Handled
            }
        }

        /// Each child's `daemon` flag and exit status.
        fn states(&self) -> impl Iterator<Item = (bool, Option<u64>)> + '_ {
            self.children.iter().map(|c| (c.program.daemon, c.status))
        }

        fn exit_status(&self) -> i32 {
            bootstrap::exit_status(self.states(), self.failed_to_start)
        }
    }

    impl Dispatch for Bootstrap {
        fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
            match request.id() {
                notify::NO_SENDERS => self.child_gone(request.header.local_port),
                notify::DEAD_NAME => {
                    if let Some(dead) = request.body.get(..4) {
                        let dead = u32::from_le_bytes(dead.try_into().expect("4 bytes"));
                        self.names.table.remove_where(|port| port.name() == dead);
                    }
                    Dispatched::Handled
                }
                _ => {
                    let asker = request.header.local_port;
                    self.names.asker_has_devices = self
                        .children
                        .iter()
                        .any(|c| c.port.name() == asker && c.program.devices);
                    let dispatched = names::dispatch(&mut self.names, request, outbox);
                    self.names.asker_has_devices = false;
                    dispatched
                }
            }
        }
    }

    /// Starts `programs` and serves them until all but daemons have exited; the exit status.
    /// `host` is the host port.
    pub fn run(programs: &'static [Program], host: Name) -> i32 {
        let set = PortSet::allocate().expect("bootstrap: port set");
        let notify = ReceiveRight::allocate().expect("bootstrap: notification port");
        set.insert(&notify)
            .expect("bootstrap: notification port into the set");
        // The device master port, and whether there is a disk: programs that depend on one
        // (the disk pager, or zpager in its absence) start accordingly.
        let disk_present = sys::host_device_master(host).is_ok_and(|master| {
            device_master::Client::new(SendRight::from_raw(master))
                .open(FIRST_DISK.into())
                .is_ok()
        });
        let device_master = sys::host_device_master(host).ok().map(SendRight::from_raw);
        let mut bootstrap = Bootstrap {
            names: Names {
                table: NameTable::new(NAME_TABLE_CAPACITY),
                notify: notify.name(),
                host,
                device_master,
                asker_has_devices: false,
            },
            children: Vec::new(),
            failed_to_start: 0,
        };
        let zcache = {
            let mut buffer = [0u8; 32];
            sys::kernel_option("zcache", &mut buffer)
                .ok()
                .and_then(|length| core::str::from_utf8(&buffer[..length]).ok())
                .and_then(bootstrap::parse_size)
        };
        for &program in programs {
            let Some(argument) = program.start_argument(disk_present, zcache) else {
                continue;
            };
            match start(program, argument, &set, host) {
                Ok((child, service)) => {
                    if let Some(service) = service {
                        // A collocated server cannot wait for the name service's answer:
                        // bootstrap registers its service port for it.
                        if let Err(error) =
                            bootstrap.names.table.register(program.name.into(), service)
                        {
                            println!("bootstrap: cannot register {}: {error:?}", program.name);
                        }
                    }
                    bootstrap.children.push(child)
                }
                Err(error) => {
                    println!("bootstrap: cannot start {}: {error}", program.name);
                    bootstrap.failed_to_start += 1;
                }
            }
        }
        if !bootstrap::waited_for_have_exited(bootstrap.states()) {
            if let Err(error) = libipc::interface::serve(&set, &mut bootstrap) {
                println!("bootstrap: the name service stopped: {error:?}");
                return 2;
            }
        }
        bootstrap.exit_status()
    }

    /// Starts `program` with a send right to a new name-service port of its own and `argument`
    /// as its second start argument; a collocated one (through `host`, the host port) also
    /// gives its service port.
    fn start(
        program: Program,
        argument: u64,
        set: &PortSet,
        host: Name,
    ) -> Result<(Child, Option<SendRight>), libipc::abi::KernReturn> {
        let port = ReceiveRight::allocate()?;
        set.insert(&port)?;
        let send = port.make_send()?;
        let (task, service) = if program.collocated {
            let (task, service) =
                sys::task_spawn_collocated(host, program.name, send.name(), argument)?;
            let task = Task::from_port(SendRight::from_raw(task));
            (task, Some(SendRight::from_raw(service)))
        } else {
            (Task::spawn(program.name, Some(&send), argument)?, None)
        };
        // Armed while our own send right still stands, so it fires even if the child has
        // already exited, once we let go of ours below.
        sys::port_request_notification(port.name(), notify::NO_SENDERS, port.name())?;
        drop(send);
        let child = Child {
            program,
            port,
            task,
            status: None,
        };
        Ok((child, service))
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    // The kernel hands the first task the privileged host port; bootstrap keeps it, gives it
    // to nobody, and uses it to power the machine off when its programs are done.
    let host = args.arg0 as u32;
    libipc::println!("bootstrap: started");
    let status = if start::START.is_empty() {
        0
    } else {
        serve::run(start::START, host)
    };
    if host != 0 {
        let error = libipc::sys::host_shutdown(host, status as u64);
        libipc::println!("bootstrap: cannot shut down: {error}");
    }
    status
}

/// On the host (`cargo test` at the workspace root) the program is an empty binary.
#[cfg(not(target_os = "none"))]
fn main() {}
