//! Build script shared by every user program (`build = "../build.rs"`): links the program with
//! `servers/user.ld`, non-PIE, when building for the bare target; on the host it does nothing.

use std::path::PathBuf;

/// `pub`: `servers/bootstrap/build.rs` runs it too, before its own work.
pub fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    // Programs live in servers/<name>/; the fuzzer, a test program, in tests/fuzz/.
    let script = [
        manifest_dir.join("../user.ld"),
        manifest_dir.join("../../servers/user.ld"),
    ]
    .into_iter()
    .find(|script| script.is_file())
    .and_then(|script| script.canonicalize().ok())
    .unwrap_or_else(|| {
        panic!(
            "user program linker script servers/user.ld not found from {}: user programs \
             live in servers/<name>/ (or tests/<name>/)",
            manifest_dir.display()
        )
    });
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=0x1000");
    }
}
