//! A NONAIM job's exit status on Linux. The guest's job program exits with its verdict in the
//! low byte and the forks it retried above (`nonaim::mix::Verdict::status`); a Linux exit
//! status has 8 bits, so here the verdict takes the low 3 and the retries the high 5
//! (at most [`MAX_RETRIES`] counted).

use nonaim::mix::Verdict;

/// Most retries a Linux job status carries (more are counted as this many).
pub const MAX_RETRIES: u32 = 31;

/// The exit status of a job that ended with `verdict`, having retried `retries` forks.
pub fn encode(verdict: Verdict, retries: u32) -> i32 {
    (verdict as i32) | (retries.min(MAX_RETRIES) as i32) << 3
}

/// The verdict and retries of an exit status (`WEXITSTATUS`); `None` for a status no job
/// exits with (a panic's 101, say).
pub fn decode(status: i32) -> Option<(Verdict, u32)> {
    let verdict = match status & 0x7 {
        0 => Verdict::Passed,
        1 => Verdict::Wrong,
        2 => Verdict::BadArgument,
        3 => Verdict::NoResources,
        4 => Verdict::ExecFailed,
        _ => return None,
    };
    if !(0..=0xff).contains(&status) {
        return None;
    }
    Some((verdict, (status >> 3) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_retries_round_trip_in_a_byte() {
        for verdict in [
            Verdict::Passed,
            Verdict::Wrong,
            Verdict::BadArgument,
            Verdict::NoResources,
            Verdict::ExecFailed,
        ] {
            for retries in [0, 1, 30, 31] {
                let status = encode(verdict, retries);
                assert!((0..=255).contains(&status));
                assert_eq!(decode(status), Some((verdict, retries)));
            }
            assert_eq!(decode(encode(verdict, 1000)), Some((verdict, MAX_RETRIES)));
        }
        // A panic's 101 (verdict bits 5) and out-of-range values are no job's.
        assert_eq!(decode(101), None);
        assert_eq!(decode(-1), None);
        assert_eq!(decode(256), None);
        assert_eq!(encode(Verdict::Passed, 0), 0);
    }
}
