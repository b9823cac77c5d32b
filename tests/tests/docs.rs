//! The documentation a server or pager author reads builds without a warning: `libipc`'s
//! with its runtime, for the kernel's target (as the README's doc command builds it, with
//! the pager guide and the collocation API), every broken or private link an error.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn libipc_docs_build_without_warnings() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf();
    let output = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "doc",
            "-p",
            "libipc",
            "--features",
            "runtime",
            "--target",
            "x86_64-unknown-none",
            "--no-deps",
        ])
        .env("RUSTDOCFLAGS", "-D warnings")
        // A directory of its own: the tests' build is not disturbed, nor waited for.
        .env("CARGO_TARGET_DIR", root.join("target").join("doc-check"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo doc -p libipc failed or warned:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
