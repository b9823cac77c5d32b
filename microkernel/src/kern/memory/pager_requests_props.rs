//! Property tests of the decoding of pagers' messages (any task can be a pager): any body,
//! id, object and region decode without a panic; every `memory_control` call decoded has a
//! range that is page-aligned, non-empty, inside the object and inside one cluster, and is
//! accepted exactly when it has; every answer decoded keeps to what was asked.

use core::ops::Range;

use proptest::prelude::*;

use super::pager_requests::{
    decode_answer, decode_control, AnswerCall, AnswerRefusal, AnswerView, ControlCall, ControlView,
    DataAnswer, ReplyKind, ReturnAnswer,
};
use crate::ipc::request::tests::body_of;
use crate::ipc::request::Request;
use crate::vm::map::PAGE_SIZE;
use libipc::abi::body::status;
use libipc::pager::{ids, returned_tag, supply_tag, Attributes, ControlError};
use libipc::props::config;

const PAGE: u64 = PAGE_SIZE;
/// The last page of the address space.
const TOP_PAGE: u64 = !(PAGE - 1);

/// An object as the kernel sees one: a cluster of 1 to 16 pages (0 never happens, but must
/// not divide by zero), a size in whole pages.
fn view() -> impl Strategy<Value = Option<ControlView>> {
    let cluster = prop_oneof![
        8 => (0u32..5).prop_map(|shift| (1u64 << shift) * PAGE),
        1 => Just(0u64),
    ];
    let size = prop_oneof![(0u64..80).prop_map(|p| p * PAGE), Just(TOP_PAGE)];
    prop_oneof![
        8 => (cluster, size).prop_map(|(cluster, size)| Some(ControlView { cluster, size })),
        1 => Just(None),
    ]
}

/// Offsets and lengths on the edges of the checks.
fn position() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u64..80).prop_map(|p| p * PAGE),
        (0u64..80 * PAGE),
        any::<u64>(),
        (0u64..4).prop_map(|k| u64::MAX - k * PAGE),
        (0u64..4).prop_map(|k| TOP_PAGE - k * PAGE),
    ]
}

/// Whether `[offset, offset + length)` is a range `memory_control` takes for `view`.
fn range_ok(view: &ControlView, offset: u64, length: u64) -> bool {
    let Some(end) = offset.checked_add(length) else {
        return false;
    };
    offset.is_multiple_of(PAGE)
        && length.is_multiple_of(PAGE)
        && length != 0
        && end <= view.size
        && view.cluster != 0
        && offset / view.cluster == (end - 1) / view.cluster
}

/// Checks that a range decoded for `view` keeps the rules.
fn check_range(view: &ControlView, range: &Range<u64>) -> Result<(), TestCaseError> {
    prop_assert!(range.start < range.end, "{:?} is empty", range);
    prop_assert!(
        range_ok(view, range.start, range.end - range.start),
        "{:?} for {:?}",
        range,
        view
    );
    Ok(())
}

/// Bodies: any bytes (half of them with a length prefix that fits), or well-formed values of
/// the calls' shapes.
fn control_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (proptest::collection::vec(any::<u8>(), 0..48), any::<bool>()).prop_map(|(mut b, fix)| {
            if fix && b.len() >= 2 {
                let length = (b.len() - 2) as u16;
                b[..2].copy_from_slice(&length.to_le_bytes());
            }
            b
        }),
        position().prop_map(|offset| body_of(&offset)),
        (position(), position()).prop_map(|range| body_of(&range)),
        (position(), position(), any::<bool>(), any::<bool>()).prop_map(|v| body_of(&v)),
        (position(), position(), any::<u32>()).prop_map(|v| body_of(&v)),
        any::<u32>().prop_map(|cluster_pages| body_of(&Attributes { cluster_pages })),
    ]
}

/// Answer bodies: any bytes, or a status and a tag or attributes.
fn answer_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..24),
        (0u8..6, 0u8..4).prop_map(|v| body_of(&v)),
        (0u8..3, any::<u32>())
            .prop_map(|(s, cluster_pages)| body_of(&(s, Attributes { cluster_pages }))),
        any::<u8>().prop_map(|s| body_of(&s)),
    ]
}

/// A request the kernel is waiting on: none, or whole pages of one cluster.
fn answer_view() -> impl Strategy<Value = AnswerView> {
    (
        prop_oneof![4 => Just(true), 1 => Just(false)],
        proptest::option::of((0u64..64, 1u64..16).prop_map(|(p, n)| p * PAGE..(p + n) * PAGE)),
    )
        .prop_map(|(linked, pending)| AnswerView { linked, pending })
}

fn control_id() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => proptest::sample::select(vec![
            ids::DATA_SUPPLY,
            ids::LOCK_REQUEST,
            ids::DATA_UNAVAILABLE,
            ids::DATA_ERROR,
            ids::SET_ATTRIBUTES,
            ids::STATISTICS,
        ]),
        1 => any::<u32>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_control_call_decodes_to_a_range_inside_one_cluster_of_the_object_or_a_refusal(
        view in view(),
        id in control_id(),
        body in control_body(),
        complex in any::<bool>(),
        memory in proptest::option::of(position()),
    ) {
        let request = Request {
            id,
            complex,
            body: &body,
            memory,
            reply: false,
        };
        let decoded = decode_control(view, &request);
        let Some(view) = view else {
            prop_assert_eq!(decoded, Err(ControlError::Terminated));
            return Ok(());
        };
        match decoded {
            Ok(ControlCall::Supply { offset }) => {
                prop_assert_eq!(id, ids::DATA_SUPPLY);
                let size = memory.expect("a supply carries its region");
                check_range(&view, &(offset..offset + size))?;
            }
            Ok(ControlCall::Lock { range, .. }) => {
                prop_assert_eq!(id, ids::LOCK_REQUEST);
                check_range(&view, &range)?;
            }
            Ok(ControlCall::Unavailable { range }) => {
                prop_assert_eq!(id, ids::DATA_UNAVAILABLE);
                check_range(&view, &range)?;
            }
            Ok(ControlCall::Error { range, .. }) => {
                prop_assert_eq!(id, ids::DATA_ERROR);
                check_range(&view, &range)?;
            }
            Ok(ControlCall::SetAttributes { cluster_pages }) => {
                prop_assert_eq!(id, ids::SET_ATTRIBUTES);
                let attributes = Attributes { cluster_pages };
                prop_assert!(attributes.is_valid());
            }
            // Changes nothing, whatever its body.
            Ok(ControlCall::Statistics) => prop_assert_eq!(id, ids::STATISTICS),
            Err(_) => {}
        }
    }

    #[test]
    fn a_control_range_is_accepted_exactly_when_it_keeps_the_rules(
        view in view(),
        offset in position(),
        length in position(),
        call in 0usize..4,
        code in any::<u32>(),
    ) {
        let (id, body, memory) = match call {
            0 => (ids::DATA_SUPPLY, body_of(&offset), Some(length)),
            1 => (
                ids::LOCK_REQUEST,
                body_of(&(offset, length, true, false)),
                None,
            ),
            2 => (ids::DATA_UNAVAILABLE, body_of(&(offset, length)), None),
            _ => (ids::DATA_ERROR, body_of(&(offset, length, code)), None),
        };
        let request = Request {
            id,
            complex: false,
            body: &body,
            memory,
            reply: false,
        };
        let decoded = decode_control(view, &request);
        let Some(view) = view else {
            prop_assert_eq!(decoded, Err(ControlError::Terminated));
            return Ok(());
        };
        if !range_ok(&view, offset, length) {
            prop_assert!(
                matches!(
                    decoded,
                    Err(ControlError::BadOffset | ControlError::BadSize)
                ),
                "{:?}",
                decoded
            );
            return Ok(());
        }
        let range = offset..offset + length;
        let expected = match call {
            0 => ControlCall::Supply { offset },
            1 => ControlCall::Lock {
                range,
                clean: true,
                flush: false,
            },
            2 => ControlCall::Unavailable { range },
            _ => ControlCall::Error { range, code },
        };
        prop_assert_eq!(decoded, Ok(expected));
    }

    #[test]
    fn any_answer_decodes_within_what_was_asked_or_is_refused(
        kind in proptest::sample::select(vec![
            ReplyKind::Init,
            ReplyKind::Data,
            ReplyKind::Return
        ]),
        view in answer_view(),
        body in answer_body(),
        complex in any::<bool>(),
        memory in proptest::option::of(position()),
    ) {
        let request = Request {
            id: 0,
            complex,
            body: &body,
            memory,
            reply: false,
        };
        match decode_answer(kind, &view, &request) {
            Ok(AnswerCall::Init(_)) => {
                prop_assert_eq!(kind, ReplyKind::Init);
                prop_assert!(view.linked);
            }
            Ok(AnswerCall::Data(answer)) => {
                prop_assert_eq!(kind, ReplyKind::Data);
                prop_assert!(view.linked);
                let asked = view
                    .pending
                    .clone()
                    .expect("an answer to a pending request");
                if answer == DataAnswer::Supply {
                    let size = memory.expect("a supply carries its region");
                    prop_assert!(
                        size != 0 && size.is_multiple_of(PAGE) && size <= asked.end - asked.start
                    );
                }
            }
            Ok(AnswerCall::Return(answer)) => {
                prop_assert_eq!(kind, ReplyKind::Return);
                prop_assert!(view.linked);
                let returned = view.pending.clone().expect("an answer to a pending return");
                if answer == ReturnAnswer::Refused {
                    prop_assert_eq!(memory, Some(returned.end - returned.start));
                }
            }
            Err(AnswerRefusal::Unlinked) => prop_assert!(!view.linked),
            Err(AnswerRefusal::Unexpected) => {
                prop_assert!(view.pending.is_none() && kind != ReplyKind::Init)
            }
            Err(AnswerRefusal::Malformed) => prop_assert!(kind != ReplyKind::Return),
        }
    }

    #[test]
    fn a_data_supply_is_accepted_exactly_when_it_fits_what_was_asked(
        first in 0u64..64,
        pages in 1u64..16,
        size in prop_oneof![(0u64..20).prop_map(|p| p * PAGE), any::<u64>()],
        tag in prop_oneof![
            Just(supply_tag::DATA),
            Just(supply_tag::UNAVAILABLE),
            any::<u8>()
        ],
    ) {
        let view = AnswerView {
            linked: true,
            pending: Some(first * PAGE..(first + pages) * PAGE),
        };
        let body = body_of(&(status::OK, tag));
        let request = Request {
            id: 0,
            complex: false,
            body: &body,
            memory: Some(size),
            reply: false,
        };
        let expected = match tag {
            supply_tag::DATA if size != 0 && size.is_multiple_of(PAGE) && size <= pages * PAGE => {
                DataAnswer::Supply
            }
            supply_tag::DATA => DataAnswer::BadSupply,
            supply_tag::UNAVAILABLE => DataAnswer::Zeros,
            _ => DataAnswer::BadTag,
        };
        prop_assert_eq!(
            decode_answer(ReplyKind::Data, &view, &request),
            Ok(AnswerCall::Data(expected))
        );
        let returned = body_of(&(status::OK, returned_tag::REFUSED));
        let request = Request {
            id: 0,
            complex: false,
            body: &returned,
            memory: Some(size),
            reply: false,
        };
        let expected = if size == pages * PAGE {
            ReturnAnswer::Refused
        } else {
            ReturnAnswer::RefusedWithoutPages
        };
        prop_assert_eq!(
            decode_answer(ReplyKind::Return, &view, &request),
            Ok(AnswerCall::Return(expected))
        );
    }
}
