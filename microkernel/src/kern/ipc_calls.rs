//! The port system calls: allocate, deallocate, destroy, make send rights, count references,
//! move into and out of port sets, and ask for notifications. Each decodes its arguments
//! (names are only names until the caller's space vouches for them) and then acts.

use crate::ipc::port_set::PortSet;
use crate::ipc::space::{Object, Rights};
use crate::kern::kernel::Kernel;
use crate::kern::syscall::{Caller, Outcome};
use libipc::abi::message::notify;
use libipc::abi::syscall::*;
use libipc::abi::KernReturn;

fn result(r: Result<u64, KernReturn>) -> Outcome {
    Outcome::Return(r)
}

pub fn port_allocate(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    // A name and a port record (or a set's, which is smaller).
    let cost = core::mem::size_of::<crate::ipc::port::Port>() + 32;
    if let Err(e) = kernel.check_quota(task, cost) {
        return result(Err(e));
    }
    match a[0] {
        PORT_KIND_RECEIVE => result(kernel.allocate_port(task).map(u64::from)),
        PORT_KIND_SET => {
            let Ok(set) = kernel.ipc.insert_set(PortSet::new()) else {
                return result(Err(KernReturn::ResourceShortage));
            };
            let t = kernel.tasks.get_mut(task).expect("caller's task");
            match t.ipc.insert_port_set(set) {
                Ok(name) => result(Ok(u64::from(name))),
                Err(e) => {
                    kernel.ipc.remove_set(set);
                    result(Err(e))
                }
            }
        }
        _ => result(Err(KernReturn::InvalidValue)),
    }
}

pub fn port_deallocate(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let name = a[0] as u32;
    let Some(entry) = kernel.entry(task, name) else {
        return result(Err(KernReturn::InvalidName));
    };
    let t = kernel.tasks.get_mut(task).expect("caller's task");
    let r = if entry.rights.contains(Rights::SEND) {
        t.ipc.remove_send(name, 1).map(|(port, gone)| {
            if gone {
                kernel.release_send_right(port);
            }
        })
    } else if entry.rights.contains(Rights::SEND_ONCE) {
        t.ipc
            .take_send_once(name)
            .map(|port| kernel.release(crate::ipc::message::CarriedRight::SendOnce(port)))
    } else if entry.rights.contains(Rights::DEAD_NAME) {
        t.ipc.remove_dead(name, 1)
    } else if entry.rights.contains(Rights::PORT_SET) {
        t.ipc
            .take_port_set(name)
            .map(|set| kernel.destroy_port_set(set))
    } else {
        // A receive right alone: that is `port_destroy`'s business.
        Err(KernReturn::InvalidRight)
    };
    result(r.map(|()| 0))
}

pub fn port_destroy(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let name = a[0] as u32;
    let Some(entry) = kernel.entry(task, name) else {
        return result(Err(KernReturn::InvalidName));
    };
    if !entry.rights.contains(Rights::RECEIVE) {
        return result(Err(KernReturn::InvalidRight));
    }
    let t = kernel.tasks.get_mut(task).expect("caller's task");
    if entry.rights.contains(Rights::SEND) {
        if let Ok((port, true)) = t.ipc.remove_send(name, entry.user_references) {
            if let Some(p) = kernel.ipc.port_mut(port) {
                p.send_rights = p.send_rights.saturating_sub(1);
            }
        }
    }
    let t = kernel.tasks.get_mut(task).expect("caller's task");
    match t.ipc.take_receive(name) {
        Ok(port) => {
            kernel.destroy_port(port);
            result(Ok(0))
        }
        Err(e) => result(Err(e)),
    }
}

pub fn port_insert_send(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let name = a[0] as u32;
    let Some(entry) = kernel.entry(task, name) else {
        return result(Err(KernReturn::InvalidName));
    };
    let (Object::Port(port), true) = (entry.object, entry.rights.contains(Rights::RECEIVE)) else {
        return result(Err(KernReturn::InvalidRight));
    };
    let t = kernel.tasks.get_mut(task).expect("caller's task");
    match t.ipc.insert_send(port) {
        Ok(crate::ipc::space::SendInsert::New(_)) => {
            if let Some(p) = kernel.ipc.port_mut(port) {
                p.send_rights += 1;
                p.make_send_count = p.make_send_count.wrapping_add(1);
            }
            result(Ok(0))
        }
        Ok(crate::ipc::space::SendInsert::Merged(_)) => {
            if let Some(p) = kernel.ipc.port_mut(port) {
                p.make_send_count = p.make_send_count.wrapping_add(1);
            }
            result(Ok(0))
        }
        Err(e) => result(Err(e)),
    }
}

pub fn port_get_refs(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let Some(entry) = kernel.entry(task, a[0] as u32) else {
        return result(Err(KernReturn::InvalidName));
    };
    let count = match a[1] {
        RIGHT_RECEIVE => u32::from(entry.rights.contains(Rights::RECEIVE)),
        RIGHT_SEND if entry.rights.contains(Rights::SEND) => entry.user_references,
        RIGHT_SEND_ONCE => u32::from(entry.rights.contains(Rights::SEND_ONCE)),
        RIGHT_PORT_SET => u32::from(entry.rights.contains(Rights::PORT_SET)),
        RIGHT_DEAD_NAME if entry.rights.contains(Rights::DEAD_NAME) => entry.user_references,
        RIGHT_SEND | RIGHT_DEAD_NAME => 0,
        _ => return result(Err(KernReturn::InvalidValue)),
    };
    result(Ok(u64::from(count)))
}

pub fn port_move(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let Some(member) = kernel.entry(task, a[0] as u32) else {
        return result(Err(KernReturn::InvalidName));
    };
    let (Object::Port(port), true) = (member.object, member.rights.contains(Rights::RECEIVE))
    else {
        return result(Err(KernReturn::InvalidRight));
    };
    let new_set = match a[1] as u32 {
        0 => None,
        name => match kernel.entry(task, name) {
            Some(crate::ipc::space::Entry {
                object: Object::PortSet(set),
                ..
            }) => Some(set),
            Some(_) => return result(Err(KernReturn::InvalidRight)),
            None => return result(Err(KernReturn::InvalidName)),
        },
    };
    if let Some(set) = new_set {
        let Some(s) = kernel.ipc.set_mut(set) else {
            return result(Err(KernReturn::InvalidName));
        };
        if s.members.try_reserve(1).is_err() {
            return result(Err(KernReturn::ResourceShortage));
        }
    }
    let old = kernel.ipc.port_mut(port).and_then(|p| p.set.take());
    if let Some(old) = old {
        if let Some(s) = kernel.ipc.set_mut(old) {
            s.members.retain(|m| *m != port);
        }
    }
    if let Some(set) = new_set {
        kernel.ipc.set_mut(set).expect("checked").members.push(port);
        if let Some(p) = kernel.ipc.port_mut(port) {
            p.set = Some(set);
        }
        // Messages already queued on the port may satisfy receivers waiting on the set.
        kernel.feed_set_receivers(port);
    }
    result(Ok(0))
}

pub fn port_request_notification(kernel: &mut Kernel, caller: Caller, a: [u64; 6]) -> Outcome {
    let task = caller.task;
    let [name, kind, notify_name, ..] = a;
    let Some(notify_entry) = kernel.entry(task, notify_name as u32) else {
        return result(Err(KernReturn::InvalidName));
    };
    let (Object::Port(notify_port), true) = (
        notify_entry.object,
        notify_entry.rights.contains(Rights::RECEIVE),
    ) else {
        return result(Err(KernReturn::InvalidRight));
    };
    let Some(entry) = kernel.entry(task, name as u32) else {
        return result(Err(KernReturn::InvalidName));
    };
    match kind as u32 {
        notify::DEAD_NAME => {
            if entry.rights.contains(Rights::DEAD_NAME) {
                // Already dead: the notification comes at once.
                kernel.notify(notify_port, notify::DEAD_NAME, &(name as u32).to_le_bytes());
                return result(Ok(0));
            }
            let Object::Port(port) = entry.object else {
                return result(Err(KernReturn::InvalidRight));
            };
            if !entry
                .rights
                .intersects(Rights::SEND.with(Rights::SEND_ONCE))
            {
                return result(Err(KernReturn::InvalidRight));
            }
            let Some(p) = kernel.ipc.port_mut(port) else {
                return result(Err(KernReturn::InvalidName));
            };
            if p.dead_name_requests.try_reserve(1).is_err() {
                return result(Err(KernReturn::ResourceShortage));
            }
            p.dead_name_requests
                .push(crate::ipc::port::DeadNameRequest {
                    name: name as u32,
                    notify: notify_port,
                });
            result(Ok(0))
        }
        notify::NO_SENDERS => {
            let (Object::Port(port), true) = (entry.object, entry.rights.contains(Rights::RECEIVE))
            else {
                return result(Err(KernReturn::InvalidRight));
            };
            let Some(p) = kernel.ipc.port_mut(port) else {
                return result(Err(KernReturn::InvalidName));
            };
            if p.send_rights == 0 {
                let count = p.make_send_count;
                kernel.notify(notify_port, notify::NO_SENDERS, &count.to_le_bytes());
            } else {
                p.no_senders = Some(notify_port);
            }
            result(Ok(0))
        }
        _ => result(Err(KernReturn::InvalidValue)),
    }
}
