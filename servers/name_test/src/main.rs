//! `name_test`: in-guest tests of the bootstrap name service and of generated interfaces,
//! started by bootstrap (its first start argument is the name service's port).
//!
//! It registers a port, looks names up, and starts a copy of itself as an echo server (second
//! start argument 1) that registers under [`ECHO_NAME`]; it then calls the echo server through
//! the generated client. One `ktest names_<case> ok` / `FAILED: why` line per case, then
//! `N passed, M failed`; the exit status is the number of failures.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
libipc::program!(main);

/// The name the echo server registers.
#[cfg(target_os = "none")]
const ECHO_NAME: &str = "name_test.echo";

#[cfg(target_os = "none")]
use libipc::interface::NoError;

#[cfg(target_os = "none")]
libipc::interface! {
    /// The test's echo service.
    mod echo = 3000 {
        type Error = NoError;

        /// Reply: `bytes`, unchanged.
        fn echo(bytes: Vec<u8>) -> Vec<u8>;
        /// Reply: a copy of `port`.
        fn bounce(port: SendRight) -> SendRight;
        /// Reply: `()`; the server then stops.
        fn quit() -> ();
    }
}

#[cfg(target_os = "none")]
mod server {
    //! The echo server: the child half.
    use super::echo;
    use alloc::vec::Vec;
    use libipc::interface::{Dispatch, Dispatched, NoError, Outbox, Replied, Reply};
    use libipc::ipc::{ReceiveRight, Received, SendRight};
    use libipc::names;

    struct Echo {
        quit: bool,
    }

    impl echo::Server for Echo {
        fn echo(&mut self, bytes: Vec<u8>, reply: Reply<'_, Vec<u8>, NoError>) -> Replied {
            reply.ok(bytes)
        }

        fn bounce(&mut self, port: SendRight, reply: Reply<'_, SendRight, NoError>) -> Replied {
            // A reply with a right goes at once, while `port` is still ours.
            reply.ok(&port)
        }

        fn quit(&mut self, reply: Reply<'_, (), NoError>) -> Replied {
            self.quit = true;
            reply.ok(())
        }
    }

    impl Dispatch for Echo {
        fn dispatch(&mut self, request: &Received<'_>, outbox: &mut Outbox) -> Dispatched {
            match echo::dispatch(self, request, outbox) {
                Dispatched::Handled if self.quit => Dispatched::Stop,
                other => other,
            }
        }
    }

    /// Registers the echo port and serves it until `quit`; the exit status.
    pub fn run(mut names: names::Client) -> i32 {
        // Late on purpose: the test's lookup of the name waits for it (`lookup_wait`).
        libipc::rt::sleep_ms(50);
        let port = ReceiveRight::allocate().expect("echo port");
        let send = port.make_send().expect("echo send right");
        if let Err(error) = names.register(super::ECHO_NAME.into(), &send) {
            libipc::println!("name_test: echo server cannot register: {error}");
            return 1;
        }
        match libipc::interface::serve(&port, &mut Echo { quit: false }) {
            Ok(()) => 0,
            Err(error) => {
                libipc::println!("name_test: echo server stopped: {error:?}");
                1
            }
        }
    }
}

#[cfg(target_os = "none")]
mod cases {
    //! The test cases: the parent half.
    use super::{echo, ECHO_NAME};
    use alloc::format;
    use alloc::string::String;
    use alloc::vec;
    use libipc::abi::message::{MsgReturn, MAX_MESSAGE_SIZE};
    use libipc::interface::{decode_reply, IpcError, NoError, RemoteError, TransportError};
    use libipc::ipc::{self, MessageBuffer, OutMessage, ReceiveRight, SendRight, Task};
    use libipc::names::{self, NameError, MAX_NAME_LEN};
    use libipc::{println, sys};

    type Outcome = Result<(), String>;

    /// Runs each case, printing its line; returns (passed, failed).
    struct Runner {
        passed: u32,
        failed: u32,
    }

    impl Runner {
        fn case(&mut self, name: &str, outcome: Outcome) {
            match outcome {
                Ok(()) => {
                    println!("ktest names_{name} ok");
                    self.passed += 1;
                }
                Err(why) => {
                    println!("ktest names_{name} FAILED: {why}");
                    self.failed += 1;
                }
            }
        }
    }

    fn expect<T: PartialEq + core::fmt::Debug>(what: &str, got: T, want: T) -> Outcome {
        if got == want {
            Ok(())
        } else {
            Err(format!("{what}: got {got:?}, expected {want:?}"))
        }
    }

    /// Sends echo request `id` with `body` through `to` by hand; the reply as the stub
    /// reads it.
    fn raw_call(to: &SendRight, id: u32, body: &[u8]) -> Result<(), RemoteError<NoError>> {
        let reply = ReceiveRight::allocate().map_err(|_| RemoteError::NoReply)?;
        let request = OutMessage::new(id, to.name())
            .reply_to(reply.name())
            .with_body(body);
        let mut buffer = MessageBuffer::new();
        let received = ipc::call(&request, reply.name(), &mut buffer, Some(5000))
            .map_err(|e| RemoteError::Transport(e.into()))?;
        decode_reply::<(), NoError>(&received, id)
    }

    pub fn run(mut names: names::Client) -> i32 {
        let mut t = Runner {
            passed: 0,
            failed: 0,
        };
        let mine = ReceiveRight::allocate().expect("port");
        let mine_send = mine.make_send().expect("send right");

        t.case(
            "register",
            expect(
                "register",
                names.register("name_test.mine".into(), &mine_send),
                Ok(()),
            ),
        );
        t.case(
            "duplicate",
            expect(
                "register again",
                names.register("name_test.mine".into(), &mine_send),
                Err(RemoteError::Server(NameError::Duplicate)),
            ),
        );
        t.case("bad_names", {
            let long = "n".repeat(MAX_NAME_LEN + 1);
            expect(
                "too long",
                names.register(long, &mine_send),
                Err(RemoteError::Server(NameError::TooLong)),
            )
            .and(expect(
                "empty",
                names.lookup(String::new()).err(),
                Some(RemoteError::Server(NameError::Empty)),
            ))
        });
        t.case(
            "unknown",
            expect(
                "lookup",
                names.lookup("name_test.nobody".into()).err(),
                Some(RemoteError::Server(NameError::Unknown)),
            ),
        );
        t.case(
            "lookup",
            match names.lookup("name_test.mine".into()) {
                // The right merges into the name we hold the port under.
                Ok(port) => expect("the right's name", port.name(), mine.name()),
                Err(error) => Err(format!("lookup: {error}")),
            },
        );

        // The echo server: a copy of this program, given our name-service right.
        let child = Task::spawn("name_test", Some(names.transport().server()), 1);
        // It registers 50 ms after it starts: the lookup waits for it.
        let echo_port = match &child {
            Ok(_) => names
                .lookup_waiting(ECHO_NAME, 5_000)
                .map_err(|error| format!("lookup_wait {ECHO_NAME}: {error}")),
            Err(error) => Err(format!("spawn the echo server: {error}")),
        };
        t.case(
            "lookup_waits",
            echo_port.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let mut echo = echo_port.map(echo::Client::new);
        t.case(
            "lookup_wait_times_out",
            match names.lookup_waiting("name_test.never", 100) {
                Err(RemoteError::Transport(TransportError::Ipc(IpcError::Msg(
                    MsgReturn::RcvTimedOut,
                )))) => Ok(()),
                other => Err(format!(
                    "waiting 100 ms for a name nobody registers gave {:?}",
                    other.map(|port| port.name())
                )),
            },
        );

        t.case(
            "call_through",
            match &mut echo {
                Ok(echo) => {
                    let big = vec![0x5a; MAX_MESSAGE_SIZE / 2];
                    expect("echo", echo.echo(b"hello".to_vec()), Ok(b"hello".to_vec())).and(expect(
                        "echo 4 KiB",
                        echo.echo(big.clone()),
                        Ok(big),
                    ))
                }
                Err(why) => Err(why.clone()),
            },
        );
        t.case(
            "right_through_call",
            match &mut echo {
                Ok(echo) => match echo.bounce(&mine_send) {
                    Ok(port) => expect("bounced right", port.name(), mine.name()),
                    Err(error) => Err(format!("bounce: {error}")),
                },
                Err(why) => Err(why.clone()),
            },
        );
        t.case(
            "malformed_request",
            match &echo {
                Ok(echo) => {
                    let server = echo.transport().server();
                    expect(
                        "garbage body",
                        raw_call(server, echo::ids::echo, &[0xff; 8]),
                        Err(RemoteError::BadRequest),
                    )
                    .and(expect(
                        "unknown id",
                        raw_call(server, echo::BASE + 50, &[0, 0]),
                        Err(RemoteError::UnknownRoutine),
                    ))
                }
                Err(why) => Err(why.clone()),
            },
        );
        t.case(
            "server_exit",
            match (&mut echo, &child) {
                (Ok(echo), Ok(task)) => expect("quit", echo.quit(), Ok(())).and(expect(
                    "the echo server's status",
                    task.wait(),
                    Ok(0),
                )),
                (Err(why), _) => Err(why.clone()),
                (_, Err(error)) => Err(format!("{error}")),
            },
        );
        // The echo port died with its server: bootstrap drops the name on its dead-name
        // notification (which may come a little after).
        drop(echo);
        t.case("dead_name_removed", {
            let mut outcome = Err(String::from("still registered"));
            for _ in 0..10_000 {
                match names.lookup(ECHO_NAME.into()) {
                    Err(RemoteError::Server(NameError::Unknown)) => {
                        outcome = Ok(());
                        break;
                    }
                    Ok(_) => sys::thread_yield(),
                    Err(error) => {
                        outcome = Err(format!("lookup: {error}"));
                        break;
                    }
                }
            }
            outcome
        });
        println!("{} passed, {} failed", t.passed, t.failed);
        t.failed as i32
    }
}

#[cfg(target_os = "none")]
fn main(args: libipc::rt::StartArgs) -> i32 {
    let Some(names) = libipc::names::Client::from_start_args(&args) else {
        libipc::println!("name_test: no name service port: start it from bootstrap");
        return 1;
    };
    if args.arg1 == 1 {
        server::run(names)
    } else {
        cases::run(names)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
