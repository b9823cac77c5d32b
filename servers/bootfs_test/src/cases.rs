//! The cases: programs loaded after the program pager was registered.

use alloc::format;
use alloc::string::String;
use libipc::abi::syscall::VmStatistics;
use libipc::ipc::Task;
use libipc::sys;

pub use libipc::rt::selftest::Case;

pub const ALL: &[(&str, Case)] = &[
    (
        "spawned_text_pages_in_through_the_pager",
        spawned_text_pages_in_through_the_pager,
    ),
    ("text_is_shared_between_tasks", text_is_shared_between_tasks),
    (
        "exec_maps_text_through_the_pager",
        exec_maps_text_through_the_pager,
    ),
];

macro_rules! check {
    ($cond:expr, $($why:tt)*) => {
        if !$cond {
            return Err(format!($($why)*));
        }
    };
}

fn statistics() -> Result<VmStatistics, String> {
    sys::vm_statistics().map_err(|e| format!("vm_statistics: {e}"))
}

fn run(program: &str, argument: u64) -> Result<u64, String> {
    let task = Task::spawn(program, None, argument).map_err(|e| format!("spawn {program}: {e}"))?;
    task.wait().map_err(|e| format!("wait {program}: {e}"))
}

fn spawned_text_pages_in_through_the_pager() -> Result<(), String> {
    let before = statistics()?;
    let status = run("hello", 0)?;
    check!(status == 0, "hello exited with {status}");
    let after = statistics()?;
    let requests = after.requests() - before.requests();
    let pages = after.requested_pages() - before.requested_pages();
    check!(requests > 0, "hello's text came in without a request");
    check!(
        after.pageins - before.pageins >= pages && pages > requests,
        "{requests} requests for {pages} pages, {} pages in: text is not paged in clusters",
        after.pageins - before.pageins
    );
    Ok(())
}

fn text_is_shared_between_tasks() -> Result<(), String> {
    // hello's text is resident from the case before: a second task maps the same pages.
    let before = statistics()?;
    let status = run("hello", 0)?;
    check!(status == 0, "hello exited with {status}");
    let after = statistics()?;
    check!(
        after.pageins == before.pageins,
        "{} pages paged in again for a second hello",
        after.pageins - before.pageins
    );
    Ok(())
}

fn exec_maps_text_through_the_pager() -> Result<(), String> {
    let before = statistics()?;
    // bench_vm with role 1 exits at once: a program not run before, exec'd by a fork.
    let status = match sys::task_fork().map_err(|e| format!("fork: {e}"))? {
        sys::Forked::Child => {
            let error = sys::task_exec("bench_vm", 1);
            libipc::println!("bootfs_test: exec failed: {error}");
            sys::task_exit(2)
        }
        sys::Forked::Parent(task) => {
            let status = sys::task_wait(task).map_err(|e| format!("wait: {e}"));
            let _ = sys::port_deallocate(task);
            status?
        }
    };
    check!(status == 0, "the exec'd child exited with {status}");
    let after = statistics()?;
    check!(
        after.requests() > before.requests(),
        "exec'd text came in without a request"
    );
    Ok(())
}
