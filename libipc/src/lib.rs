//! `libipc`: what servers are written against: the ABI shared with the kernel, and the runtime.
//!
//! [`abi`] is the small, dependency-free part that the kernel links too: error codes, system
//! call numbers, the boot archive format and the guest's report protocol (how the kernel tells
//! the host what happened).
//!
//! With the `runtime` feature, built for `target_os = "none"`, it is also the user runtime:
//! [`program!`] makes a crate a user program (entry point, panic handler, heap), [`sys`] wraps
//! the system calls and [`print!`]/[`println!`] write to the kernel console. The kernel never
//! enables `runtime`.
//!
//! The runtime also brings typed interfaces: [`interface!`] declares a subsystem once and
//! generates its message ids, client stub, server trait and dispatch function
//! ([`mod@interface`] explains the wire format and the reply model); [`names`] is the bootstrap
//! name service, declared that way, and [`mod@file`] the file interface `bootfs` serves over the
//! boot archive. Arguments travel postcard-encoded, so a program that
//! defines its own argument or error types also depends on `serde` (`serde.workspace = true`).
//!
//! # A complete server
//!
//! A greeting server that registers with bootstrap's name service and serves until its port
//! dies. (An interface that several programs use goes into a library crate they share.)
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! extern crate alloc;
//!
//! use alloc::format;
//! use alloc::string::String;
//! use libipc::interface::{serve, Replied, Reply};
//! use libipc::ipc::ReceiveRight;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! pub enum GreetError {
//!     Empty,
//! }
//!
//! libipc::interface! {
//!     /// A greeting service.
//!     pub mod greeter = 2000 {
//!         type Error = GreetError;
//!
//!         /// Greets `name`.
//!         ///
//!         /// Reply: `"hello, <name>"`, or `GreetError::Empty` if `name` is empty.
//!         fn greet(name: String) -> String;
//!     }
//! }
//!
//! struct Greeter;
//!
//! impl greeter::Server for Greeter {
//!     fn greet(&mut self, name: String, reply: Reply<'_, String, GreetError>) -> Replied {
//!         if name.is_empty() {
//!             return reply.err(GreetError::Empty);
//!         }
//!         reply.ok(format!("hello, {name}"))
//!     }
//! }
//!
//! libipc::program!(main);
//!
//! fn main(args: libipc::rt::StartArgs) -> i32 {
//!     // bootstrap passes every program it starts a send right to its name service.
//!     let Some(mut names) = libipc::names::Client::from_start_args(&args) else {
//!         return 1;
//!     };
//!     let port = ReceiveRight::allocate().expect("a port");
//!     let send = port.make_send().expect("a send right");
//!     if names.register("greeter".into(), &send).is_err() {
//!         return 1;
//!     }
//!     match serve(&port, &mut greeter::Dispatcher(&mut Greeter)) {
//!         Ok(()) => 0,
//!         Err(_) => 1,
//!     }
//! }
//! ```
//!
//! And a client, in another program started by bootstrap:
//!
//! ```ignore
//! let mut names = libipc::names::Client::from_start_args(&args).expect("started by bootstrap");
//! let mut greeter = greeter::Client::new(names.lookup("greeter".into())?);
//! assert_eq!(greeter.greet("world".into())?, "hello, world");
//! assert!(matches!(
//!     greeter.greet(String::new()),
//!     Err(libipc::interface::RemoteError::Server(GreetError::Empty))
//! ));
//! ```
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(any(test, feature = "transport"))]
extern crate alloc;

pub mod abi;
pub mod bench;
#[cfg(any(test, feature = "wire"))]
pub mod device;
#[cfg(any(test, feature = "transport"))]
pub mod file;
#[cfg(all(feature = "transport", target_os = "none"))]
pub mod hosted;
#[cfg(any(test, feature = "transport"))]
pub mod interface;
pub mod ipc;
#[cfg(any(test, feature = "transport"))]
pub mod names;
#[cfg(any(test, feature = "wire"))]
pub mod pager;

#[cfg(any(test, feature = "transport"))]
pub mod rt;

#[cfg(any(test, feature = "props"))]
pub mod props;

#[cfg(all(feature = "transport", target_os = "none"))]
pub mod process;
#[cfg(all(feature = "transport", target_os = "none"))]
pub mod sys;
