//! Starting and ending tasks: a program from the boot archive loaded into a fresh address
//! space with its first thread, and the termination that returns everything a task held.

use super::kernel::Kernel;
use super::program::{self, ProgramError};
use super::task::{Task, TaskId};
use super::thread::{Continuation, TaskRecord, Thread, ThreadId};
use crate::base::object_table::{OutOfMemory, Table};
use crate::ipc::message::CarriedRight;
use crate::ipc::port::{KernelObject, Port, PortId, Receiver};
use crate::ipc::space::{Object, PortName, Rights};
use crate::kprintln;
use crate::vm::address_space::{release_object, AddressSpace, ObjectId};
use crate::vm::kernel_space::{self, phys_to_virt};
use crate::vm::map::{MapEntry, Protection, PAGE_SIZE};
use crate::vm::object::{ObjectKind, VmObject};
use crate::vm::shared_text::SharedText;
use alloc::string::String;
use libipc::abi::archive::Archive;
use libipc::abi::syscall::{
    ARGS_BLOCK, ARGS_MAGIC, ARGS_MAX, INITIAL_STACK_POINTER, USER_STACK_SIZE, USER_STACK_TOP,
};
use libipc::abi::KernReturn;

/// Why a program could not be started.
#[derive(Debug)]
pub enum SpawnError {
    NoArchive,
    NoSuchProgram,
    BadProgram(ProgramError),
    OutOfMemory,
}

impl core::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SpawnError::NoArchive => f.write_str("there is no boot archive"),
            SpawnError::NoSuchProgram => f.write_str("no such program in the boot archive"),
            SpawnError::BadProgram(e) => write!(f, "bad program: {e}"),
            SpawnError::OutOfMemory => f.write_str("out of memory"),
        }
    }
}

impl From<OutOfMemory> for SpawnError {
    fn from(_: OutOfMemory) -> Self {
        SpawnError::OutOfMemory
    }
}

/// How a task ended.
pub enum Exit<'a> {
    /// It called `task_exit`.
    Status(u64),
    /// The kernel ended it for a fault (an exception, a bad access), with the reason.
    Fault(core::fmt::Arguments<'a>),
    /// Another task ended it (`task_terminate`), with the reason.
    Terminated(core::fmt::Arguments<'a>),
}

impl Kernel {
    /// Program `name`, checked: its image and where its file lies in the archive (parsed
    /// once, then remembered).
    fn find_program(
        &mut self,
        name: &str,
    ) -> Result<(program::ProgramImage, usize, usize), SpawnError> {
        let (bytes, _) = self.archive.ok_or(SpawnError::NoArchive)?;
        if let Some(&(_, image, offset, len)) = self.parsed.iter().find(|(n, ..)| n == name) {
            return Ok((image, offset, len));
        }
        let archive = Archive::parse(bytes).map_err(|_| SpawnError::NoArchive)?;
        let file = archive.find(name).ok_or(SpawnError::NoSuchProgram)?;
        let image = program::parse(file.data).map_err(SpawnError::BadProgram)?;
        let (offset, len) = (file.offset as usize, file.data.len());
        // Remembered if there is room; parsed again next time if not.
        let mut key = String::new();
        if key.try_reserve(name.len()).is_ok() && self.parsed.try_reserve(1).is_ok() {
            key.push_str(name);
            self.parsed.push((key, image, offset, len));
        }
        Ok((image, offset, len))
    }

    /// The shared memory object over program file `name` (at `offset`, `len` bytes into
    /// the archive), made the first time: over the archive's own pages, or, once a program
    /// pager is registered, an object of that pager's (text then pages in through it, in
    /// clusters). The cache keeps it (with a reference of its own) for every later task.
    /// Returns it and its place in the cache.
    fn program_file_object(
        &mut self,
        name: &str,
        offset: usize,
        len: usize,
    ) -> Result<(ObjectId, usize), SpawnError> {
        if let Some(at) = self.programs.iter().position(|(n, ..)| n == name) {
            let id = self.programs[at].1;
            if self.vm.objects().contains(id) {
                return Ok((id, at));
            }
        }
        let (_, archive_phys) = self.archive.ok_or(SpawnError::NoArchive)?;
        let base = archive_phys + offset as u64;
        let mut key = String::new();
        key.try_reserve(name.len())
            .map_err(|_| SpawnError::OutOfMemory)?;
        key.push_str(name);
        self.programs
            .try_reserve(1)
            .map_err(|_| SpawnError::OutOfMemory)?;
        let id = match self.vm.program_pager() {
            Some(pager) => self
                .program_pager_object(pager, name, base, len as u64)
                .map_err(|_| SpawnError::OutOfMemory)?,
            None => self
                .vm
                .objects_mut()
                .insert(VmObject::new(ObjectKind::Physical { base }, len as u64))?,
        };
        // Its first reference is the cache's, so the object outlives its tasks.
        self.programs.push((key, id, None));
        Ok((id, self.programs.len() - 1))
    }

    /// The shared page tables of program text, one per program that has one (reports).
    pub(crate) fn shared_text(&self) -> impl Iterator<Item = &SharedText> {
        self.programs
            .iter()
            .filter_map(|(_, _, text)| text.as_ref())
    }

    /// A fresh address space with program `name` loaded, and its entry point.
    fn load_program(&mut self, name: &str) -> Result<(AddressSpace, u64), SpawnError> {
        let (image, offset, len) = self.find_program(name)?;
        let (file, cached) = self.program_file_object(name, offset, len)?;
        let (bytes, _) = self.archive.ok_or(SpawnError::NoArchive)?;
        let data = &bytes[offset..offset + len];
        let mut space = AddressSpace::new()?;
        match load_into(self.vm.objects_mut(), &mut space, file, &image, data) {
            Ok(()) => {
                share_text(&mut self.programs[cached].2, self.vm.objects(), &mut space);
                // Its first instruction's page and the stack page its first push writes,
                // mapped now rather than by its first faults.
                space.premap(self.vm.objects(), image.entry, Protection::EXECUTE);
                map_stack_top(self.vm.objects_mut(), &mut space);
                Ok((space, image.entry))
            }
            Err(e) => {
                space.destroy(self.vm.objects_mut());
                Err(e)
            }
        }
    }

    /// `boot_archive`: maps the whole archive into `task`, anywhere, readable only; its
    /// address. A shadow in front of the archive's frames (as the program pager's views),
    /// with a maximum protection of read: nothing the task does reaches the archive.
    pub fn map_boot_archive(&mut self, task: TaskId) -> Result<u64, KernReturn> {
        let (bytes, base) = self.archive.ok_or(KernReturn::InvalidArgument)?;
        // The writer pads the archive to whole pages; a partial last page (from elsewhere)
        // is left out rather than showing what follows the module.
        let size = bytes.len() as u64 / PAGE_SIZE * PAGE_SIZE;
        if size == 0 {
            return Err(KernReturn::InvalidArgument);
        }
        let shortage = KernReturn::ResourceShortage;
        let file = self
            .vm
            .objects_mut()
            .insert(VmObject::new(ObjectKind::Physical { base }, size))
            .map_err(|_| shortage)?;
        let Ok(view) = self
            .vm
            .objects_mut()
            .insert(VmObject::shadow(file, 0, size))
        else {
            self.vm.objects_mut().remove(file);
            return Err(shortage);
        };
        let Some(t) = self.tasks.get_mut(task) else {
            release_object(self.vm.objects_mut(), view);
            return Err(KernReturn::InvalidArgument);
        };
        let start = t
            .space
            .map()
            .find_space(libipc::abi::syscall::VM_ANYWHERE_BASE, size);
        let mut entry = match start {
            Some(start) => MapEntry::new(start, start + size, view, 0, Protection::READ),
            None => {
                release_object(self.vm.objects_mut(), view);
                return Err(KernReturn::NoSpace);
            }
        };
        entry.max_protection = Protection::READ;
        let start = entry.start;
        if t.space.enter(entry).is_err() {
            release_object(self.vm.objects_mut(), view);
            return Err(KernReturn::NoSpace);
        }
        Ok(start)
    }

    /// `task_exec`: replaces `task`'s memory with program `name` and restarts `thread` (its
    /// only thread) at the program's entry; the task keeps its rights and its port.
    pub fn exec(
        &mut self,
        task: TaskId,
        thread: ThreadId,
        name: &str,
        argument: u64,
    ) -> Result<(), KernReturn> {
        if self.tasks.get(task).is_none_or(|t| t.threads.len() != 1) {
            return Err(KernReturn::InvalidArgument);
        }
        let (image, offset, len) = self.find_program(name).map_err(|e| match e {
            SpawnError::OutOfMemory => KernReturn::ResourceShortage,
            _ => KernReturn::InvalidArgument,
        })?;
        let (file, cached) = self
            .program_file_object(name, offset, len)
            .map_err(|_| KernReturn::ResourceShortage)?;
        let (bytes, _) = self.archive.ok_or(KernReturn::InvalidArgument)?;
        // The point of no return: the old program's memory goes; its page tables stay for
        // the new one, which maps the same areas.
        let Kernel {
            tasks,
            vm,
            programs,
            ..
        } = self;
        let objects = vm.objects_mut();
        let t = tasks.get_mut(task).expect("checked");
        t.space.reset(objects);
        t.name = super::task::TaskName::new(name);
        let data = &bytes[offset..offset + len];
        if load_into(objects, &mut t.space, file, &image, data).is_err() {
            self.terminate_task(
                task,
                Exit::Fault(format_args!("exec of {name}: out of memory")),
            );
            return Ok(());
        }
        share_text(&mut programs[cached].2, objects, &mut t.space);
        // Its first instruction's page and the stack page its first push writes, mapped now
        // rather than by its first faults.
        t.space.premap(objects, image.entry, Protection::EXECUTE);
        map_stack_top(objects, &mut t.space);
        let entry = image.entry;
        let priority = self
            .threads
            .get(thread)
            .map_or(super::thread::DEFAULT_PRIORITY, |t| t.priority);
        if let Some(t) = self.threads.get_mut(thread) {
            t.frame = Thread::initial_frame(entry, INITIAL_STACK_POINTER, [0, argument, 0]);
            t.priority = priority;
        }
        Ok(())
    }

    /// Starts program `name` from the boot archive as a new task whose first thread gets
    /// `arguments` in rdi, rsi and rdx.
    pub fn spawn(&mut self, name: &str, arguments: [u64; 3]) -> Result<TaskId, SpawnError> {
        if crate::vm::kernel_space::memory_too_short_for_new_tasks(|| {
            self.collect_tables_under_pressure()
        }) {
            return Err(SpawnError::OutOfMemory);
        }
        let (space, entry) = self.load_program(name)?;
        let mut new = Task::new(name, space);
        self.next_job += 1;
        new.job = self.next_job;
        let task = self.tasks.insert(new)?;
        let record = TaskRecord::new(self.tasks.get_mut(task).expect("just inserted"));
        let first = Thread::new(task, record, entry, INITIAL_STACK_POINTER, arguments);
        let thread = match self.threads.insert(first) {
            Ok(thread) => thread,
            Err(e) => {
                self.destroy_task(task);
                return Err(e.into());
            }
        };
        if self.attach_thread(task, thread).is_err() {
            self.threads.remove(thread);
            self.destroy_task(task);
            return Err(SpawnError::OutOfMemory);
        }
        self.make_ready(thread);
        Ok(task)
    }

    /// Ends a task: its threads, its rights, its address space and everything in them. Its
    /// port keeps the exit status for `task_wait` and wakes those already waiting.
    pub fn terminate_task(&mut self, task: TaskId, how: Exit<'_>) {
        let Some(t) = self.tasks.get(task) else {
            return;
        };
        // The first task's end and every fault are always reported; the comings and goings
        // of other tasks are for `log=debug`.
        let loud = self.init == Some(task);
        let status = match how {
            Exit::Status(status) => {
                if loud {
                    kprintln!("task {} exited with status {status}", t.name());
                } else {
                    log::debug!("task {} exited with status {status}", t.name());
                }
                status
            }
            Exit::Fault(why) => {
                kprintln!("task {} terminated: {why}", t.name());
                u64::MAX
            }
            Exit::Terminated(why) => {
                if loud {
                    kprintln!("task {} terminated: {why}", t.name());
                } else {
                    log::debug!("task {} terminated: {why}", t.name());
                }
                u64::MAX
            }
        };
        if self.init == Some(task) {
            self.init_status = Some(status);
        }
        if let Some(port) = t.port {
            self.task_port_exited(port, status);
        }
        self.destroy_task(task);
        if self.init == Some(task) {
            // The first task is the system: once it is gone, whatever it left running (a
            // pager it started, children of a task that faulted) ends too, and the machine
            // powers off with its status.
            if !self.tasks.is_empty() {
                kprintln!(
                    "init has exited: ending the {} tasks it left",
                    self.tasks.len()
                );
            }
            loop {
                let next = self.tasks.iter().map(|(id, _)| id).next();
                let Some(other) = next else { break };
                self.terminate_task(other, Exit::Terminated(format_args!("init exited")));
            }
        }
    }

    fn destroy_task(&mut self, task: TaskId) {
        let Some(t) = self.tasks.get_mut(task) else {
            return;
        };
        let port = t.port.take();
        let threads = core::mem::take(&mut t.threads);
        if let Some(port) = port {
            if self
                .ipc
                .port(port)
                .is_some_and(|p| p.receiver == Receiver::Kernel(KernelObject::Task(task)))
            {
                // Not reported by `terminate_task` (a failed start): waiters learn it died.
                self.task_port_exited(port, u64::MAX);
            }
        }
        for thread in threads {
            self.unqueue(thread);
            self.threads.remove(thread);
        }
        #[cfg(target_os = "none")]
        if self.colloc.hosts(task) {
            crate::kern::colloc::forget_server(self, task);
        }
        self.drain_space(task);
        self.swapper.forget(task);
        let Some(t) = self.tasks.remove(task) else {
            return;
        };
        t.space.destroy(self.vm.objects_mut());
    }

    /// The task behind `port` exited with `status`: waiters wake, later waits return at once,
    /// and the port goes once nobody holds it.
    fn task_port_exited(&mut self, port: PortId, status: u64) {
        let Some(p) = self.ipc.port_mut(port) else {
            return;
        };
        p.receiver = Receiver::Kernel(KernelObject::ExitedTask(status));
        let no_holders = p.send_rights == 0;
        while let Some(waiter) = self
            .ipc
            .port_mut(port)
            .and_then(|p| p.receivers.pop_front(&mut self.threads))
        {
            self.wake(waiter, KernReturn::Success as u32, status);
        }
        if no_holders {
            self.destroy_port(port);
        }
    }

    /// `task_spawn` for `parent`: starts `program` and gives the child a copy of the parent's
    /// send right `give`; returns the parent's name for the child's task port.
    pub fn spawn_from(
        &mut self,
        parent: TaskId,
        program: &str,
        give: PortName,
        argument: u64,
        args: &[u8],
    ) -> Result<PortName, KernReturn> {
        // A program the kernel's `collocate=` names starts collocated, if it is linked in
        // (it registers itself, as its program does; it takes no arguments block).
        #[cfg(target_os = "none")]
        if self.colloc.wants(program) && crate::kern::colloc::is_linked(program) {
            if !args.is_empty() {
                return Err(KernReturn::InvalidArgument);
            }
            return crate::kern::colloc::spawn(self, parent, program, give, argument, false)
                .map(|(task_port, _)| task_port);
        }
        // Decode first: the right to give must be a send right of the parent's.
        let give_port = match give {
            0 => None,
            name => Some(self.send_right_of(parent, name)?),
        };
        let child = self.spawn(program, [0, argument, 0]).map_err(|e| match e {
            SpawnError::OutOfMemory => KernReturn::ResourceShortage,
            _ => KernReturn::InvalidArgument,
        })?;
        let fail = |kernel: &mut Kernel, e: KernReturn| {
            kernel.destroy_task(child);
            Err(e)
        };
        if let Err(e) = self.write_args(child, args) {
            return fail(self, e);
        }
        let parent_name = match self.make_task_port(parent, child) {
            Ok(name) => name,
            Err(e) => return fail(self, e),
        };
        if let Some(give_port) = give_port {
            if let Some(p) = self.ipc.port_mut(give_port) {
                p.send_rights += 1;
            }
            match self.copyout(child, CarriedRight::Send(give_port)) {
                Ok(name) => {
                    let first = self
                        .tasks
                        .get(child)
                        .and_then(|t| t.threads.first().copied());
                    if let Some(thread) = first.and_then(|t| self.threads.get_mut(t)) {
                        thread.frame.rdi = u64::from(name);
                    }
                }
                Err(()) => {
                    // Undo the right added above; the child (and its task port) goes.
                    self.release_send_right(give_port);
                    return fail(self, KernReturn::ResourceShortage);
                }
            }
        }
        Ok(parent_name)
    }

    /// `task_fork` for `parent`'s `thread`: the child task (memory by inheritance, send
    /// rights under the same names, one thread returning 0 from the call); returns the
    /// parent's name for the child's task port.
    pub fn fork_task(&mut self, parent: TaskId, thread: ThreadId) -> Result<PortName, KernReturn> {
        if crate::vm::kernel_space::memory_too_short_for_new_tasks(|| {
            self.collect_tables_under_pressure()
        }) {
            return Err(KernReturn::ResourceShortage);
        }
        let (name, frame, priority) = {
            let p = self.tasks.get(parent).ok_or(KernReturn::InvalidArgument)?;
            let t = self
                .threads
                .get(thread)
                .ok_or(KernReturn::InvalidArgument)?;
            (p.name, t.frame.clone(), t.priority)
        };
        let ipc = self
            .tasks
            .get(parent)
            .ok_or(KernReturn::InvalidArgument)?
            .ipc
            .fork_send_rights()?;
        let p = self
            .tasks
            .get_mut(parent)
            .ok_or(KernReturn::InvalidArgument)?;
        let mut space = p.space.fork(self.vm.objects_mut())?;
        // The child starts at the parent's instruction: that page is mapped now, sparing the
        // child the fault it would take at once (in the program's shared text table it is
        // mapped already: the parent ran it through the same table).
        if !space.shared_text().is_some_and(|t| t.covers(frame.rip)) {
            space.premap(self.vm.objects(), frame.rip, Protection::EXECUTE);
        }
        let mut child_task = Task::named(name, space);
        child_task.ipc = ipc;
        child_task.job = p.job;
        child_task.quota = p.quota;
        let child = match self.tasks.insert(child_task) {
            Ok(child) => child,
            Err(_) => return Err(KernReturn::ResourceShortage),
        };
        // The child's space now holds a send right for each of its ports.
        for port in self.tasks.get(child).expect("just inserted").ipc.ports() {
            if let Some(p) = self.ipc.port_mut(port) {
                p.send_rights += 1;
            }
        }
        let record = TaskRecord::new(self.tasks.get_mut(child).expect("just inserted"));
        let mut first = Thread::new(child, record, frame.rip, frame.rsp, [0; 3]);
        first.frame = frame;
        first.frame.rax = KernReturn::Success as u64;
        first.frame.rdx = 0;
        first.priority = priority;
        let fail = |kernel: &mut Kernel, e: KernReturn| {
            kernel.destroy_task(child);
            Err(e)
        };
        let Ok(thread) = self.threads.insert(first) else {
            return fail(self, KernReturn::ResourceShortage);
        };
        if self.attach_thread(child, thread).is_err() {
            self.threads.remove(thread);
            return fail(self, KernReturn::ResourceShortage);
        }
        let parent_name = match self.make_task_port(parent, child) {
            Ok(name) => name,
            Err(e) => return fail(self, e),
        };
        self.make_ready(thread);
        Ok(parent_name)
    }

    /// The port of the send right `name` in `task`'s space (`InvalidName` when there is no
    /// such name, `InvalidRight` when it is no send right).
    pub(crate) fn send_right_of(
        &mut self,
        task: TaskId,
        name: PortName,
    ) -> Result<PortId, KernReturn> {
        let entry = self.entry(task, name).ok_or(KernReturn::InvalidName)?;
        match entry.object {
            Object::Port(port) if entry.rights.contains(Rights::SEND) => Ok(port),
            _ => Err(KernReturn::InvalidRight),
        }
    }

    /// Moves one user reference of send right `name` from `from`'s space to `to`'s; `to`'s
    /// name for it. On failure nothing moved.
    pub(crate) fn move_send_right(
        &mut self,
        from: TaskId,
        name: PortName,
        to: TaskId,
    ) -> Result<PortName, KernReturn> {
        use libipc::abi::message::Disposition;
        self.send_right_of(from, name)?;
        let right = self
            .copyin(from, name, Disposition::MoveSend)
            .ok_or(KernReturn::InvalidRight)?;
        self.copyout(to, right).map_err(|()| KernReturn::NoSpace)
    }

    /// Drops one user reference of send right `name` of `task`'s (nothing if it is none).
    pub(crate) fn drop_send_right(&mut self, task: TaskId, name: PortName) {
        let Some(t) = self.tasks.get_mut(task) else {
            return;
        };
        if let Ok((port, true)) = t.ipc.remove_send(name, 1) {
            self.release_send_right(port);
        }
    }

    /// A new task for a collocated server `name`: no user memory (its memory is the
    /// kernel's), and one thread that never runs on its own, whose identity the server's
    /// calls use. The caller it makes.
    pub(crate) fn create_collocated_task(
        &mut self,
        name: &str,
    ) -> Result<super::syscall::Caller, KernReturn> {
        let space = AddressSpace::kernel_memory().map_err(|_| KernReturn::ResourceShortage)?;
        let mut new = Task::new(name, space);
        self.next_job += 1;
        new.job = self.next_job;
        let task = self
            .tasks
            .insert(new)
            .map_err(|_| KernReturn::ResourceShortage)?;
        let record = TaskRecord::new(self.tasks.get_mut(task).expect("just inserted"));
        let mut pseudo = Thread::new(task, record, 0, 0, [0; 3]);
        pseudo.state = super::thread::ThreadState::Blocked;
        let Ok(thread) = self.threads.insert(pseudo) else {
            self.destroy_task(task);
            return Err(KernReturn::ResourceShortage);
        };
        if self.attach_thread(task, thread).is_err() {
            self.threads.remove(thread);
            self.destroy_task(task);
            return Err(KernReturn::ResourceShortage);
        }
        Ok(super::syscall::Caller { thread, task })
    }

    /// Gives new task `child` its task port, with one send right for `parent`: the parent's
    /// name for it. On failure the caller destroys the child (and with it any port made).
    pub(crate) fn make_task_port(
        &mut self,
        parent: TaskId,
        child: TaskId,
    ) -> Result<PortName, KernReturn> {
        let port = self
            .ipc
            .insert_port(Port::new(Receiver::Kernel(KernelObject::Task(child))))
            .map_err(|_| KernReturn::ResourceShortage)?;
        self.ipc.port_mut(port).expect("just inserted").send_rights = 1;
        self.tasks.get_mut(child).expect("just made").port = Some(port);
        self.copyout(parent, CarriedRight::Send(port))
            .map_err(|()| KernReturn::NoSpace)
    }

    /// The live task behind the task port that `name` names in `task`'s space.
    pub fn task_of_port(&mut self, task: TaskId, name: PortName) -> Result<TaskId, KernReturn> {
        let port = self.task_port(task, name)?;
        match self.ipc.port(port).map(|p| p.receiver) {
            Some(Receiver::Kernel(KernelObject::Task(target))) => Ok(target),
            Some(Receiver::Kernel(KernelObject::ExitedTask(_))) => Err(KernReturn::InvalidArgument),
            _ => Err(KernReturn::InvalidRight),
        }
    }

    fn task_port(&mut self, task: TaskId, name: PortName) -> Result<PortId, KernReturn> {
        let entry = self.entry(task, name).ok_or(KernReturn::InvalidName)?;
        match entry.object {
            Object::Port(port) if entry.rights.contains(Rights::SEND) => Ok(port),
            _ => Err(KernReturn::InvalidRight),
        }
    }

    /// `task_wait`: the status if the task has exited, else `None` with `thread` waiting
    /// (for at most `timeout_ms`, `u64::MAX` for ever; 0: `OperationTimedOut` at once).
    pub fn task_wait(
        &mut self,
        task: TaskId,
        thread: ThreadId,
        name: PortName,
        timeout_ms: u64,
    ) -> Result<Option<u64>, KernReturn> {
        let port = self.task_port(task, name)?;
        match self.ipc.port(port).map(|p| p.receiver) {
            Some(Receiver::Kernel(KernelObject::ExitedTask(status))) => Ok(Some(status)),
            Some(Receiver::Kernel(KernelObject::Task(target))) => {
                if target == task {
                    return Err(KernReturn::InvalidArgument); // waiting for oneself never ends
                }
                if timeout_ms == 0 {
                    return Err(KernReturn::OperationTimedOut);
                }
                let deadline = (timeout_ms != u64::MAX).then(|| {
                    crate::arch::percpu::ticks() + crate::kern::mach_msg::ticks_from_ms(timeout_ms)
                });
                let p = self.ipc.port_mut(port).expect("checked");
                p.receivers.push_back(&mut self.threads, thread);
                self.block(thread, Continuation::TaskWait { port }, deadline);
                Ok(None)
            }
            _ => Err(KernReturn::InvalidRight),
        }
    }

    /// Starts the first task, `name`, with a send right to the privileged host port as its
    /// first start argument and `argument` as its third.
    pub fn start_init(&mut self, name: &str, argument: u64) -> Result<TaskId, SpawnError> {
        let task = self.spawn(name, [0, 0, argument])?;
        self.init = Some(task);
        let host = self
            .ipc
            .insert_port(Port::new(Receiver::Kernel(KernelObject::Host)))?;
        self.ipc.port_mut(host).expect("just inserted").send_rights = 1;
        let name = self
            .copyout(task, CarriedRight::Send(host))
            .map_err(|()| SpawnError::OutOfMemory)?;
        let first = self
            .tasks
            .get(task)
            .and_then(|t| t.threads.first().copied());
        if let Some(thread) = first.and_then(|t| self.threads.get_mut(t)) {
            thread.frame.rdi = u64::from(name);
        }
        // The kernel's `args=` option (checked to fit at boot) is its arguments block.
        let args = self.args_option.clone().unwrap_or_default();
        self.write_args(task, args.as_bytes())
            .map_err(|_| SpawnError::OutOfMemory)?;
        Ok(task)
    }
}

/// Fills the pages of an anonymous object that hold a segment's file bytes.
fn copy_initial_data(
    id: ObjectId,
    object: &mut VmObject,
    start: u64,
    vaddr: u64,
    bytes: &[u8],
) -> Result<(), SpawnError> {
    let mut page = start;
    let data_end = vaddr + bytes.len() as u64;
    while page < data_end {
        let frame = kernel_space::allocate_user_frame().ok_or(SpawnError::OutOfMemory)?;
        let target = phys_to_virt(frame) as *mut u8;
        // SAFETY: a fresh frame owned by nobody, mapped by the direct map.
        unsafe { core::ptr::write_bytes(target, 0, PAGE_SIZE as usize) };
        let copy_start = page.max(vaddr);
        let copy_end = (page + PAGE_SIZE).min(data_end);
        if copy_start < copy_end {
            let source = &bytes[(copy_start - vaddr) as usize..(copy_end - vaddr) as usize];
            // SAFETY: the range lies inside the frame (copy_start..copy_end is inside the
            // page) and the source is the archive, distinct from the new frame.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    source.as_ptr(),
                    target.add((copy_start - page) as usize),
                    source.len(),
                )
            };
        }
        if object.insert_page(page - start, frame).is_err() {
            let _ = kernel_space::free_frame(frame);
            return Err(SpawnError::OutOfMemory);
        }
        kernel_space::with_mappings(|m| m.set_owner(frame / PAGE_SIZE, id.to_raw(), page - start));
        page += PAGE_SIZE;
    }
    Ok(())
}

/// Maps the page of a new program's stack that its first push writes (the top page, which
/// also holds the arguments block), zero-filled, as its first fault would: every program
/// writes it at once. Without a free page it is left to that fault, which can wait for one.
fn map_stack_top(objects: &mut Table<VmObject>, space: &mut AddressSpace) {
    let _ = space.frame_for(objects, INITIAL_STACK_POINTER - 8, Protection::WRITE);
}

/// Has `space`, into which a program was just loaded, share the page table of the program's
/// text with the other tasks running it (`vm::shared_text`): `text`, the program cache's,
/// made for the first one. A space whose text the table does not match (the program's object
/// was made anew) gets a new table; without memory for one, the task maps its text itself.
fn share_text(text: &mut Option<SharedText>, objects: &Table<VmObject>, space: &mut AddressSpace) {
    if text.as_ref().is_some_and(|t| space.share_text(t)) {
        return;
    }
    *text = SharedText::of(space.map(), objects);
    if let Some(t) = text {
        space.share_text(t);
    }
}

/// Maps a program (checked `image`, file bytes `data`, memory object `file` over them) and
/// a stack into `space`.
fn load_into(
    objects: &mut Table<VmObject>,
    space: &mut AddressSpace,
    file: ObjectId,
    image: &program::ProgramImage,
    data: &[u8],
) -> Result<(), SpawnError> {
    for segment in image.segments() {
        let (start, end) = segment.pages();
        let entry = if segment.maps_file_directly() {
            let object = file;
            objects
                .get_mut(object)
                .ok_or(SpawnError::OutOfMemory)?
                .add_reference();
            // The file's pages, shared by every task running the program: never writable
            // (data segments get anonymous copies instead).
            let mut entry = MapEntry::new(start, end, object, segment.offset, segment.protection);
            entry.max_protection = Protection::READ_EXECUTE;
            entry
        } else if let Some(file_end) = segment.file_pages_end() {
            // Whole pages of file data: read from the program's file, shared, until written
            // (a copy-on-write shadow over the file object); the rest zero-filled on touch.
            objects
                .get_mut(file)
                .ok_or(SpawnError::OutOfMemory)?
                .add_reference();
            let data = objects.insert(VmObject::shadow(file, segment.offset, file_end - start));
            let data = match data {
                Ok(data) => data,
                Err(e) => {
                    release_object(objects, file);
                    return Err(e.into());
                }
            };
            let entry = MapEntry::new(start, file_end, data, 0, segment.protection);
            if space.enter(entry).is_err() {
                release_object(objects, data);
                return Err(SpawnError::BadProgram(ProgramError::BadSegment));
            }
            if file_end == end {
                continue;
            }
            let rest = objects.insert(VmObject::new(ObjectKind::Anonymous, end - file_end))?;
            MapEntry::new(file_end, end, rest, 0, segment.protection)
        } else {
            let object = objects.insert(VmObject::new(ObjectKind::Anonymous, end - start))?;
            let entry = MapEntry::new(start, end, object, 0, segment.protection);
            // The file's part is copied now; the rest is zero-filled on first touch.
            let file_bytes =
                &data[segment.offset as usize..(segment.offset + segment.filesz) as usize];
            let o = objects.get_mut(object).expect("just inserted");
            if let Err(e) = copy_initial_data(object, o, start, segment.vaddr, file_bytes) {
                release_object(objects, object);
                return Err(e);
            }
            entry
        };
        let object = entry.object;
        if space.enter(entry).is_err() {
            release_object(objects, object);
            return Err(SpawnError::BadProgram(ProgramError::BadSegment));
        }
    }
    let stack = objects.insert(VmObject::new(ObjectKind::Anonymous, USER_STACK_SIZE))?;
    let entry = MapEntry::new(
        USER_STACK_TOP - USER_STACK_SIZE,
        USER_STACK_TOP,
        stack,
        0,
        Protection::READ_WRITE,
    );
    if space.enter(entry).is_err() {
        release_object(objects, stack);
        return Err(SpawnError::BadProgram(ProgramError::BadSegment));
    }
    Ok(())
}

impl Kernel {
    /// Writes `args` (at most `ARGS_MAX` bytes; nothing when empty) as the arguments block at
    /// the top of new task `task`'s stack, which its runtime reads (`libipc::rt::args`).
    pub(super) fn write_args(&mut self, task: TaskId, args: &[u8]) -> Result<(), KernReturn> {
        if args.is_empty() {
            return Ok(());
        }
        if args.len() > ARGS_MAX {
            return Err(KernReturn::InvalidArgument);
        }
        let mut block = [0u8; 16 + ARGS_MAX];
        block[..8].copy_from_slice(&ARGS_MAGIC.to_le_bytes());
        block[8..16].copy_from_slice(&(args.len() as u64).to_le_bytes());
        block[16..16 + args.len()].copy_from_slice(args);
        let len = 16 + args.len();
        let out = super::user::UserSlice::new(ARGS_BLOCK, len as u64).validate(len)?;
        let t = self
            .tasks
            .get_mut(task)
            .ok_or(KernReturn::InvalidArgument)?;
        super::user::copy_out(&mut t.space, self.vm.objects_mut(), out, &block[..len])
    }
}
