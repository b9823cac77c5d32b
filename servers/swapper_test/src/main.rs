//! `swapper_test`: in-guest tests of the task swapper's mechanism. Run as the first task
//! (`init=swapper_test`, with a disk and a small `mem=`), it starts the disk default pager,
//! forks children that fill memory with verifiable words, swaps them out by hand
//! (`task_swap`), pushes their pages out with memory pressure, and checks that they come
//! back, by a message or by hand, with every word and their ports intact; that a swapped-out
//! task's threads do not run; that its pages leave before an idle task's; and that the
//! kernel refuses what it must.
//! Reports `ktest <name> ok` / `ktest <name> FAILED: why`, then `N passed, M failed`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    libipc::rt::selftest::run_with_disk_pager(args.arg0 as u32, cases::ALL)
}

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod cases {
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;
    use libipc::abi::message::Disposition;
    use libipc::abi::swapper::{
        name_str, SwapperInfo, TaskInfo, SWAP_IN, SWAP_OUT, WHY_ASKED, WHY_MESSAGE,
    };
    use libipc::abi::syscall::{HOST_TABLES_COLLECTED, PAGE_SIZE, VM_ANYWHERE};
    use libipc::abi::KernReturn;
    use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight, SendRight, Task};
    use libipc::process::{self, Fork};
    use libipc::rt::selftest::Case;
    use libipc::sys;

    pub const ALL: &[(&str, Case)] = &[
        // First, while this task is still small (its page tables are counted).
        ("ps_lists_every_task", ps_lists_every_task),
        (
            "a_swapped_out_task_comes_back_by_a_message_with_its_memory_and_ports",
            a_swapped_out_task_comes_back_by_a_message,
        ),
        (
            "a_swapped_out_tasks_threads_do_not_run_until_it_is_swapped_in",
            held_threads_do_not_run,
        ),
        ("the_kernel_refuses_what_it_must", refusals),
        (
            "an_idle_tasks_page_tables_are_freed_and_built_again",
            idle_tables_are_freed_and_built_again,
        ),
        (
            "a_swapped_out_tasks_pages_leave_before_those_of_a_task_whose_tables_were_collected",
            swapped_out_pages_leave_before_collected_ones,
        ),
        (
            "a_message_received_into_a_page_paged_in_clean_survives_its_pageout",
            a_message_into_a_clean_page_survives_pageout,
        ),
    ];

    /// The child's memory: 3 MiB, in a 16 MiB guest.
    const CHILD_BYTES: u64 = 3 << 20;
    /// What the parent touches to push the swapped-out child's pages out.
    const PRESSURE_BYTES: u64 = 10 << 20;

    /// Message ids between parent and child.
    const HELLO: u32 = 1;
    const VERIFY: u32 = 2;
    const VERDICT: u32 = 3;
    const EXIT: u32 = 4;
    const TICK: u32 = 5;
    /// A call the child answers on its reply right at once (`PONG`).
    const PING: u32 = 6;
    const PONG: u32 = 7;

    fn word(seed: u64, index: u64) -> u64 {
        (seed ^ index).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
    }

    fn fill(base: u64, bytes: u64, seed: u64) {
        for i in 0..bytes / 8 {
            // SAFETY: `[base, base + bytes)` is this task's own fresh allocation.
            unsafe { ((base + i * 8) as *mut u64).write_volatile(word(seed, i)) };
        }
    }

    /// Words of `[base, base + bytes)` that are not as `fill` wrote them.
    fn wrong_words(base: u64, bytes: u64, seed: u64) -> u64 {
        (0..bytes / 8)
            // SAFETY: as in `fill`.
            .filter(|&i| unsafe { ((base + i * 8) as *const u64).read_volatile() } != word(seed, i))
            .count() as u64
    }

    /// Touches `bytes` of fresh memory page by page and lets it go.
    fn pressure(bytes: u64) -> Result<(), String> {
        let base = sys::vm_allocate(0, bytes, VM_ANYWHERE).map_err(|e| format!("allocate: {e}"))?;
        for page in 0..bytes / PAGE_SIZE {
            // SAFETY: the region was just allocated for this.
            unsafe { ((base + page * PAGE_SIZE) as *mut u64).write_volatile(page + 1) };
        }
        // SAFETY: nothing of ours lives in the region.
        unsafe { sys::vm_deallocate(base, bytes) }.map_err(|e| format!("deallocate: {e}"))
    }

    /// A forked child holding `CHILD_BYTES` of verifiable memory, and its port. A child
    /// dropped before `finish` (its test failed) is terminated, so that it does not outlive
    /// its test, swapped out, and fail the next.
    struct Child {
        task: Task,
        port: SendRight,
        /// The parent's port the child answers on.
        home: ReceiveRight,
    }

    impl Drop for Child {
        fn drop(&mut self) {
            // Refused for a child that has exited already, which is all there is to do.
            if self.task.terminate().is_ok() {
                let _ = process::wait(&self.task);
            }
        }
    }

    /// Forks a child that fills its memory, sends its port home, then serves: `VERIFY` →
    /// a `VERDICT` whose body is the count of wrong words; `EXIT` → exits 0. With `ticking`,
    /// it sends a `TICK` home every 20 ms instead of waiting idle between requests.
    fn spawn_child(seed: u64, ticking: bool) -> Result<Child, String> {
        let home = ReceiveRight::allocate().map_err(|e| format!("port: {e}"))?;
        let home_send = home.make_send().map_err(|e| format!("make send: {e}"))?;
        let home_name = home_send.name();
        match process::fork().map_err(|e| format!("fork: {e}"))? {
            Fork::Child => process::exit(child(home_name, seed, ticking)),
            Fork::Parent(task) => {
                let mut buffer = MessageBuffer::new();
                let hello = ipc::receive(home.name(), &mut buffer, Some(60_000))
                    .map_err(|e| format!("the child's hello: {e:?}"))?;
                if hello.id() != HELLO {
                    return Err(format!("message {} instead of the hello", hello.id()));
                }
                let (port, _) = hello.rights().next().ok_or("no port in the hello")?;
                Ok(Child {
                    task,
                    port: SendRight::from_raw(port),
                    home,
                })
            }
        }
    }

    fn child(home: u32, seed: u64, ticking: bool) -> i32 {
        let Ok(base) = sys::vm_allocate(0, CHILD_BYTES, VM_ANYWHERE) else {
            return 2;
        };
        fill(base, CHILD_BYTES, seed);
        let Ok(mine) = ReceiveRight::allocate() else {
            return 3;
        };
        let mut buffer = MessageBuffer::new();
        let Ok(hello) = OutMessage::new(HELLO, home).carry(mine.name(), Disposition::MakeSend)
        else {
            return 4;
        };
        if ipc::send(&hello, &mut buffer, None).is_err() {
            return 5;
        }
        let timeout = if ticking { 20 } else { 60_000 };
        loop {
            let (id, reply) = match ipc::receive(mine.name(), &mut buffer, Some(timeout)) {
                Ok(m) => (m.id(), m.reply().map(|(name, _)| name)),
                Err(_) if ticking => {
                    let _ = ipc::send(&OutMessage::new(TICK, home), &mut buffer, Some(1000));
                    continue;
                }
                Err(_) => return 6,
            };
            match id {
                VERIFY => {
                    let wrong = wrong_words(base, CHILD_BYTES, seed).to_le_bytes();
                    let verdict = OutMessage::new(VERDICT, home).with_body(&wrong);
                    if ipc::send(&verdict, &mut buffer, None).is_err() {
                        return 7;
                    }
                }
                PING => {
                    let Some(reply) = reply else { return 9 };
                    let pong = OutMessage::new(PONG, reply).to(reply, Disposition::MoveSendOnce);
                    if ipc::send(&pong, &mut buffer, None).is_err() {
                        return 10;
                    }
                }
                EXIT => return 0,
                _ => return 8,
            }
        }
    }

    impl Child {
        /// Asks the child to verify its memory; the wrong words it found. Ticks that
        /// arrive meanwhile are skipped.
        fn verify(&self) -> Result<u64, String> {
            let mut buffer = MessageBuffer::new();
            ipc::send(
                &OutMessage::new(VERIFY, self.port.name()),
                &mut buffer,
                None,
            )
            .map_err(|e| format!("send verify: {e:?}"))?;
            loop {
                let m = ipc::receive(self.home.name(), &mut buffer, Some(60_000))
                    .map_err(|e| format!("the verdict: {e:?}"))?;
                if m.id() == TICK {
                    continue;
                }
                let body: [u8; 8] = m
                    .body
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or("a short verdict")?;
                return Ok(u64::from_le_bytes(body));
            }
        }

        /// Tells the child to exit and waits for it: its status.
        fn finish(self) -> Result<u64, String> {
            let mut buffer = MessageBuffer::new();
            ipc::send(&OutMessage::new(EXIT, self.port.name()), &mut buffer, None)
                .map_err(|e| format!("send exit: {e:?}"))?;
            process::wait(&self.task).map_err(|e| format!("wait: {e}"))
        }

        /// Ticks waiting now at home, taken.
        fn drain_ticks(&self) -> u64 {
            let mut buffer = MessageBuffer::new();
            let mut ticks = 0;
            while ipc::receive(self.home.name(), &mut buffer, Some(0)).is_ok_and(|m| m.id() == TICK)
            {
                ticks += 1;
            }
            ticks
        }
    }

    fn info() -> Result<SwapperInfo, String> {
        sys::swapper_info().map_err(|e| format!("swapper_info: {e}"))
    }

    fn tasks() -> Result<Vec<TaskInfo>, String> {
        sys::host_tasks(256).map_err(|e| format!("host_tasks: {e}"))
    }

    /// This program's swapped-out tasks, as `ps` shows them.
    fn swapped_out() -> Result<Vec<TaskInfo>, String> {
        Ok(tasks()?
            .into_iter()
            .filter(|t| t.swapped_out == 1 && name_str(&t.name) == "swapper_test")
            .collect())
    }

    macro_rules! check {
        ($cond:expr, $($why:tt)*) => {
            if !$cond {
                return Err(format!($($why)*));
            }
        };
    }

    /// A task that does not run for a while loses its page tables (not its memory, and it
    /// is not swapped out); when it runs again, faults build them from its map and its
    /// memory reads back whole.
    fn idle_tables_are_freed_and_built_again() -> Result<(), String> {
        let earlier: Vec<u64> = tasks()?.iter().map(|t| t.id).collect();
        let child = spawn_child(11, false)?;
        let find = || -> Result<TaskInfo, String> {
            tasks()?
                .into_iter()
                .find(|t| !earlier.contains(&t.id) && name_str(&t.name) == "swapper_test")
                .ok_or_else(|| String::from("the child is not in ps"))
        };
        let fresh = find()?;
        check!(
            fresh.table_pages > 0 && fresh.resident_pages >= CHILD_BYTES / PAGE_SIZE,
            "a fresh child with {} table pages mapping {} pages",
            fresh.table_pages,
            fresh.resident_pages
        );
        let collected = sys::host_info(HOST_TABLES_COLLECTED).map_err(|e| format!("{e}"))?;
        // Two of the kernel's one-second passes: the first finds it has run (its tables were
        // walked), the second that it has not since.
        libipc::rt::sleep_ms(2_500);
        let idle = find()?;
        check!(
            idle.table_pages == 0 && idle.resident_pages == 0 && idle.swapped_out == 0,
            "after 2.5 s blocked the child has {} table pages mapping {} pages (swapped out: {})",
            idle.table_pages,
            idle.resident_pages,
            idle.swapped_out
        );
        let now = sys::host_info(HOST_TABLES_COLLECTED).map_err(|e| format!("{e}"))?;
        check!(
            now > collected + fresh.table_pages,
            "{} table pages counted collected, the child alone had {} and its root",
            now - collected,
            fresh.table_pages
        );
        // A call, which the IPC fast path would hand straight to the waiting child: it has no
        // page-table root now, so the general path takes it and builds one first.
        let reply = ReceiveRight::allocate().map_err(|e| format!("port: {e}"))?;
        let mut buffer = MessageBuffer::new();
        let ping = OutMessage::new(PING, child.port.name()).reply_to(reply.name());
        // (No timeout: the fast path takes calls without one.)
        let pong = ipc::call(&ping, reply.name(), &mut buffer, None)
            .map_err(|e| format!("the call to the idle child: {e:?}"))?;
        check!(pong.id() == PONG, "the idle child answered {}", pong.id());
        let wrong = child.verify()?;
        check!(
            wrong == 0,
            "{wrong} words wrong after the tables were built again"
        );
        let back = find()?;
        check!(
            back.table_pages > 0 && back.resident_pages >= CHILD_BYTES / PAGE_SIZE,
            "after running again the child has {} table pages mapping {} pages",
            back.table_pages,
            back.resident_pages
        );
        let status = child.finish()?;
        check!(status == 0, "the child exited with {status}");
        Ok(())
    }

    /// The pages of a swapped-out task go to the head of the inactive queue, to leave first.
    /// A task whose page tables are collected because it has been idle is another matter:
    /// its pages keep their places, so one collected after the swap-out does not push the
    /// swapped-out task's pages back (the pressure then took an idle child's pages and left
    /// the swapped-out one's resident).
    fn swapped_out_pages_leave_before_collected_ones() -> Result<(), String> {
        let earlier: Vec<u64> = tasks()?.iter().map(|t| t.id).collect();
        let newest = |earlier: &[u64]| -> Result<u64, String> {
            tasks()?
                .into_iter()
                .find(|t| !earlier.contains(&t.id) && name_str(&t.name) == "swapper_test")
                .map(|t| t.id)
                .ok_or_else(|| String::from("a child is not in ps"))
        };
        let by_id = |id: u64| -> Result<TaskInfo, String> {
            tasks()?
                .into_iter()
                .find(|t| t.id == id)
                .ok_or_else(|| String::from("a child left ps"))
        };
        let idle = spawn_child(17, false)?;
        let idle_id = newest(&earlier)?;
        let out = spawn_child(19, false)?;
        let out_id = newest(&[earlier.as_slice(), &[idle_id]].concat())?;
        sys::task_swap(out.task.port().name(), SWAP_OUT).map_err(|e| format!("swap out: {e}"))?;
        // Two of the kernel's one-second passes: the idle child's tables go after the
        // swap-out. (The swapper may bring the other back meanwhile, as the paging rate
        // falls: its pages stay first in line, as nothing has used them.)
        libipc::rt::sleep_ms(2_500);
        check!(
            by_id(idle_id)?.table_pages == 0,
            "the idle child still has {} table pages after 2.5 s",
            by_id(idle_id)?.table_pages
        );
        // Enough to send out about one child's worth: which one's is the question. (With
        // the idle child's pages put first when its tables went: 0 and 771.)
        pressure(6 << 20)?;
        let out_paged = by_id(out_id)?.paged_out_pages;
        let idle_paged = by_id(idle_id)?.paged_out_pages;
        check!(
            out_paged >= CHILD_BYTES / PAGE_SIZE * 3 / 4 && idle_paged < out_paged / 2,
            "the swapped-out child has {out_paged} pages out, the idle one {idle_paged}"
        );
        check!(
            out.verify()? == 0,
            "the swapped-out child's words are wrong"
        );
        check!(idle.verify()? == 0, "the idle child's words are wrong");
        for child in [out, idle] {
            let status = child.finish()?;
            check!(status == 0, "a child exited with {status}");
        }
        Ok(())
    }

    fn a_swapped_out_task_comes_back_by_a_message() -> Result<(), String> {
        let child = spawn_child(7, false)?;
        let before = info()?;
        sys::task_swap(child.task.port().name(), SWAP_OUT).map_err(|e| format!("swap out: {e}"))?;
        let out = swapped_out()?;
        check!(
            out.len() == 1,
            "ps shows {} tasks swapped out, not 1",
            out.len()
        );
        check!(
            out[0].resident_pages == 0,
            "a swapped-out task maps {} pages",
            out[0].resident_pages
        );
        let pageouts = sys::vm_statistics().map_err(|e| format!("{e}"))?.pageouts;
        pressure(PRESSURE_BYTES)?;
        let stats = sys::vm_statistics().map_err(|e| format!("{e}"))?;
        let paged_out = swapped_out()?.first().map_or(0, |t| t.paged_out_pages);
        check!(
            paged_out >= CHILD_BYTES / PAGE_SIZE / 2,
            "only {paged_out} of the child's pages went out ({} pageouts in all)",
            stats.pageouts - pageouts
        );
        // The message swaps it in; it then reads every word back from the disk.
        let wrong = child.verify()?;
        check!(wrong == 0, "{wrong} words wrong after the swap");
        check!(swapped_out()?.is_empty(), "the child is still swapped out");
        let after = info()?;
        check!(
            after.swap_outs == before.swap_outs + 1,
            "swap-outs {} -> {}",
            before.swap_outs,
            after.swap_outs
        );
        check!(
            after.ins_message == before.ins_message + 1,
            "swap-ins by message {} -> {}",
            before.ins_message,
            after.ins_message
        );
        let events = after.events();
        let last_two = &events[events.len().saturating_sub(2)..];
        check!(
            last_two.len() == 2
                && last_two[0].out == 1
                && last_two[0].why == WHY_ASKED
                && last_two[0].pages >= CHILD_BYTES / PAGE_SIZE
                && last_two[1].out == 0
                && last_two[1].why == WHY_MESSAGE
                && last_two[0].task == last_two[1].task,
            "the trace's last events: {last_two:?}"
        );
        // Its ports still work both ways: it answers again, and exits when told.
        check!(child.verify()? == 0, "words wrong on the second check");
        let status = child.finish()?;
        check!(status == 0, "the child exited with {status}");
        Ok(())
    }

    fn held_threads_do_not_run() -> Result<(), String> {
        let child = spawn_child(11, true)?;
        libipc::rt::sleep_ms(100);
        child.drain_ticks();
        sys::task_swap(child.task.port().name(), SWAP_OUT).map_err(|e| format!("swap out: {e}"))?;
        // A tick may have been on its way; none after that.
        libipc::rt::sleep_ms(50);
        child.drain_ticks();
        libipc::rt::sleep_ms(500);
        let while_out = child.drain_ticks();
        check!(while_out == 0, "{while_out} ticks from a swapped-out task");
        let ins = info()?.swap_ins;
        sys::task_swap(child.task.port().name(), SWAP_IN).map_err(|e| format!("swap in: {e}"))?;
        check!(info()?.swap_ins == ins + 1, "the swap-in was not counted");
        libipc::rt::sleep_ms(300);
        let back = child.drain_ticks();
        check!(back >= 3, "only {back} ticks in 300 ms once swapped in");
        check!(child.verify()? == 0, "words wrong");
        let status = child.finish()?;
        check!(status == 0, "the child exited with {status}");
        Ok(())
    }

    fn refusals() -> Result<(), String> {
        let child = spawn_child(13, false)?;
        let task = child.task.port().name();
        let expect = |what: &str, got: Result<(), KernReturn>, want: KernReturn| {
            if got == Err(want) {
                Ok(())
            } else {
                Err(format!("{what}: {got:?}, not {want:?}"))
            }
        };
        expect(
            "swap in a resident task",
            sys::task_swap(task, SWAP_IN),
            KernReturn::Failure,
        )?;
        expect(
            "an unknown operation",
            sys::task_swap(task, 7),
            KernReturn::InvalidArgument,
        )?;
        let not_a_task = sys::task_swap(child.port.name(), SWAP_OUT);
        check!(
            matches!(
                not_a_task,
                Err(KernReturn::InvalidArgument | KernReturn::InvalidRight)
            ),
            "a name that is no task port: {not_a_task:?}"
        );
        let pager = libipc::rt::selftest::pager_task().ok_or("no pager task port")?;
        expect(
            "swap out the default pager",
            sys::task_swap(pager, SWAP_OUT),
            KernReturn::InvalidArgument,
        )?;
        sys::task_swap(task, SWAP_OUT).map_err(|e| format!("swap out: {e}"))?;
        expect(
            "swap out twice",
            sys::task_swap(task, SWAP_OUT),
            KernReturn::Failure,
        )?;
        // Ended while out: the swapper forgets it.
        child
            .task
            .terminate()
            .map_err(|e| format!("terminate: {e}"))?;
        let _ = process::wait(&child.task);
        check!(
            info()?.swapped_out == 0,
            "a task that ended is still counted out"
        );
        Ok(())
    }

    /// The kernel writes a received message into its buffer through the direct map, which
    /// sets no dirty bit: a buffer page paged in clean (its pager holds a copy) and then
    /// written so must still be seen as written, or the pageout daemon drops it as clean
    /// and the message is lost (NONAIM's file_test saw the previous read's bytes).
    fn a_message_into_a_clean_page_survives_pageout() -> Result<(), String> {
        use libipc::abi::message::options::RECEIVE;
        const OLD: u8 = 0xa5;
        let page = sys::vm_allocate(0, PAGE_SIZE, VM_ANYWHERE).map_err(|e| format!("{e}"))?;
        // SAFETY: the page was just allocated for this test alone.
        let bytes = unsafe { core::slice::from_raw_parts_mut(page as *mut u8, PAGE_SIZE as usize) };
        bytes.fill(OLD);
        // Out to the disk, and back in clean (the pager keeps its copy). Twice the pressure:
        // once can leave the page in when other tasks' idle pages went first.
        let before = sys::vm_statistics().map_err(|e| format!("{e}"))?;
        pressure(PRESSURE_BYTES)?;
        pressure(PRESSURE_BYTES)?;
        check!(bytes.iter().all(|&b| b == OLD), "the page came back wrong");
        let paged_in = sys::vm_statistics().map_err(|e| format!("{e}"))?.pageins - before.pageins;
        check!(
            paged_in > 0,
            "nothing was paged in: the page never went out"
        );
        // A message to ourselves, received into that page.
        let port = ReceiveRight::allocate().map_err(|e| format!("{e}"))?;
        let send = port.make_send().map_err(|e| format!("{e}"))?;
        let body: Vec<u8> = (0..64u8).collect();
        let mut buffer = MessageBuffer::new();
        ipc::send(
            &OutMessage::new(77, send.name()).with_body(&body),
            &mut buffer,
            None,
        )
        .map_err(|e| format!("send: {e:?}"))?;
        // SAFETY: the page is ours and nothing else refers to it while the kernel writes.
        let result = unsafe {
            sys::mach_msg(
                page as *mut u8,
                RECEIVE,
                0,
                PAGE_SIZE as usize,
                port.name(),
                0,
            )
        };
        check!(result.into_result().is_ok(), "receive into the page failed");
        let received: Vec<u8> = bytes[..512].to_vec();
        let m = libipc::ipc::Received::parse(&received, received.len())
            .map_err(|e| format!("parse: {e:?}"))?;
        check!(
            m.id() == 77 && m.body.starts_with(&body),
            "the message as received is wrong"
        );
        let snapshot = received.clone();
        // Out again: it must go to the pager as written, not be dropped as clean.
        pressure(PRESSURE_BYTES)?;
        pressure(PRESSURE_BYTES)?;
        check!(
            bytes[..512] == snapshot[..],
            "the received message was lost: the page reads {:#x}... after its pageout",
            bytes[0]
        );
        // SAFETY: nothing refers to the page any more.
        unsafe { sys::vm_deallocate(page, PAGE_SIZE) }.map_err(|e| format!("{e}"))?;
        Ok(())
    }

    fn ps_lists_every_task() -> Result<(), String> {
        let all = tasks()?;
        let count = sys::host_info(libipc::abi::syscall::HOST_TASKS).map_err(|e| format!("{e}"))?;
        check!(
            all.len() as u64 == count,
            "ps lists {} tasks, the kernel counts {count}",
            all.len()
        );
        let me = all
            .iter()
            .filter(|t| name_str(&t.name) == "swapper_test")
            .count();
        check!(me == 1, "{me} tasks named swapper_test");
        // A small task's stack, program and first regions share one page directory: its
        // tables are a PDPT, a PD and a page table or two (a stack at the top of user space
        // and regions at 16 TiB took three top-level slots: nine pages).
        let mine = all
            .iter()
            .find(|t| name_str(&t.name) == "swapper_test")
            .ok_or("not in ps")?;
        check!(
            (3..=4).contains(&mine.table_pages),
            "this task's page tables take {} pages below the root, not 3 or 4",
            mine.table_pages
        );
        let pager = all
            .iter()
            .find(|t| name_str(&t.name) == "default_pager")
            .ok_or("no default_pager in ps")?;
        check!(
            pager.privileged == 1,
            "the default pager is not marked privileged"
        );
        check!(
            all.iter().all(|t| t.threads >= 1 && t.virtual_bytes > 0),
            "a task with no thread or no memory: {all:?}"
        );
        // Its kernel memory: at least its page tables and records, and more with 200 more
        // ports and a message queued on each; back down once they are gone.
        let kernel_bytes = || -> Result<u64, String> {
            tasks()?
                .iter()
                .find(|t| name_str(&t.name) == "swapper_test")
                .map(|t| t.kernel_bytes)
                .ok_or_else(|| "not in ps".into())
        };
        let before = kernel_bytes()?;
        check!(
            before >= (mine.table_pages + 1) * PAGE_SIZE,
            "this task's kernel memory is {before} bytes, less than its page tables"
        );
        let mut ports = alloc::vec::Vec::new();
        let mut buffer = libipc::ipc::MessageBuffer::new();
        for _ in 0..200 {
            let port = libipc::ipc::ReceiveRight::allocate().map_err(|e| format!("{e}"))?;
            let send = port.make_send().map_err(|e| format!("{e}"))?;
            libipc::ipc::send(
                &libipc::ipc::OutMessage::new(1, send.name()).with_body(&[7; 256]),
                &mut buffer,
                Some(0),
            )
            .map_err(|e| format!("{e:?}"))?;
            ports.push((port, send));
        }
        let grown = kernel_bytes()?;
        check!(
            grown >= before + 200 * 256,
            "200 ports with 256 bytes queued on each took {} more bytes of kernel memory",
            grown as i64 - before as i64
        );
        drop(ports);
        let after = kernel_bytes()?;
        check!(
            after < grown - 200 * 256,
            "kernel memory {after} after the ports went (with them {grown}, before {before})"
        );
        // A short buffer: what fits, and the count of all.
        let two = sys::host_tasks(2).map_err(|e| format!("{e}"))?;
        check!(
            two.len() == 2 && two.iter().map(|t| t.id).eq(all[..2].iter().map(|t| t.id)),
            "two records: {two:?}"
        );
        Ok(())
    }
}
