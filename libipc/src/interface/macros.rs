//! [`interface!`](crate::interface!): a subsystem declared once, its ids, client stub, server
//! trait and dispatch function generated.

/// Declares a subsystem: a module holding its message ids, a client stub (`Client`), a server
/// trait (`Server`) and its dispatch function (`dispatch`, and `Dispatcher` for
/// [`serve`](crate::interface::serve)).
///
/// ```ignore
/// libipc::interface! {
///     /// Echoes bytes back.
///     pub mod echo = 2000 {
///         type Error = EchoError;
///
///         /// Returns `bytes` unchanged.
///         ///
///         /// Reply: the same bytes, or `EchoError::Empty` if there were none.
///         fn echo(bytes: Vec<u8>) -> Vec<u8>;      // id 2000
///         skip;                                     // 2001: retired, never reused
///         /// Gives `port` back (a copy of the right).
///         fn bounce(port: SendRight) -> SendRight;  // id 2002
///     }
/// }
/// ```
///
/// - Message ids: routine *i* (counting `skip;` slots) has id `base + i`, in
///   `<module>::ids::<routine>`; its reply has id + 100 (MIG's convention). A retired
///   routine becomes `skip;` so that no id ever shifts; ids in `base..base + COUNT` that no
///   routine has are answered [`RemoteError::UnknownRoutine`](crate::interface::RemoteError).
/// - Arguments and results are [`Wire`](crate::interface::Wire) types: any serde type
///   (postcard-encoded), or [`SendRight`](crate::interface::SendRight), which travels as a
///   port descriptor. `type Error` is the routines' own error type (a serde type;
///   [`NoError`](crate::interface::NoError) if they cannot fail).
/// - Each routine's doc comment, which should say what the reply is, is carried onto its id,
///   its client method and its server method.
/// - `Client<T = PortTransport>`: one method per routine, taking [`Give`] values (the value,
///   or `&SendRight`) and returning `Result<Ret, RemoteError<Error>>`.
/// - `trait Server`: one method per routine, taking the decoded arguments and a
///   [`Reply`](crate::interface::Reply), returning the [`Replied`](crate::interface::Replied)
///   that sending or deferring the reply gives.
/// - `dispatch(server, request, outbox)`: decodes and calls the routine a request names;
///   `NotMine` for ids outside the subsystem. `Dispatcher(&mut server)` is the same as a
///   [`Dispatch`](crate::interface::Dispatch).
/// - `local(server, visit)` and `Local`: a server lent for direct calls between collocated
///   servers ([`direct`](crate::interface::direct)); a server's `Dispatch::local` calls
///   `local` for the port the interface is served on. A client method whose arguments and
///   result are plain data tries such a call first when its transport allows it.
///
/// Inside the module, names of the enclosing module are in scope (`use super::*`), as are
/// `String`, `Vec`, `Box` and `SendRight`.
///
/// [`Give`]: crate::interface::Give
#[macro_export]
macro_rules! interface {
    (
        $(#[$attr:meta])*
        $vis:vis mod $module:ident = $base:literal {
            type Error = $error:ty;
            $($routines:tt)*
        }
    ) => {
        $crate::__interface_routines! {
            [$(#[$attr])* $vis mod $module = $base; $error]
            [0]
            []
            $($routines)*
        }
    };
}

/// Numbers the routines of [`interface!`] one by one (a retired `skip;` takes a number too),
/// then generates the module.
#[doc(hidden)]
#[macro_export]
macro_rules! __interface_routines {
    (
        $head:tt [$($index:tt)*] [$($done:tt)*]
        $(#[$attr:meta])* skip; $($rest:tt)*
    ) => {
        $crate::__interface_routines! { $head [$($index)* + 1] [$($done)*] $($rest)* }
    };
    (
        $head:tt [$($index:tt)*] [$($done:tt)*]
        $(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty; $($rest:tt)*
    ) => {
        $crate::__interface_routines! {
            $head
            [$($index)* + 1]
            [$($done)* {($($index)*) [$(#[$attr])*] $name($($arg: $ty),*) -> $ret}]
            $($rest)*
        }
    };
    (
        [$(#[$attr:meta])* $vis:vis mod $module:ident = $base:literal; $error:ty]
        [$($count:tt)*]
        [$({
            ($($index:tt)*) [$(#[$routine_attr:meta])*] $name:ident($($arg:ident: $ty:ty),*)
            -> $ret:ty
        })*]
    ) => {
        $(#[$attr])*
        $vis mod $module {
            // A program uses the side it needs: the client or the server.
            #![allow(unused_imports, dead_code)]
            // A routine's doc goes on its id, its client method and its server method, in
            // scopes where a short link resolves and where it does not: links are written
            // out in full (`[`Attributes`](super::Attributes)`).
            #![allow(rustdoc::redundant_explicit_links)]
            use super::*;
            use $crate::interface::prelude::*;

            /// The subsystem's first message id.
            pub const BASE: u32 = $base;
            /// Ids in use or retired: `BASE..BASE + COUNT`.
            pub const COUNT: u32 = $($count)*;

            /// The routines' error type.
            pub type Error = $error;

            /// The message id of each routine (its reply's is 100 more).
            #[allow(non_upper_case_globals)]
            pub mod ids {
                $(
                    $(#[$routine_attr])*
                    pub const $name: u32 = super::BASE + ($($index)*);
                )*
            }

            /// The client stub: one method per routine, each a remote procedure call.
            pub struct Client<T = $crate::interface::PortTransport> {
                stub: $crate::interface::Stub<T>,
            }

            impl Client<$crate::interface::PortTransport> {
                /// A client of the server whose port `server` is a send right to.
                pub fn new(server: $crate::interface::SendRight) -> Self {
                    Client::with_transport($crate::interface::PortTransport::new(server))
                }
            }

            impl<T: $crate::interface::Transport> Client<T> {
                /// A client whose calls go through `transport`.
                pub fn with_transport(transport: T) -> Self {
                    Client {
                        stub: $crate::interface::Stub::new(transport),
                    }
                }

                /// The transport calls go through (for a `PortTransport`, its `server()`
                /// is the send right to the server's port).
                pub fn transport(&self) -> &T {
                    self.stub.transport()
                }

                /// Gives the transport back.
                pub fn into_transport(self) -> T {
                    self.stub.into_transport()
                }

                $(
                    $(#[$routine_attr])*
                    pub fn $name(
                        &mut self,
                        $($arg: $crate::interface::Give<'_, $ty>),*
                    ) -> ::core::result::Result<$ret, $crate::interface::RemoteError<$error>> {
                        // Plain data to a collocated server from a collocated caller: a
                        // direct call of the routine (`interface::direct`).
                        let plain = true
                            $(&& <$ty as $crate::interface::Wire>::PLAIN)*
                            && <$ret as $crate::interface::Wire>::PLAIN;
                        let port = match plain {
                            true => $crate::interface::Transport::direct_port(
                                self.stub.transport(),
                            ),
                            false => ::core::option::Option::None,
                        };
                        let ($($arg,)*) = match $crate::interface::direct::try_call::<
                            Local, _, $ret, $error
                        >(port, ($($arg,)*), |local, ($($arg,)*), reply| {
                            // SAFETY: a `Local` lives only while `local` lends its server.
                            let server = unsafe { &mut *local.0 };
                            server.$name($(
                                match <$ty as $crate::interface::Wire>::given($arg) {
                                    ::core::result::Result::Ok(value) => value,
                                    // (Plain data is always given: not reached.)
                                    ::core::result::Result::Err(_) => ::core::unreachable!(),
                                },
                            )* reply)
                        }) {
                            ::core::result::Result::Ok(result) => return result,
                            ::core::result::Result::Err(arguments) => arguments,
                        };
                        self.stub.call::<$ret, $error>(ids::$name, |_encoder| {
                            $(<$ty as $crate::interface::Wire>::encode($arg, _encoder)?;)*
                            ::core::result::Result::Ok(())
                        })
                    }
                )*
            }

            /// The client stub for requests sent without waiting: each method sends the
            /// request and returns; the reply comes to the port the caller names, and the
            /// caller reads it with `decode_reply` and the routine's id. A client keeps several
            /// requests in flight this way (Mach's asynchronous RPC).
            pub struct AsyncClient<T = $crate::interface::PortTransport> {
                stub: $crate::interface::Stub<T>,
            }

            impl AsyncClient<$crate::interface::PortTransport> {
                /// An asynchronous client of the server whose port `server` is a send right to.
                pub fn new(server: $crate::interface::SendRight) -> Self {
                    AsyncClient {
                        stub: $crate::interface::Stub::new(
                            $crate::interface::PortTransport::new(server),
                        ),
                    }
                }
            }

            impl<T: $crate::interface::Transport> AsyncClient<T> {
                /// An asynchronous client whose requests go through `transport`.
                pub fn with_transport(transport: T) -> Self {
                    AsyncClient {
                        stub: $crate::interface::Stub::new(transport),
                    }
                }

                /// The transport requests go through.
                pub fn transport(&self) -> &T {
                    self.stub.transport()
                }

                /// The transport requests go through, to change.
                pub fn transport_mut(&mut self) -> &mut T {
                    self.stub.transport_mut()
                }

                $(
                    $(#[$routine_attr])*
                    pub fn $name(
                        &mut self,
                        reply_port: $crate::ipc::Name,
                        $($arg: $crate::interface::Give<'_, $ty>),*
                    ) -> ::core::result::Result<(), $crate::interface::TransportError> {
                        self.stub.send(ids::$name, reply_port, |_encoder| {
                            $(<$ty as $crate::interface::Wire>::encode($arg, _encoder)?;)*
                            ::core::result::Result::Ok(())
                        })
                    }
                )*
            }

            /// The server side: one method per routine, given the decoded arguments and the
            /// request's reply, which it sends now or defers.
            pub trait Server {
                $(
                    $(#[$routine_attr])*
                    fn $name(
                        &mut self,
                        $($arg: $ty,)*
                        reply: $crate::interface::Reply<'_, $ret, $error>,
                    ) -> $crate::interface::Replied;
                )*
            }

            /// Decodes `request` and calls the routine it names on `server`; `NotMine` if its
            /// id is not this subsystem's. Malformed requests and retired or unknown ids are
            /// answered with an error, never a panic.
            pub fn dispatch<S: Server + ?Sized>(
                server: &mut S,
                request: &$crate::ipc::Received<'_>,
                outbox: &mut $crate::interface::Outbox,
            ) -> $crate::interface::Dispatched {
                match request.id() {
                    $(
                        ids::$name => $crate::interface::dispatch_routine::<$ret, $error, _>(
                            request,
                            outbox,
                            |_decoder| ::core::result::Result::Ok((
                                $(<$ty as $crate::interface::Wire>::decode(_decoder)?,)*
                            )),
                            |($($arg,)*), reply| server.$name($($arg,)* reply),
                        ),
                    )*
                    id if id.wrapping_sub(BASE) < COUNT => {
                        $crate::interface::reject_unknown(request, outbox)
                    }
                    _ => $crate::interface::Dispatched::NotMine,
                }
            }

            /// A server of this interface lent to a collocated caller for a direct call
            /// (`interface::direct`): made only by [`local`], alive only while it lends.
            pub struct Local(*mut (dyn Server + 'static));

            /// Lends `server` to `visit` for a direct call of one of its routines by a
            /// collocated caller: what a server's `Dispatch::local` calls for the port this
            /// interface is served on. `visit`'s answer: whether it took it.
            pub fn local(
                server: &mut dyn Server,
                visit: &mut $crate::interface::direct::Visit<'_>,
            ) -> bool {
                let server: *mut (dyn Server + '_) = server;
                let server: *mut (dyn Server + 'static) =
                    // SAFETY: only the trait object's lifetime bound changes: the `Local`
                    // is used only during `visit`, while `server` is borrowed here.
                    unsafe { ::core::mem::transmute(server) };
                visit(&mut Local(server))
            }

            /// A server as a `Dispatch`, for the server loop (`serve`).
            pub struct Dispatcher<'a, S: ?Sized>(pub &'a mut S);

            impl<S: Server + ?Sized> $crate::interface::Dispatch for Dispatcher<'_, S> {
                fn dispatch(
                    &mut self,
                    request: &$crate::ipc::Received<'_>,
                    outbox: &mut $crate::interface::Outbox,
                ) -> $crate::interface::Dispatched {
                    dispatch(self.0, request, outbox)
                }
            }
        }
    };
}
