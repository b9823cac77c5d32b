//! The name server: the same in both builds, the program (`main.rs`) and the server
//! collocated in the kernel ([`hosted`]).
//!
//! It serves the name service ([`libipc::names::service`]) on a port of its own for each
//! program bootstrap starts, and the admin interface ([`libipc::names::admin`]) on the port
//! only bootstrap holds. A client port with no senders left means its program (and whoever
//! it handed its right to) is gone: the server tells the port's watcher (bootstrap's) with a
//! [`CLIENT_GONE`] message, the way bootstrap learns that a child has exited. A registered
//! port that dies leaves the table through a dead-name notification.
//!
//! A port registered under [`DEFAULT_PAGER_NAME`] becomes the kernel's default pager
//! (`host_set_default_pager`, through the host port), one under [`PROGRAM_PAGER_NAME`] its
//! program pager, one under [`BACKING_STORE_NAME`] the default pager's backing store.

use alloc::string::String;
use alloc::vec::Vec;

use crate::{NameTable, MAX_CLIENTS, NAME_TABLE_CAPACITY};
use libipc::abi::message::{notify, Disposition};
use libipc::abi::KernReturn;
use libipc::device::DEVICE_MASTER_NAME;
use libipc::interface::{Deferred, Dispatch, Dispatched, Outbox, Replied, Reply};
use libipc::ipc::{Name, OutMessage, PortSet, ReceiveRight, Received, SendRight};
use libipc::names::{self, admin, NameError, CLIENT_GONE};
use libipc::pager::{BACKING_STORE_NAME, DEFAULT_PAGER_NAME, PROGRAM_PAGER_NAME};
use libipc::{println, sys};

/// Lookups waiting for a name at most (the oldest is answered `Unknown` to make room).
const MAX_WAITING: usize = 64;

/// A port of the service given to one program.
struct Client {
    port: ReceiveRight,
    /// Its lookups of the device master port are answered.
    devices: bool,
    /// Told when the port has no senders left.
    watcher: SendRight,
}

/// The name service.
pub struct NameService {
    set: PortSet,
    /// The port only bootstrap holds (its receive right is the starter's to keep).
    admin: Name,
    /// Where dead-name notifications of registered ports arrive.
    notify: ReceiveRight,
    table: NameTable<SendRight>,
    /// The host port, to make a registered pager the kernel's (0: none).
    host: Name,
    /// The device master port, given only to clients with `devices`.
    device_master: Option<SendRight>,
    clients: Vec<Client>,
    /// Lookups waiting for their name to be registered, oldest first.
    waiting: Vec<(String, Deferred<SendRight, NameError>)>,
    /// Whether the request being served comes from a client with `devices`.
    asker_has_devices: bool,
}

impl NameService {
    /// A name service serving from a new port set, its admin port `admin` (in the set);
    /// `host`: the host port (0: none, and registered pagers are not the kernel's).
    pub fn new(admin: &ReceiveRight, host: Name) -> Result<NameService, KernReturn> {
        let set = PortSet::allocate()?;
        let notify = ReceiveRight::allocate()?;
        set.insert(admin)?;
        set.insert(&notify)?;
        let device_master = match host {
            0 => None,
            host => sys::host_device_master(host).ok().map(SendRight::from_raw),
        };
        let mut clients = Vec::new();
        clients
            .try_reserve_exact(MAX_CLIENTS)
            .map_err(|_| KernReturn::ResourceShortage)?;
        Ok(NameService {
            set,
            admin: admin.name(),
            notify,
            table: NameTable::new(NAME_TABLE_CAPACITY),
            host,
            device_master,
            clients,
            waiting: Vec::new(),
            asker_has_devices: false,
        })
    }

    /// The name of the port set it serves from.
    pub fn set_name(&self) -> Name {
        self.set.name()
    }

    /// Registers `port` under `name`: watched for its death, and made the kernel's pager
    /// if its name says it is one.
    fn register(&mut self, name: String, port: SendRight) -> Result<(), NameError> {
        let watched = port.name();
        // Pagers the kernel is told of: what, and the call that tells it.
        type Set = fn(Name, Name) -> Result<(), KernReturn>;
        let pager: Option<(&str, Set)> = match name.as_str() {
            DEFAULT_PAGER_NAME => Some(("default pager", sys::host_set_default_pager)),
            BACKING_STORE_NAME => Some(("backing store", sys::host_set_backing_store)),
            PROGRAM_PAGER_NAME => Some(("program pager", sys::host_set_program_pager)),
            _ => None,
        };
        // Lookups waiting for the name are answered: with a copy of the right.
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].0 == name {
                let (_, deferred) = self.waiting.remove(i);
                // A client that stopped waiting is nobody's loss.
                let _ = deferred.send(Ok(&port));
            } else {
                i += 1;
            }
        }
        self.table.register(name, port)?;
        // If the request fails the entry stays until looked up in vain; the table is the
        // service's, not a correctness matter for clients.
        let _ = sys::port_request_notification(watched, notify::DEAD_NAME, self.notify.name());
        if let Some((what, set)) = pager.filter(|_| self.host != 0) {
            // The kernel takes a send right of its own; the table keeps ours.
            match set(self.host, watched) {
                Ok(()) => println!("names: the {what} is registered"),
                Err(error) => {
                    println!("names: cannot register the {what} with the kernel: {error}")
                }
            }
        }
        Ok(())
    }

    /// The client whose port `port` had its last sender go: its watcher is told, and both
    /// go.
    fn client_gone(&mut self, port: Name) {
        let Some(index) = self.clients.iter().position(|c| c.port.name() == port) else {
            return;
        };
        let client = self.clients.swap_remove(index);
        let gone = OutMessage::new(CLIENT_GONE, 0).to(client.watcher.name(), Disposition::CopySend);
        // One message to a port of its own: its queue has room (a watcher already gone is
        // nobody's loss).
        let _ = libipc::ipc::send_message(&gone, Some(0));
    }
}

impl names::Server for NameService {
    fn register(
        &mut self,
        name: String,
        port: SendRight,
        reply: Reply<'_, (), NameError>,
    ) -> Replied {
        let result = NameService::register(self, name, port);
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

    fn lookup_wait(&mut self, name: String, reply: Reply<'_, SendRight, NameError>) -> Replied {
        match self.table.lookup(&name) {
            Err(NameError::Unknown) if name != DEVICE_MASTER_NAME => {}
            _ => return names::Server::lookup(self, name, reply),
        }
        if self.waiting.len() >= MAX_WAITING {
            // Room for the newest: the oldest waiter is told the name is unknown.
            let (_, oldest) = self.waiting.remove(0);
            let _ = oldest.send(Err(NameError::Unknown));
        }
        if self.waiting.try_reserve(1).is_err() {
            return reply.err(NameError::TableFull);
        }
        let (deferred, replied) = reply.defer();
        self.waiting.push((name, deferred));
        replied
    }
}

impl admin::Server for NameService {
    fn client(
        &mut self,
        devices: bool,
        watcher: SendRight,
        reply: Reply<'_, SendRight, NameError>,
    ) -> Replied {
        if self.clients.len() >= MAX_CLIENTS {
            return reply.err(NameError::TableFull);
        }
        let made = ReceiveRight::allocate().and_then(|port| {
            self.set.insert(&port)?;
            let send = port.make_send()?;
            // Armed while our own send right stands, so it fires even if the program is gone
            // before it ever uses the port, once the send right we give goes.
            sys::port_request_notification(port.name(), notify::NO_SENDERS, port.name())?;
            Ok((port, send))
        });
        let Ok((port, send)) = made else {
            return reply.err(NameError::TableFull);
        };
        self.clients.push(Client {
            port,
            devices,
            watcher,
        });
        // The reply moves a copy; ours goes when `send` drops, after the reply is out.
        let replied = reply.ok(&send);
        drop(send);
        replied
    }

    fn register(
        &mut self,
        name: String,
        port: SendRight,
        reply: Reply<'_, (), NameError>,
    ) -> Replied {
        let result = NameService::register(self, name, port);
        reply.send(result)
    }
}

impl Dispatch for NameService {
    fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
        let on = request.header.local_port;
        match request.id() {
            notify::NO_SENDERS => {
                self.client_gone(on);
                Dispatched::Handled
            }
            notify::DEAD_NAME => {
                if let Some(dead) = request.body.get(..4) {
                    let dead = u32::from_le_bytes(dead.try_into().expect("4 bytes"));
                    self.table.remove_where(|port| port.name() == dead);
                }
                Dispatched::Handled
            }
            _ if on == self.admin => {
                self.asker_has_devices = true;
                let dispatched = match admin::dispatch(self, request, outbox) {
                    Dispatched::NotMine => names::dispatch(self, request, outbox),
                    dispatched => dispatched,
                };
                self.asker_has_devices = false;
                dispatched
            }
            _ => {
                let Some(client) = self.clients.iter().find(|c| c.port.name() == on) else {
                    return Dispatched::NotMine;
                };
                self.asker_has_devices = client.devices;
                let dispatched = names::dispatch(self, request, outbox);
                self.asker_has_devices = false;
                dispatched
            }
        }
    }
}

/// The name server collocated in the kernel ([`libipc::hosted::Start`]): its first start
/// argument is the host port (not a name service: it is the name service). Its service
/// port is its admin port, which the kernel moves to bootstrap.
pub fn hosted(
    args: libipc::rt::StartArgs,
) -> Result<libipc::hosted::Started, libipc::abi::KernReturn> {
    let host = u32::try_from(args.arg0).unwrap_or(0);
    let admin = ReceiveRight::allocate()?;
    let service = admin.make_send()?;
    let server = NameService::new(&admin, host)?;
    let set = server.set_name();
    Ok(libipc::hosted::Started::new(set, server, admin, service))
}
