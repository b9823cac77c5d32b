//! The pager kit (`libipc::pager::kit`), tested from user space: `kit_test` runs as the first
//! task and starts `pattern_pager`, the pager guide's first example (under 60 lines with the
//! kit), opens its object through the standard `memory_object_server.open`, and maps it:
//! every byte right, 8.00 pages a request read front to back at clusters of 8, 1.00 at
//! random after unmapping and mapping again (a second `init` on the same port), the same
//! object from a second `open`, an unknown name refused; and deferred replies: a backing
//! that keeps the kernel's requests and answers them later; a clean stop that writes back
//! what a client wrote.

use kernel_tests::boot;

#[test]
fn a_pager_written_with_the_kit_serves_its_object() {
    let run = boot(
        "a_pager_written_with_the_kit_serves_its_object",
        "init=kit_test",
    );
    run.expect_exactly(&[
        "kit_sequential_reads_come_in_whole_clusters",
        "kit_random_reads_come_a_page_a_request_after_a_second_init",
        "kit_open_gives_the_same_object_again",
        "kit_an_unknown_name_is_refused",
        "kit_deferred_replies_answer_later",
        "kit_a_clean_stop_writes_back_what_a_client_wrote",
    ]);
}

/// The example stays the size the guide promises: at most 60 lines, its doc comment
/// included.
#[test]
fn the_guides_example_pager_is_at_most_sixty_lines() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../servers/pattern_pager/src/main.rs"
    );
    let lines = std::fs::read_to_string(path)
        .expect("the example")
        .lines()
        .count();
    assert!(
        lines <= 60,
        "servers/pattern_pager/src/main.rs has {lines} lines"
    );
}
