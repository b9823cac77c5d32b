//! Collocated servers: server crates linked into the kernel (`servers/boot.toml`'s
//! `collocated = true`), each with a task of its own (its rights, quota and name in
//! reports) but no user memory, run on the thread of whoever sends to them.
//!
//! A message queued on a port whose receiver is a collocated server's task marks the server
//! pending ([`Servers::note_message`]); the kernel then runs it (`kern::colloc::run_pending`) before the
//! sender's receive (so a call's reply is there at once) and on every way out of the kernel
//! (for notifications, device and pager messages). Running a server means calling its
//! `dispatch_delivered`, the kernel taking each message for it) as its own task, with the kernel's system calls as plain calls
//! (`libipc_collocated_syscall`) that never wait. This module owns the servers' state; the
//! kernel's paths that run them (`kern::colloc`) reach it through [`Servers`]' few methods.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::base::object_table::OutOfMemory;

/// The servers' state: which tasks are collocated servers, which have messages or calls
/// waiting, and which one runs now. `S` is the server object (`Box<dyn Hosted>` in the
/// kernel), `T` a task's id, `C` what the server's calls run as (its task and thread), `K`
/// a call the kernel makes on a server without a message (a pager's memory-object call).
pub struct Servers<S, T, C, K = ()> {
    entries: Vec<Entry<S, T, C, K>>,
    /// Whether some entry is pending (one load on the kernel's way out).
    pending: bool,
    /// Servers running now (taken out of their entries), innermost last.
    running: usize,
    /// Calls short-circuited ([`Servers::take_idle`]) and runs for queued messages
    /// ([`Servers::take_pending`]) since boot, of all servers ever.
    short_circuits: u64,
    queued_runs: u64,
    /// Calls made on servers without a message ([`Servers::take_call`]) since boot.
    direct_calls: u64,
    /// Direct calls of servers' routines by other servers ([`Servers::take_for_call`]).
    server_calls: u64,
    /// Servers that take such calls (one load on the kernel's way to a pager).
    takers: usize,
    /// The programs that start collocated when spawned (the kernel's `collocate=`), comma
    /// separated.
    collocate: alloc::string::String,
}

/// A server taken out for a call ([`Servers::take_idle`]): its object, its caller, its name,
/// and the port its last call came in on with the server's name for it (a hint).
pub type Taken<S, C> = (S, C, &'static str, Option<(u64, u32)>);

struct Entry<S, T, C, K> {
    name: &'static str,
    task: T,
    caller: C,
    /// `None` while it runs (or before its start has returned).
    server: Option<S>,
    pending: bool,
    /// Whether it takes calls without a message (said when it started).
    takes_calls: bool,
    /// Those calls, in the order they were made.
    calls: VecDeque<K>,
    /// The port the last short-circuited call came in on (its raw id) and the server's
    /// name for it: a hint, checked before it is used.
    call_port: Option<(u64, u32)>,
}

impl<S, T: Copy + PartialEq, C: Copy, K> Servers<S, T, C, K> {
    pub const fn new() -> Self {
        Servers {
            entries: Vec::new(),
            pending: false,
            running: 0,
            short_circuits: 0,
            queued_runs: 0,
            direct_calls: 0,
            server_calls: 0,
            takers: 0,
            collocate: alloc::string::String::new(),
        }
    }

    /// Makes the programs `names` (comma separated) start collocated when spawned.
    pub fn collocate(&mut self, names: &str) -> Result<(), OutOfMemory> {
        self.collocate
            .try_reserve(names.len())
            .map_err(|_| OutOfMemory)?;
        self.collocate.push_str(names);
        Ok(())
    }

    /// The kernel's `collocate=` option, if given.
    pub fn collocate_option(&self) -> Option<&str> {
        (!self.collocate.is_empty()).then_some(self.collocate.as_str())
    }

    /// Whether program `name` starts collocated when spawned (`collocate=`).
    pub fn wants(&self, name: &str) -> bool {
        !self.collocate.is_empty() && self.collocate.split(',').any(|n| n == name)
    }

    /// Calls short-circuited, runs for queued messages, the kernel's calls made without a
    /// message, and servers' direct calls of other servers, since boot.
    pub fn counts(&self) -> (u64, u64, u64, u64) {
        (
            self.short_circuits,
            self.queued_runs,
            self.direct_calls,
            self.server_calls,
        )
    }

    /// Records `task` as collocated server `name`, whose calls run as `caller`, starting
    /// (no server object yet: [`Servers::started`] gives it). `Err` when there is no memory
    /// for the record.
    pub fn add(&mut self, name: &'static str, task: T, caller: C) -> Result<(), OutOfMemory> {
        self.entries.try_reserve(1).map_err(|_| OutOfMemory)?;
        self.entries.push(Entry {
            name,
            task,
            caller,
            server: None,
            pending: false,
            takes_calls: false,
            calls: VecDeque::new(),
            call_port: None,
        });
        Ok(())
    }

    /// The server of `task` has started: `server` serves from now on, and takes calls
    /// without a message ([`Servers::queue_call`]) if `takes_calls`.
    pub fn started(&mut self, task: T, server: S, takes_calls: bool) {
        let Some(entry) = self.entries.iter_mut().find(|e| e.task == task) else {
            return;
        };
        entry.server = Some(server);
        if takes_calls && !entry.takes_calls {
            entry.takes_calls = true;
            self.takers += 1;
        }
        self.pending |= entry.pending;
    }

    /// Whether any server takes calls without a message (one load).
    #[inline(always)]
    pub fn any_takes_calls(&self) -> bool {
        self.takers != 0
    }

    /// Whether `task` is a server that takes calls without a message.
    #[inline(always)]
    pub fn takes_calls(&self, task: T) -> bool {
        self.entries.iter().any(|e| e.task == task && e.takes_calls)
    }

    /// Queues `call` for the server of `task`, which is then pending: it is made when the
    /// server next runs ([`Servers::take_call`]), after its queued messages. `Err(call)` when
    /// `task` is no server that takes calls, or there is no memory to queue it.
    pub fn queue_call(&mut self, task: T, call: K) -> Result<(), K> {
        let Some(entry) = self.entry_mut(task).filter(|e| e.takes_calls) else {
            return Err(call);
        };
        if entry.calls.try_reserve(1).is_err() {
            return Err(call);
        }
        entry.calls.push_back(call);
        entry.pending = true;
        self.pending = true;
        Ok(())
    }

    /// The next call queued for the server of `task` (taken out to run).
    pub fn take_call(&mut self, task: T) -> Option<K> {
        let call = self.entry_mut(task)?.calls.pop_front()?;
        self.direct_calls += 1;
        Some(call)
    }

    /// Whether `task` is a collocated server's.
    #[inline(always)]
    pub fn hosts(&self, task: T) -> bool {
        !self.entries.is_empty() && self.entries.iter().any(|e| e.task == task)
    }

    /// A message was queued for `task`: if it is a collocated server's, it is now pending.
    #[inline(always)]
    pub fn note_message(&mut self, task: T) {
        if self.entries.is_empty() {
            return;
        }
        if let Some(entry) = self.entry_mut(task) {
            entry.pending = true;
            self.pending = true;
        }
    }

    /// Whether a server waits to run and none runs now (a running server's sends are served
    /// when it returns, by the loop that ran it).
    #[inline(always)]
    pub fn any_pending(&self) -> bool {
        self.pending && self.running == 0
    }

    /// Takes the next pending server out to run it: the object, its task's caller and its
    /// name. The entry is no longer pending; the server is running until
    /// [`Servers::put_back`].
    pub fn take_pending(&mut self) -> Option<(S, T, C, &'static str)> {
        let found = self
            .entries
            .iter_mut()
            .find(|e| e.pending && e.server.is_some());
        let Some(entry) = found else {
            self.pending = false;
            return None;
        };
        entry.pending = false;
        let server = entry.server.take()?;
        self.running += 1;
        self.queued_runs += 1;
        Some((server, entry.task, entry.caller, entry.name))
    }

    /// Takes the server of `task` out to run it for one call, if it is idle: started, not
    /// running, nothing waiting for it (so the call is served in order). Its object and
    /// caller; the server is running until [`Servers::put_back`].
    pub fn take_idle(&mut self, task: T) -> Option<Taken<S, C>> {
        if self.running != 0 {
            return None;
        }
        let entry = self.entries.iter_mut().find(|e| e.task == task)?;
        if entry.pending {
            return None;
        }
        let server = entry.server.take()?;
        self.running += 1;
        self.short_circuits += 1;
        Some((server, entry.caller, entry.name, entry.call_port))
    }

    /// Takes the server of `task` out for a direct call by another server, which runs now
    /// (`kern::colloc::libipc_collocated_direct`): it must be started and not running
    /// itself (a call back into a server on the chain that runs is not taken). Its object
    /// and caller; the server is running until [`Servers::put_back`].
    /// Also its entry's place, for [`Servers::put_back_at`].
    #[inline(always)]
    pub fn take_for_call(&mut self, task: T) -> Option<(usize, Taken<S, C>)> {
        let place = self.entries.iter().position(|e| e.task == task)?;
        let entry = &mut self.entries[place];
        let server = entry.server.take()?;
        self.running += 1;
        self.server_calls += 1;
        Some((place, (server, entry.caller, entry.name, entry.call_port)))
    }

    /// [`Servers::put_back`] of the server taken from entry `place` (the entry is looked for
    /// only if it moved meanwhile: another server's task ended).
    #[inline(always)]
    pub fn put_back_at(&mut self, place: usize, task: T, server: S) -> Option<S> {
        match self.entries.get_mut(place) {
            Some(entry) if entry.task == task => {
                self.running = self.running.saturating_sub(1);
                // The entry is empty while its server is out (`take_for_call` took it): no
                // old server to drop here (one would be handed back, to be dropped).
                debug_assert!(entry.server.is_none());
                entry.server.replace(server)
            }
            _ => self.put_back(task, server),
        }
    }

    /// Notes the port a call to the server of `task` came in on and the server's name for
    /// it (see [`Servers::take_idle`]).
    pub fn note_call_port(&mut self, task: T, port: u64, name: u32) {
        if let Some(entry) = self.entry_mut(task) {
            entry.call_port = Some((port, name));
        }
    }

    /// Whether there are no collocated servers at all (one load on `mach_msg`'s path).
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A server taken by [`Servers::take_pending`] is done for now. `Some(server)` when its
    /// task ended meanwhile: the caller drops it.
    #[inline(never)]
    pub fn put_back(&mut self, task: T, server: S) -> Option<S> {
        self.running = self.running.saturating_sub(1);
        match self.entry_mut(task) {
            Some(entry) => {
                entry.server = Some(server);
                None
            }
            None => Some(server),
        }
    }

    /// Forgets the server of `task` (its task is ending): its object, unless it is running
    /// now (then [`Servers::put_back`] hands it over), and the calls still queued for it
    /// (for the caller to release).
    pub fn remove(&mut self, task: T) -> Option<(Option<S>, VecDeque<K>)> {
        let index = self.entries.iter().position(|e| e.task == task)?;
        let entry = self.entries.swap_remove(index);
        if entry.takes_calls {
            self.takers -= 1;
        }
        Some((entry.server, entry.calls))
    }

    fn entry_mut(&mut self, task: T) -> Option<&mut Entry<S, T, C, K>> {
        self.entries.iter_mut().find(|e| e.task == task)
    }
}

impl<S, T: Copy + PartialEq, C: Copy, K> Default for Servers<S, T, C, K> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tasks 1 and 2, each server's calls running as its task's number times 10.
    const A: u32 = 1;
    const B: u32 = 2;

    #[test]
    fn a_message_for_a_server_makes_it_pending_once() {
        let mut servers: Servers<_, _, _> = Servers::new();
        servers.add("a", A, 10).unwrap();
        servers.started(A, "server a", false);
        assert!(!servers.any_pending());
        servers.note_message(B);
        assert!(!servers.any_pending(), "b is no server");
        servers.note_message(A);
        servers.note_message(A);
        assert!(servers.any_pending());
        let (server, task, caller, name) = servers.take_pending().unwrap();
        assert_eq!((server, task, caller, name), ("server a", A, 10, "a"));
        assert!(servers.take_pending().is_none());
        assert_eq!(servers.put_back(A, server), None);
        assert!(!servers.any_pending());
        assert_eq!(
            servers.counts(),
            (0, 1, 0, 0),
            "run once, for its queued messages"
        );
    }

    #[test]
    fn a_server_is_taken_for_a_direct_call_while_another_runs_but_not_while_it_runs() {
        let mut servers: Servers<_, _, _> = Servers::new();
        servers.add("a", A, 10).unwrap();
        servers.add("b", B, 20).unwrap();
        assert!(servers.take_for_call(B).is_none(), "not started");
        servers.started(A, 1, false);
        servers.started(B, 2, false);
        servers.note_message(A);
        let (a, ..) = servers.take_pending().unwrap();
        // a runs and calls b: taken, though a runs (its own messages wait for it anyway).
        servers.note_message(B);
        let (place, (b, caller, name, _)) = servers.take_for_call(B).unwrap();
        assert_eq!((place, b, caller, name), (1, 2, 20, "b"));
        assert!(
            servers.take_for_call(A).is_none(),
            "b calls back into a: a runs"
        );
        assert!(servers.take_for_call(B).is_none(), "b runs");
        assert_eq!(servers.put_back_at(0, B, b), None, "found where it moved");
        let (place, (b, ..)) = servers.take_for_call(B).unwrap();
        assert_eq!(servers.put_back_at(place, B, b), None);
        servers.put_back(A, a);
        assert_eq!(servers.counts(), (0, 1, 0, 2));
        assert!(servers.any_pending(), "b's message still waits for a run");
    }

    #[test]
    fn only_an_idle_server_is_taken_for_a_call() {
        let mut servers: Servers<_, _, _> = Servers::new();
        assert!(servers.is_empty());
        servers.add("a", A, 10).unwrap();
        servers.add("b", B, 20).unwrap();
        assert!(servers.take_idle(A).is_none(), "not started");
        servers.started(A, 1, false);
        servers.started(B, 2, false);
        servers.note_message(A);
        assert!(servers.take_idle(A).is_none(), "a message waits for it");
        let (server, ..) = servers.take_pending().unwrap();
        assert!(servers.take_idle(B).is_none(), "a runs");
        servers.put_back(A, server);
        let (server, caller, name, hint) = servers.take_idle(A).unwrap();
        assert_eq!((server, caller, name, hint), (1, 10, "a", None));
        servers.note_call_port(A, 5, 6);
        assert!(servers.take_idle(A).is_none(), "it runs");
        servers.put_back(A, server);
        assert_eq!(
            servers.counts(),
            (1, 1, 0, 0),
            "run twice: once for a message, once for a call"
        );
        assert!(!servers.wants("zpager"));
        servers.collocate("zpager,echo").unwrap();
        assert!(servers.wants("zpager") && servers.wants("echo") && !servers.wants("zpage"));
        assert_eq!(
            servers.take_idle(A).map(|taken| taken.3),
            Some(Some((5, 6)))
        );
    }

    #[test]
    fn a_running_server_is_not_run_again_until_it_returns() {
        let mut servers: Servers<_, _, _> = Servers::new();
        servers.add("a", A, 10).unwrap();
        servers.add("b", B, 20).unwrap();
        servers.started(A, 1, false);
        servers.started(B, 2, false);
        servers.note_message(A);
        let (server, ..) = servers.take_pending().unwrap();
        // While a runs it sends to itself and to b: nothing runs nested.
        servers.note_message(A);
        servers.note_message(B);
        assert!(!servers.any_pending());
        assert_eq!(servers.put_back(A, server), None);
        // Then the loop that ran a runs both.
        assert!(servers.any_pending());
        let mut ran = Vec::new();
        while let Some((server, task, ..)) = servers.take_pending() {
            ran.push(server);
            servers.put_back(task, server);
        }
        ran.sort();
        assert_eq!(ran, [1, 2]);
    }

    #[test]
    fn a_server_started_with_messages_waiting_is_pending_and_one_removed_running_is_handed_back() {
        let mut servers: Servers<_, _, _> = Servers::new();
        servers.add("a", A, 10).unwrap();
        servers.note_message(A);
        assert!(servers.take_pending().is_none(), "not started yet");
        servers.started(A, 7, false);
        let (server, ..) = servers.take_pending().unwrap();
        let (object, calls) = servers.remove(A).unwrap();
        assert_eq!(object, None, "running: its object is out");
        assert!(calls.is_empty());
        assert_eq!(servers.put_back(A, server), Some(7));
        assert!(!servers.hosts(A));
    }

    #[test]
    fn calls_go_to_servers_that_take_them_in_order_and_come_back_when_one_ends() {
        let mut servers: Servers<u32, u32, u32, &str> = Servers::new();
        servers.add("a", A, 10).unwrap();
        servers.add("b", B, 20).unwrap();
        assert_eq!(servers.queue_call(A, "early"), Err("early"), "not started");
        servers.started(A, 1, true);
        servers.started(B, 2, false);
        assert_eq!(servers.queue_call(B, "x"), Err("x"), "b takes no calls");
        assert_eq!(servers.queue_call(3, "y"), Err("y"), "no server");
        assert!(servers.takes_calls(A) && !servers.takes_calls(B) && !servers.takes_calls(3));
        assert!(!servers.any_pending());
        servers.queue_call(A, "first").unwrap();
        servers.queue_call(A, "second").unwrap();
        assert!(servers.any_pending(), "a call makes its server pending");
        assert!(
            servers.take_idle(A).is_none(),
            "a call waits: no short circuit"
        );
        let (server, task, ..) = servers.take_pending().unwrap();
        assert_eq!(servers.take_call(A), Some("first"));
        // Made while it runs: queued behind, made by the same run.
        servers.queue_call(A, "third").unwrap();
        assert_eq!(servers.take_call(A), Some("second"));
        assert_eq!(servers.take_call(A), Some("third"));
        assert_eq!(servers.take_call(A), None);
        servers.put_back(task, server);
        assert_eq!(servers.counts(), (0, 1, 3, 0));
        servers.queue_call(A, "left").unwrap();
        let (object, calls) = servers.remove(A).unwrap();
        assert_eq!(
            (object, calls.into_iter().collect::<Vec<_>>()),
            (Some(1), ["left"].to_vec())
        );
        assert!(!servers.takes_calls(A), "gone");
    }
}
