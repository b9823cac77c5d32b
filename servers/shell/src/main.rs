//! `shell`: what `cargo image run` boots to. Bootstrap starts it (with the name service);
//! it reads command lines from the console with line editing and history, runs the
//! built-in commands (`help`, `ps`, `vmstat`, `swapinfo`, `echo`, `sleep`, `exit`) and
//! starts programs from the boot archive (`sheeptest`, `nonaim`, `run PROGRAM ARGS`) as
//! tasks of their own, Ctrl-C ending the one in the foreground. At the end of input
//! (Ctrl-D on an empty line: the image tool sends one when its own input ends) it exits
//! with status 0, and bootstrap powers the machine off. With the kernel's `sh="CMD; CMD"`
//! option it runs those commands instead and exits with the last one's status.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    run::main(args.arg0 as u32)
}

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod run {
    use alloc::string::String;
    use alloc::vec::Vec;
    use libipc::abi::swapper::{name_str, why_name, TaskInfo};
    use libipc::abi::syscall::{VmStatistics, ARGS_MAX, HOST_TICKS, HOST_TOTAL_FRAMES};
    use libipc::abi::KernReturn;
    use libipc::{print, println, sys};
    use shell::{commands, kib, program_args, Editor, Event};

    /// Ctrl-C.
    const INTERRUPT: u8 = 0x03;
    /// How often a running job's console is looked at for Ctrl-C (ms).
    const POLL_MS: u64 = 50;
    const TICKS_PER_SECOND: u64 = 100;
    /// The status of a command that could not run (unknown, bad arguments).
    const USAGE: i32 = 2;
    /// The status of a job Ctrl-C ended.
    const INTERRUPTED: i32 = 130;

    pub fn main(names: u32) -> i32 {
        let mut shell = Shell {
            names,
            pending: Vec::new(),
        };
        wait_for_default_pager();
        let mut script = [0u8; ARGS_MAX];
        if let Ok(n) = sys::kernel_option("sh", &mut script) {
            let script = core::str::from_utf8(&script[..n]).unwrap_or("");
            println!("shell: running sh=\"{script}\"");
            let mut status = 0;
            for words in commands(script) {
                println!("$ {}", words.join(" "));
                status = shell.command(&words);
            }
            println!("shell: done, status {status}");
            return status;
        }
        println!("shell: type `help` for the commands; Ctrl-D on an empty line powers off");
        let mut editor = Editor::new();
        loop {
            print!("$ ");
            match shell.read_line(&mut editor) {
                Event::Line(line) => {
                    for words in commands(&line) {
                        shell.command(&words);
                    }
                }
                Event::Interrupt => {}
                Event::End => {
                    println!();
                    println!("shell: end of input; powering off");
                    return 0;
                }
            }
        }
    }

    struct Shell {
        /// The name service's send right (what started programs get).
        names: u32,
        /// Input read while a job ran, for the next line.
        pending: Vec<u8>,
    }

    fn echo(bytes: &[u8]) {
        let _ = sys::debug_write(bytes);
    }

    impl Shell {
        /// The next event of the editor: input typed ahead first, then the console's.
        fn read_line(&mut self, editor: &mut Editor) -> Event {
            let typed_ahead = core::mem::take(&mut self.pending);
            let mut rest = typed_ahead.iter();
            for &b in rest.by_ref() {
                if let Some(event) = editor.feed(b, &mut echo) {
                    self.pending = rest.copied().collect();
                    return event;
                }
            }
            let mut buffer = [0u8; 256];
            loop {
                let n = match sys::console_read(&mut buffer, u64::MAX) {
                    Ok(n) => n,
                    Err(e) => {
                        println!("shell: console: {e}");
                        return Event::End;
                    }
                };
                for (i, &b) in buffer[..n].iter().enumerate() {
                    if let Some(event) = editor.feed(b, &mut echo) {
                        self.pending.extend_from_slice(&buffer[i + 1..n]);
                        return event;
                    }
                }
            }
        }

        /// Whether Ctrl-C was typed, ahead or now (other input is kept for the next line).
        fn interrupted(&mut self) -> bool {
            if let Some(at) = self.pending.iter().position(|&b| b == INTERRUPT) {
                self.pending.remove(at);
                return true;
            }
            let mut buffer = [0u8; 256];
            let n = sys::console_read(&mut buffer, 0).unwrap_or(0);
            let mut hit = false;
            for &b in &buffer[..n] {
                if b == INTERRUPT {
                    hit = true;
                } else {
                    self.pending.push(b);
                }
            }
            hit
        }

        /// Runs one command; its status.
        fn command(&mut self, words: &[&str]) -> i32 {
            let (&name, rest) = words.split_first().expect("commands have words");
            match name {
                "help" => help(),
                "ps" => ps(),
                "vmstat" => self.vmstat(rest),
                "swapinfo" => self.swapinfo(),
                "echo" => {
                    println!("{}", rest.join(" "));
                    0
                }
                "sleep" => match rest {
                    [secs] if secs.parse::<u64>().is_ok() => {
                        let ticks = secs.parse::<u64>().unwrap_or(0) * TICKS_PER_SECOND;
                        let end = ticks_now() + ticks;
                        while ticks_now() < end {
                            if self.interrupted() {
                                return INTERRUPTED;
                            }
                            libipc::rt::sleep_ms(POLL_MS);
                        }
                        0
                    }
                    _ => usage("sleep SECONDS"),
                },
                "exit" | "poweroff" => {
                    let status = rest.first().and_then(|s| s.parse().ok()).unwrap_or(0);
                    println!("shell: exit {status}; powering off");
                    sys::task_exit(status)
                }
                "sheeptest" | "nonaim" => self.job(name, rest),
                "run" => match rest.split_first() {
                    Some((program, args)) => self.job(program, args),
                    None => usage("run PROGRAM [ARGUMENTS...]"),
                },
                other => {
                    println!("shell: {other}: no such command (try `help`)");
                    USAGE
                }
            }
        }

        /// Starts `program` with `args` (joined by commas) and waits for it, ending it on
        /// Ctrl-C; its exit status.
        fn job(&mut self, program: &str, args: &[&str]) -> i32 {
            let args = match program_args(args, ARGS_MAX) {
                Ok(args) => args,
                Err(len) => {
                    println!("shell: arguments of {len} bytes; at most {ARGS_MAX}");
                    return USAGE;
                }
            };
            let task = match sys::task_spawn_with_args(program, self.names, 0, &args) {
                Ok(task) => task,
                Err(KernReturn::InvalidArgument) => {
                    println!("shell: {program}: no such program in the boot archive");
                    return USAGE;
                }
                Err(e) => {
                    println!("shell: {program}: cannot start: {e}");
                    return 1;
                }
            };
            let started = ticks_now();
            let status = loop {
                match sys::task_wait_timeout(task, POLL_MS) {
                    Ok(status) => break status,
                    Err(KernReturn::OperationTimedOut) => {}
                    Err(e) => {
                        println!("shell: waiting for {program}: {e}");
                        break u64::MAX;
                    }
                }
                if self.interrupted() {
                    println!("^C");
                    let _ = sys::task_terminate_job(task);
                    let _ = sys::task_wait(task);
                    let _ = sys::port_deallocate(task);
                    println!("shell: {program} stopped");
                    return INTERRUPTED;
                }
            };
            let _ = sys::port_deallocate(task);
            let secs = ticks_now().saturating_sub(started);
            if status == u64::MAX {
                println!("shell: {program} was terminated ({} s)", Seconds(secs));
                return 1;
            }
            let status = status as i32;
            if status != 0 {
                println!(
                    "shell: {program} exited with status {status} ({} s)",
                    Seconds(secs)
                );
            }
            status
        }

        /// `vmstat [SECS [COUNT]]`: the counters once, or every SECS seconds (COUNT times,
        /// else until Ctrl-C), as changes per interval.
        fn vmstat(&mut self, args: &[&str]) -> i32 {
            let numbers: Option<Vec<u64>> = args.iter().map(|a| a.parse().ok()).collect();
            let (interval, count) = match numbers.as_deref() {
                Some([]) => (None, 1),
                Some([secs]) if *secs > 0 => (Some(*secs), u64::MAX),
                Some([secs, count]) if *secs > 0 => (Some(*secs), *count),
                _ => return usage("vmstat [SECONDS [COUNT]]"),
            };
            let Ok(mut before) = sys::vm_statistics() else {
                println!("shell: vmstat: no statistics");
                return 1;
            };
            let total = sys::host_info(HOST_TOTAL_FRAMES).unwrap_or(0);
            println!(
                "{:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
                "free KiB",
                "res KiB",
                "kern KiB",
                "faults",
                "zerofill",
                "pageins",
                "pageouts",
                "disk rd",
                "disk wr",
                "swpout"
            );
            let mut swap_before = sys::swapper_info().map(|s| s.swap_outs).unwrap_or(0);
            let mut shown = 0;
            loop {
                let base = if interval.is_some() && shown > 0 {
                    Some(&before)
                } else {
                    None
                };
                let Ok(now) = sys::vm_statistics() else {
                    return 1;
                };
                let swap_now = sys::swapper_info().map(|s| s.swap_outs).unwrap_or(0);
                let d = |f: fn(&VmStatistics) -> u64| f(&now) - base.map_or(0, f);
                println!(
                    "{:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
                    kib(now.free_frames),
                    kib(now.resident_pages),
                    Self::kernel_kib(),
                    d(|s| s.faults),
                    d(|s| s.zero_fills),
                    d(|s| s.pageins),
                    d(VmStatistics::returned_pages),
                    d(|s| s.device_reads),
                    d(|s| s.device_writes),
                    swap_now - if base.is_some() { swap_before } else { 0 },
                );
                shown += 1;
                before = now;
                swap_before = swap_now;
                let Some(secs) = interval else {
                    break;
                };
                if shown >= count {
                    break;
                }
                let end = ticks_now() + secs * TICKS_PER_SECOND;
                while ticks_now() < end {
                    if self.interrupted() {
                        return 0;
                    }
                    libipc::rt::sleep_ms(POLL_MS);
                }
            }
            if interval.is_none() {
                println!(
                    "(memory {} KiB in all; kern: the kernel heap in use and all page tables, \
                     at most {} % before new tasks are refused; counts since boot)",
                    kib(total),
                    libipc::abi::syscall::KERNEL_MEMORY_BUDGET_PERCENT
                );
            }
            0
        }

        /// The kernel's memory that pageout cannot take: its heap in use and every task's
        /// page tables, in KiB.
        fn kernel_kib() -> u64 {
            use libipc::abi::syscall::{HOST_HEAP_BYTES, HOST_TABLE_FRAMES};
            sys::host_info(HOST_HEAP_BYTES).unwrap_or(0) / 1024
                + kib(sys::host_info(HOST_TABLE_FRAMES).unwrap_or(0))
        }

        /// `swapinfo`: the paging space (the disk pager's segments and counters) and the
        /// task swapper's state and trace.
        fn swapinfo(&mut self) -> i32 {
            self.paging_space();
            let Ok(s) = sys::swapper_info() else {
                println!("shell: swapinfo: no swapper_info");
                return 1;
            };
            println!(
                "swapper: {}; paging {} pages/s (5 s average), {} (30 s), highest {}; paging \
                 device busy {}% (5 s), {}% (30 s), capacity {} pages/s; swap out above {}, \
                 back in below {}",
                if s.enabled == 1 {
                    "on"
                } else {
                    "off (swapper=off)"
                },
                s.short_rate,
                s.long_rate,
                s.highest_rate,
                s.busy_short,
                s.busy_long,
                s.capacity,
                s.start,
                s.stop,
            );
            println!(
                "swapper: {} out, {} in ({} as paging fell, {} with room, {} by a message, {} \
                 after the longest wait), {} asked by hand, {} passes found none eligible; {} \
                 out now",
                s.swap_outs,
                s.swap_ins,
                s.ins_rate_fell,
                s.ins_room,
                s.ins_message,
                s.ins_starved,
                s.asked,
                s.none_eligible,
                s.swapped_out,
            );
            let now = ticks_now();
            for e in s.events() {
                println!(
                    "  {} s ago: {} task {} ({}), {} pages: {}; paging {}/s (5 s) {}/s (30 s), \
                     threshold {}/s",
                    Seconds(now.saturating_sub(e.tick)),
                    if e.out == 1 { "out" } else { "in " },
                    e.task,
                    name_str(&e.name),
                    e.pages,
                    why_name(e.why),
                    e.short_rate,
                    e.long_rate,
                    e.threshold,
                );
            }
            0
        }

        /// The default pager's paging space, if it tells (the disk pager does).
        fn paging_space(&self) {
            use libipc::interface::SendRight;
            use libipc::pager::{backing_store, DEFAULT_PAGER_NAME};
            let mut names = libipc::names::Client::new(SendRight::from_raw(self.names));
            let pager = names.lookup(String::from(DEFAULT_PAGER_NAME));
            let _ = names.into_transport().into_server().into_raw();
            let Ok(pager) = pager else {
                println!("paging space: no default pager registered");
                return;
            };
            let mut client = backing_store::Client::new(pager);
            match client.info() {
                Ok(i) => {
                    println!(
                        "paging space: {} of {} clusters of {} pages in use (peak {}), {} \
                         objects; {} pages out in {} clusters, {} in in {} clusters; {} reads, \
                         {} writes, {} errors, {} refused returns",
                        i.clusters_used,
                        i.clusters_total,
                        i.cluster_pages,
                        i.clusters_peak,
                        i.objects,
                        i.pages_out,
                        i.clusters_out,
                        i.pages_in,
                        i.clusters_in,
                        i.device_reads,
                        i.device_writes,
                        i.io_errors,
                        i.refused_returns,
                    );
                    let used: Vec<String> = i
                        .segment_clusters_used
                        .iter()
                        .enumerate()
                        .filter(|&(_, &n)| n > 0)
                        .map(|(s, n)| alloc::format!("segment {s}: {n}"))
                        .collect();
                    if !used.is_empty() {
                        println!(
                            "paging space: clusters used by segment: {}",
                            used.join(", ")
                        );
                    }
                }
                Err(e) => println!("paging space: the default pager does not say ({e})"),
            }
        }
    }

    /// Bootstrap starts the default pager as it starts the shell: the workloads want it
    /// registered, so the first command waits for it (a few seconds at most).
    fn wait_for_default_pager() {
        use libipc::abi::syscall::HOST_DEFAULT_PAGER;
        let end = ticks_now() + 5 * TICKS_PER_SECOND;
        while sys::host_info(HOST_DEFAULT_PAGER) != Ok(1) && ticks_now() < end {
            libipc::rt::sleep_ms(10);
        }
    }

    fn usage(what: &str) -> i32 {
        println!("usage: {what}");
        USAGE
    }

    fn ticks_now() -> u64 {
        sys::host_info(HOST_TICKS).unwrap_or(0)
    }

    fn help() -> i32 {
        println!(
            "commands (several on a line with `;`):
  help                  this list
  ps                    tasks: threads, resident and paged-out memory, swapped or not;
                        the kernel's counts and memory by what holds it
  vmstat [SECS [COUNT]] memory and paging counters, or their changes every SECS seconds
  swapinfo              the paging space and the task swapper's state and last decisions
  sheeptest [P S R]     seed 004's sheeptest: P processes x S bytes, R rounds (4 4M 1)
  nonaim [ARGS]         the NONAIM multiuser workload
  run PROGRAM [ARGS]    any program of the boot archive (arguments joined by commas)
  echo WORDS            prints the words
  sleep SECS            waits
  exit [STATUS]         powers off (so does Ctrl-D on an empty line)
Ctrl-C stops the command running; the arrow keys walk the history."
        );
        0
    }

    fn ps() -> i32 {
        let tasks: Vec<TaskInfo> = match sys::host_tasks(1024) {
            Ok(tasks) => tasks,
            Err(e) => {
                println!("shell: ps: {e}");
                return 1;
            }
        };
        println!(
            "{:>5} {:>5} {:<20} {:>7} {:>10} {:>10} {:>10} {:>7} {:>8}  state",
            "id", "job", "name", "threads", "res KiB", "out KiB", "virt KiB", "pt KiB", "kern KiB"
        );
        for t in &tasks {
            let state = if t.swapped_out == 1 {
                if t.held_threads > 0 {
                    "swapped out (threads held)"
                } else {
                    "swapped out"
                }
            } else if t.privileged == 1 {
                "pager"
            } else {
                "in"
            };
            println!(
                "{:>5} {:>5} {:<20} {:>7} {:>10} {:>10} {:>10} {:>7} {:>8}  {state}",
                t.id,
                t.job,
                name_str(&t.name),
                t.threads,
                kib(t.resident_pages),
                kib(t.paged_out_pages),
                t.virtual_bytes / 1024,
                kib(t.table_pages),
                t.kernel_bytes.div_ceil(1024),
            );
        }
        println!("{} tasks", tasks.len());
        summary()
    }

    /// `ps`'s last lines: the kernel's counts and the memory by what holds it.
    fn summary() -> i32 {
        use libipc::abi::syscall::{
            HOST_PORTS, HOST_SHARED_TEXT_PAGES, HOST_SHARED_TEXT_TABLES, HOST_TASKS, HOST_THREADS,
            HOST_VM_OBJECTS,
        };
        let count = |key| sys::host_info(key).unwrap_or(0);
        println!(
            "kern.tasks {}  kern.threads {}  kern.ports {}  vm.objects {}",
            count(HOST_TASKS),
            count(HOST_THREADS),
            count(HOST_PORTS),
            count(HOST_VM_OBJECTS)
        );
        let memory = match sys::memory_by_kind() {
            Ok(memory) => memory,
            Err(e) => {
                println!("shell: ps: {e}");
                return 1;
            }
        };
        let mut line = alloc::format!("memory KiB: {} managed =", kib(memory.total));
        for (i, (kind, pages)) in memory.kinds().iter().enumerate() {
            let plus = if i == 0 { "" } else { " +" };
            line.push_str(&alloc::format!("{plus} {} {kind}", kib(*pages)));
        }
        println!("{line}");
        println!(
            "  outside them: kernel image {} KiB, boot modules {} KiB",
            memory.kernel_image_bytes.div_ceil(1024),
            memory.boot_module_bytes.div_ceil(1024)
        );
        println!(
            "shared text: {} programs' page tables, {} pages mapped once for all their tasks",
            count(HOST_SHARED_TEXT_TABLES),
            count(HOST_SHARED_TEXT_PAGES)
        );
        0
    }

    /// Ticks shown as seconds with two decimals.
    struct Seconds(u64);

    impl core::fmt::Display for Seconds {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            write!(
                f,
                "{}.{:02}",
                self.0 / TICKS_PER_SECOND,
                self.0 % TICKS_PER_SECOND
            )
        }
    }
}
