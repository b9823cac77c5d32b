//! Build script shared by every user program (`build = "../build.rs"`): links the program with
//! `servers/user.ld`, non-PIE, when building for the bare target; on the host it does nothing.

use std::path::PathBuf;

/// `pub`: `servers/bootstrap/build.rs` runs it too, before its own work.
pub fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let script = manifest_dir.join("../user.ld");
    let script = script.canonicalize().unwrap_or_else(|error| {
        panic!(
            "user program linker script {} not found ({error}): user programs live in \
             servers/<name>/",
            script.display()
        )
    });
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=0x1000");
    }
}
