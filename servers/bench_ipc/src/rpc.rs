//! The null RPC (`libipc::bench::workloads::NullRpcServer`): a raw `mach_msg` call to a copy
//! of this program serving as the server, timed on a quiet system.

use libipc::bench::measure::remark;
use libipc::bench::workloads::NullRpcServer;

use crate::{figure, role, Failure, PROGRAM};

const WARM_UP_CALLS: usize = 1_000;
const TIMED_CALLS: usize = 10_000;

/// Starts the server, times the calls, prints the figure, stops the server.
pub fn bench() -> Result<(), Failure> {
    let server = NullRpcServer::start(PROGRAM, role::SERVER)?;
    let timed = server.time_calls(WARM_UP_CALLS, TIMED_CALLS);
    let stopped = server.stop();
    let summary = timed?;
    remark("bench_ipc", "null_rpc_round_trip", TIMED_CALLS, &summary);
    figure!("ipc.null_rpc_round_trip", summary.median, "instructions");
    stopped
}
