//! Build script: links the program as every user program is linked (`servers/build.rs`,
//! with `servers/user.ld`), though this crate lives at the workspace's top level.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let script = manifest_dir.join("../servers/user.ld");
    let script = script
        .canonicalize()
        .unwrap_or_else(|error| panic!("linker script {} not found ({error})", script.display()));
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=0x1000");
    }
}
