//! `bootstrap`: the first task the kernel starts. It holds the privileged host port the
//! kernel gives it, starts the name server (`servers/names`: a task, or collocated in the
//! kernel when the kernel's `collocate=` names it), then the programs that
//! `servers/boot.toml` marks `start = true`, each with a port of its own at the name service
//! ([`libipc::names`]); reports each one's exit, and once all have exited powers the machine
//! off through the host port: with status 0 if every one exited with 0, else 1. With nothing
//! to start it announces itself and shuts down with 0. Programs marked `daemon = true` serve
//! for good: bootstrap does not wait for them.
//!
//! The name server makes registered pagers the kernel's (it has the host port for that).
//!
//! With a disk it starts the disk pager (`default_pager`), without one zpager; with a disk
//! and the kernel option `zcache=SIZE`, both: zpager with a budget of SIZE as the default
//! pager, stacked in front of the disk pager as a compressed cache. Only programs marked
//! `devices = true` get the device master port when they look it up.
//!
//! Each child gets its own port at the name service (`admin.client`), and bootstrap keeps no
//! send right to it: when the port has no senders left the name server tells bootstrap's
//! watcher port for the child, which says the child is gone (unless it handed its right on,
//! in which case when the last holder is), and `TaskWait` reads its status at once. That
//! keeps bootstrap a single thread that never blocks but in its receive.
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
    use alloc::vec::Vec;

    use bootstrap::Program;
    use libipc::device::{device_master, FIRST_DISK};
    use libipc::interface::{Dispatch, Dispatched, Outbox};
    use libipc::ipc::{Name, PortSet, ReceiveRight, Received, SendRight, Task};
    use libipc::names::{admin, spawn_registered_answering, ADMIN_NAME, CLIENT_GONE, HOST_NAME};
    use libipc::{println, sys};

    /// How long the name server's task build has to hand over its admin port.
    const NAMES_START_MS: u64 = 10_000;

    /// A program bootstrap started.
    struct Child {
        program: Program,
        /// Told by the name server when the child's port there has no senders left: the
        /// child (and whoever it handed its right to) is gone.
        watcher: ReceiveRight,
        task: Task,
        status: Option<u64>,
    }

    struct Bootstrap {
        children: Vec<Child>,
        /// Children that could not be started.
        failed_to_start: usize,
    }

    impl Bootstrap {
        fn child_gone(&mut self, watcher: Name) -> Dispatched {
            if let Some(child) = self
                .children
                .iter_mut()
                .find(|c| c.watcher.name() == watcher && c.status.is_none())
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
        fn dispatch(&mut self, request: &Received<'_>, _: &mut Outbox) -> Dispatched {
            match request.id() {
                CLIENT_GONE => self.child_gone(request.header.local_port),
                // Nothing else comes to the watchers; what does is dropped.
                _ => Dispatched::Handled,
            }
        }
    }

    /// Whether the kernel's `collocate=` option names `program`.
    fn collocate_option_names(program: &str) -> bool {
        let mut buffer = [0u8; 256];
        sys::kernel_option("collocate", &mut buffer)
            .ok()
            .and_then(|length| core::str::from_utf8(&buffer[..length]).ok())
            .is_some_and(|names| names.split(',').any(|name| name == program))
    }

    /// Starts the name server (`names`): collocated in the kernel when `collocate=` names it,
    /// else as a task. Returns the client of its admin port, and its task.
    fn start_names(host: Name) -> Result<(admin::Client, Task), libipc::abi::KernReturn> {
        if collocate_option_names("names") {
            let (task, admin) = sys::task_spawn_collocated(host, "names", host, 0)?;
            let task = Task::from_port(SendRight::from_raw(task));
            return Ok((admin::Client::new(SendRight::from_raw(admin)), task));
        }
        // The task build looks the host port up and registers its admin port with a
        // service of ours, for the time of its start.
        let host = SendRight::from_raw(host);
        let started = spawn_registered_answering(
            "names",
            ADMIN_NAME,
            NAMES_START_MS,
            &[(HOST_NAME, &host)],
            0,
        );
        // (Ours still: the lookup's answer was a copy.)
        let _ = host.into_raw();
        let (task, admin) = started?;
        Ok((admin::Client::new(admin), task))
    }

    /// The programs the kernel's `start=` option names, to start besides `servers/boot.toml`'s
    /// (waited for as those are; no devices, not collocated).
    pub fn start_option() -> Vec<Program> {
        let mut buffer = [0u8; 256];
        let Some(names) = sys::kernel_option("start", &mut buffer)
            .ok()
            .and_then(|length| core::str::from_utf8(&buffer[..length]).ok())
        else {
            return Vec::new();
        };
        names
            .split(',')
            .map(|name| Program {
                // Read once, kept for bootstrap's life.
                name: alloc::boxed::Box::leak(alloc::string::String::from(name).into_boxed_str()),
                daemon: false,
                devices: false,
                disk: None,
                collocated: false,
            })
            .collect()
    }

    /// Starts `programs`, then `extra` (the kernel's `start=`, those not among `programs`),
    /// and serves them until all but daemons have exited; the exit status. `host` is the
    /// host port.
    pub fn run(programs: &'static [Program], extra: &[Program], host: Name) -> i32 {
        let (mut names, _names_task) = match start_names(host) {
            Ok(started) => started,
            Err(error) => {
                println!("bootstrap: cannot start the name service: {error}");
                return 2;
            }
        };
        let set = PortSet::allocate().expect("bootstrap: port set");
        // Whether there is a disk: programs that depend on one (the disk pager, or zpager in
        // its absence) start accordingly.
        let disk_present = sys::host_device_master(host).is_ok_and(|master| {
            device_master::Client::new(SendRight::from_raw(master))
                .open(FIRST_DISK.into())
                .is_ok()
        });
        let mut bootstrap = Bootstrap {
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
        let extra = extra
            .iter()
            .filter(|e| programs.iter().all(|p| p.name != e.name));
        for &program in programs.iter().chain(extra) {
            let Some(argument) = program.start_argument(disk_present, zcache) else {
                continue;
            };
            match start(program, argument, &set, host, &mut names) {
                Ok((child, service)) => {
                    if let Some(service) = service {
                        // A collocated server cannot wait for the name service's answer:
                        // bootstrap registers its service port for it.
                        if let Err(error) = names.register(program.name.into(), &service) {
                            println!("bootstrap: cannot register {}: {error}", program.name);
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
                println!("bootstrap: waiting for its programs failed: {error:?}");
                return 2;
            }
        }
        bootstrap.exit_status()
    }

    /// Starts `program` with a port of its own at the name service (`names`, its admin
    /// client) and `argument` as its second start argument, watching the port from a port of
    /// ours in `set`; a collocated one (through `host`, the host port) also gives its
    /// service port.
    fn start(
        program: Program,
        argument: u64,
        set: &PortSet,
        host: Name,
        names: &mut admin::Client,
    ) -> Result<(Child, Option<SendRight>), alloc::string::String> {
        use alloc::format;
        let failed = |error: libipc::abi::KernReturn| format!("{error}");
        let watcher = ReceiveRight::allocate().map_err(failed)?;
        set.insert(&watcher).map_err(failed)?;
        let port = {
            let watching = watcher.make_send().map_err(failed)?;
            names
                .client(program.devices, &watching)
                .map_err(|error| format!("no port at the name service: {error}"))?
        };
        let (task, service) = if program.collocated {
            let (task, service) =
                sys::task_spawn_collocated(host, program.name, port.name(), argument)
                    .map_err(failed)?;
            let task = Task::from_port(SendRight::from_raw(task));
            (task, Some(SendRight::from_raw(service)))
        } else {
            (
                Task::spawn(program.name, Some(&port), argument).map_err(failed)?,
                None,
            )
        };
        // Ours goes: the child's copy is the port's only sender now.
        drop(port);
        let child = Child {
            program,
            watcher,
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
    let extra = serve::start_option();
    let status = if start::START.is_empty() && extra.is_empty() {
        0
    } else {
        serve::run(start::START, &extra, host)
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
