//! Boots the Limine ISO under SeaBIOS and OVMF. Limine's binaries come from no package
//! registry, so these tests are ignored by default; with a Limine 8.x binary release at hand:
//! `LIMINE_DIR=/path/to/limine cargo image test -- --ignored iso_`.

use std::time::Duration;

use kernel_tests::{boot_with, limine_iso, BootOptions, Media, Outcome};

fn boot_iso(name: &str, uefi: bool, timeout: Duration) {
    let Some(iso) = limine_iso() else {
        panic!("{name}: LIMINE_DIR is not set: it must name a Limine 8.x binary release");
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
#[ignore = "needs LIMINE_DIR, a Limine 8.x binary release"]
fn iso_boots_under_bios() {
    boot_iso("iso_boots_under_bios", false, kernel_tests::DEFAULT_TIMEOUT);
}

#[test]
#[ignore = "needs LIMINE_DIR, a Limine 8.x binary release"]
fn iso_boots_under_uefi() {
    boot_iso("iso_boots_under_uefi", true, Duration::from_secs(120));
}
