//! The template pager (`servers/template_pager`, the crate `cargo image new-pager` copies)
//! and its client, `template_pager_test`, run as the first task: computed pages, written
//! pages kept by the pager across a sync and a new mapping (the kit's write path) and across
//! an unmapping alone (the kernel's write-back at termination), one
//! object per name, bad names refused.

use kernel_tests::boot;

#[test]
fn template_pager_passes_its_own_test() {
    let run = boot(
        "template_pager_passes_its_own_test",
        "init=template_pager_test",
    );
    run.expect_exactly(&[
        "template_pager_unwritten_pages_hold_computed_words",
        "template_pager_written_pages_come_back_after_sync_and_a_new_mapping",
        "template_pager_each_name_is_its_own_object",
        "template_pager_written_pages_come_back_after_unmapping_alone",
        "template_pager_bad_names_are_refused",
    ]);
}
