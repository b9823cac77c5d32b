//! NONAIM's Linux job program run for real on the host (a Linux machine, as the guest is):
//! every job of the mix passes with its checks, a bad argument is refused, and exec_test's
//! target exits with the status the job expects. The guest's figures are only comparable if
//! these jobs do the same work; this test is what catches a Linux job that fails or does
//! nothing.

use std::process::Command;

use linux_workloads::job_status;
use nonaim::mix::{exit_status_for, JobArgument, Verdict, ALL};

const PROGRAM: &str = env!("CARGO_BIN_EXE_linux-workloads");

/// A directory holding file_test's pattern file, as the initramfs's root does.
/// `test` names it (the tests run in parallel).
fn data_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nonaim-data-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes: Vec<u8> = (0..nonaim::DATA_FILE_BYTES)
        .map(libipc::abi::archive::pattern_byte)
        .collect();
    std::fs::write(dir.join(nonaim::DATA_FILE), bytes).unwrap();
    dir
}

fn run_job(word: &str, dir: &std::path::Path) -> (i32, String) {
    let output = Command::new(PROGRAM)
        .args(["nonaim-job", word])
        .env("NONAIM_DATA_DIR", dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code().expect("the job exited"), text)
}

#[test]
fn every_job_passes_on_linux() {
    let dir = data_dir("jobs");
    for job in ALL {
        for seed in [1, 77_777] {
            let word = JobArgument {
                job,
                seed,
                measure: true,
                files: 0,
            }
            .encode();
            let (status, text) = run_job(&word.to_string(), &dir);
            assert_eq!(
                job_status::decode(status).map(|(verdict, _)| verdict),
                Some(Verdict::Passed),
                "{job} (seed {seed}) exited with {status}: {text}"
            );
            assert!(
                text.contains(&format!("bench nonaim.work.{job} ")),
                "{job} printed no work figure: {text}"
            );
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_wrong_file_is_caught_and_a_bad_argument_refused() {
    let dir = data_dir("wrong");
    let path = dir.join(nonaim::DATA_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    for byte in bytes.iter_mut() {
        *byte ^= 0x40;
    }
    std::fs::write(&path, bytes).unwrap();
    let word = JobArgument {
        job: nonaim::mix::Job::FileTest,
        seed: 5,
        measure: false,
        files: 0,
    }
    .encode();
    let (status, text) = run_job(&word.to_string(), &dir);
    assert_eq!(
        job_status::decode(status),
        Some((Verdict::Wrong, 0)),
        "{text}"
    );
    let (status, _) = run_job("31", &dir);
    assert_eq!(job_status::decode(status), Some((Verdict::BadArgument, 0)));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_exec_target_exits_with_the_status_its_argument_gives() {
    let argument = 12_345u64;
    let status = Command::new(PROGRAM)
        .args(["nonaim-exit", &argument.to_string()])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(exit_status_for(argument)));
}
