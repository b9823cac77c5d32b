//! Boots the Limine ISO under SeaBIOS and OVMF; skipped unless `LIMINE_DIR` names a release.

use std::time::Duration;

use kernel_tests::{boot_with, limine_iso, BootOptions, Media, Outcome};

fn boot_iso(name: &str, uefi: bool, timeout: Duration) {
    let Some(iso) = limine_iso() else {
        eprintln!("{name}: skipped: LIMINE_DIR is not set (see `cargo image iso --help`)");
        return;
    };
    let mut opts = BootOptions::direct(kernel_tests::kernel(), "");
    opts.media = Media::Iso { path: iso, uefi };
    opts.timeout = Some(timeout);
    let run = boot_with(name, &opts);
    run.expect_outcome(Outcome::Guest(0));
    match run.report.banner() {
        Some(banner) if banner.contains("(boot: limine)") => {}
        Some(banner) => run.fail(&format!(
            "the banner does not say `(boot: limine)`: {banner:?}"
        )),
        None => run.fail("no banner (a line starting with `microkernel v`)"),
    }
}

#[test]
fn iso_boots_under_bios() {
    boot_iso("iso_boots_under_bios", false, kernel_tests::DEFAULT_TIMEOUT);
}

#[test]
fn iso_boots_under_uefi() {
    boot_iso("iso_boots_under_uefi", true, Duration::from_secs(120));
}
