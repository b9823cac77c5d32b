//! Pagers' messages to the kernel decoded: `memory_control` calls on an object's control
//! port and the answers to the kernel's own requests, checked against the little state they
//! need (the object's size and cluster, the request being answered) and nothing else, so the
//! check is a pure function (the decode half of the kernel receivers in `kern::memory::pager`).

use crate::ipc::request::{Incoming, Request};
use crate::vm::map::PAGE_SIZE;
use core::ops::Range;
use libipc::abi::body::status;
use libipc::pager::{ids, returned_tag, supply_tag, Attributes, ControlError, PagerError};

pub use crate::ipc::request::ReplyKind;

/// What decoding a `memory_control` call reads of its object (`None` in its place: the
/// object no longer has a pager).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlView {
    /// Its cluster, in bytes.
    pub cluster: u64,
    /// Its size, in bytes, rounded up to whole pages.
    pub size: u64,
}

/// A `memory_control` call checked in full: its ranges are page-aligned, inside the object
/// and inside one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlCall {
    /// `data_supply` of the message's region at `offset`.
    Supply { offset: u64 },
    /// `lock_request`.
    Lock {
        range: Range<u64>,
        clean: bool,
        flush: bool,
    },
    /// `data_unavailable`: zeros.
    Unavailable { range: Range<u64> },
    /// `data_error` with the pager's code.
    Error { range: Range<u64>, code: u32 },
    /// `set_attributes` with a valid cluster size.
    SetAttributes { cluster_pages: u32 },
    /// `statistics`: the object's figures.
    Statistics,
}

/// Decodes a `memory_control` call for an object seen as `view`; changes nothing.
pub fn decode_control(
    view: Option<ControlView>,
    request: &Request<'_>,
) -> Result<ControlCall, ControlError> {
    let ControlView { cluster, size } = view.ok_or(ControlError::Terminated)?;
    let mut incoming = Incoming::new(request.body, request.complex).ok_or(ControlError::BadSize)?;
    // A range: page-aligned, inside the object, inside one cluster.
    let check = |offset: u64, length: u64| {
        if !offset.is_multiple_of(PAGE_SIZE) || offset >= size {
            return Err(ControlError::BadOffset);
        }
        let end = offset.checked_add(length).ok_or(ControlError::BadSize)?;
        if length == 0
            || !length.is_multiple_of(PAGE_SIZE)
            || end > size
            || cluster == 0
            || offset / cluster != (end - 1) / cluster
        {
            return Err(ControlError::BadSize);
        }
        Ok(offset..end)
    };
    let range = |incoming: &mut Incoming<'_>| incoming.take::<u64>().zip(incoming.take::<u64>());
    match request.id {
        ids::DATA_SUPPLY => {
            let offset = incoming.take::<u64>().ok_or(ControlError::BadSize)?;
            let size = request.memory.ok_or(ControlError::BadSize)?;
            check(offset, size).map(|_| ControlCall::Supply { offset })
        }
        ids::LOCK_REQUEST => {
            let (offset, length) = range(&mut incoming).ok_or(ControlError::BadSize)?;
            let (clean, flush) = incoming
                .take::<bool>()
                .zip(incoming.take::<bool>())
                .ok_or(ControlError::BadSize)?;
            Ok(ControlCall::Lock {
                range: check(offset, length)?,
                clean,
                flush,
            })
        }
        ids::DATA_UNAVAILABLE => {
            let (offset, length) = range(&mut incoming).ok_or(ControlError::BadSize)?;
            Ok(ControlCall::Unavailable {
                range: check(offset, length)?,
            })
        }
        ids::DATA_ERROR => {
            let (offset, length) = range(&mut incoming).ok_or(ControlError::BadSize)?;
            let code = incoming.take::<u32>().ok_or(ControlError::BadSize)?;
            Ok(ControlCall::Error {
                range: check(offset, length)?,
                code,
            })
        }
        ids::SET_ATTRIBUTES => match incoming.take::<Attributes>() {
            Some(a) if a.is_valid() => Ok(ControlCall::SetAttributes {
                cluster_pages: a.cluster_pages,
            }),
            _ => Err(ControlError::BadAttributes),
        },
        ids::STATISTICS => Ok(ControlCall::Statistics),
        _ => Err(ControlError::BadSize),
    }
}

/// What decoding a pager's answer reads: whether the object still has its pager, and the
/// range of the request the answer is for (the data request or return at the answer's
/// offset; `None` when nothing is pending there, and always for `init`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerView {
    pub linked: bool,
    pub pending: Option<Range<u64>>,
}

/// A pager's answer, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerCall {
    Init(InitAnswer),
    Data(DataAnswer),
    Return(ReturnAnswer),
}

/// The answer to `init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitAnswer {
    /// Ready, with clusters of this many pages.
    Ready { cluster_pages: u32 },
    /// Ready, but with a cluster size the kernel does not take (the default is used).
    BadCluster { asked: u32 },
    /// Refused, with this status: the object gives memory errors.
    Refused { status: u8 },
}

/// The answer to a `data_request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataAnswer {
    /// The message's region holds the pages: whole pages, at most what was asked.
    Supply,
    /// A supply whose region is missing, empty, not whole pages or larger than the request.
    BadSupply,
    /// Unavailable: zeros.
    Zeros,
    /// An answer with an unknown tag.
    BadTag,
    /// An error (the pager's own, if it said which).
    Error(Option<PagerError>),
}

/// The answer to a `data_return`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnAnswer {
    /// The pages are safe with the pager.
    Stored,
    /// Refused, the pages given back in the message's region (all of them).
    Refused,
    /// Refused without giving back all the pages.
    RefusedWithoutPages,
    /// An error, or an answer that makes no sense.
    Failed,
}

/// Why a pager's answer is not acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerRefusal {
    /// Its body cannot be read: the request it answers fails.
    Malformed,
    /// Nothing is pending at its offset (answered twice, or never asked).
    Unexpected,
    /// The object no longer has its pager.
    Unlinked,
}

/// Decodes a pager's answer to the kernel's request of `kind`, seen as `view`; changes
/// nothing.
pub fn decode_answer(
    kind: ReplyKind,
    view: &AnswerView,
    request: &Request<'_>,
) -> Result<AnswerCall, AnswerRefusal> {
    let incoming = Incoming::new(request.body, request.complex);
    match kind {
        ReplyKind::Init => {
            let mut incoming = incoming.ok_or(AnswerRefusal::Malformed)?;
            let status = incoming.take::<u8>();
            let attributes = match status {
                Some(status::OK) => incoming.take::<Attributes>(),
                _ => None,
            };
            if !view.linked {
                return Err(AnswerRefusal::Unlinked);
            }
            Ok(AnswerCall::Init(match attributes {
                Some(a) if a.is_valid() => InitAnswer::Ready {
                    cluster_pages: a.cluster_pages,
                },
                Some(a) => InitAnswer::BadCluster {
                    asked: a.cluster_pages,
                },
                None => InitAnswer::Refused {
                    status: status.unwrap_or(u8::MAX),
                },
            }))
        }
        ReplyKind::Data => {
            let mut incoming = incoming.ok_or(AnswerRefusal::Malformed)?;
            if !view.linked {
                return Err(AnswerRefusal::Unlinked);
            }
            let asked = view.pending.as_ref().ok_or(AnswerRefusal::Unexpected)?;
            let answer = match incoming.take::<u8>() {
                Some(status::OK) => match incoming.take::<u8>() {
                    Some(supply_tag::DATA) => match request.memory {
                        Some(size)
                            if size != 0
                                && size.is_multiple_of(PAGE_SIZE)
                                && size <= asked.end - asked.start =>
                        {
                            DataAnswer::Supply
                        }
                        _ => DataAnswer::BadSupply,
                    },
                    Some(supply_tag::UNAVAILABLE) => DataAnswer::Zeros,
                    _ => DataAnswer::BadTag,
                },
                _ => DataAnswer::Error(incoming.take::<PagerError>()),
            };
            Ok(AnswerCall::Data(answer))
        }
        ReplyKind::Return => {
            if !view.linked {
                return Err(AnswerRefusal::Unlinked);
            }
            let returned = view.pending.as_ref().ok_or(AnswerRefusal::Unexpected)?;
            let tag = incoming.and_then(|mut incoming| match incoming.take::<u8>()? {
                status::OK => incoming.take::<u8>(),
                _ => None,
            });
            Ok(AnswerCall::Return(match tag {
                Some(returned_tag::STORED) => ReturnAnswer::Stored,
                Some(returned_tag::REFUSED)
                    if request.memory == Some(returned.end - returned.start) =>
                {
                    ReturnAnswer::Refused
                }
                Some(returned_tag::REFUSED) => ReturnAnswer::RefusedWithoutPages,
                _ => ReturnAnswer::Failed,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::request::tests::{body_of, request};

    const PAGE: u64 = PAGE_SIZE;

    /// An object of 64 pages in clusters of 4.
    const OBJECT: Option<ControlView> = Some(ControlView {
        cluster: 4 * PAGE,
        size: 64 * PAGE,
    });

    fn control(id: u32, body: &[u8], memory: Option<u64>) -> Result<ControlCall, ControlError> {
        decode_control(OBJECT, &request(id, body, memory))
    }

    #[test]
    fn a_supply_is_whole_pages_inside_one_cluster_of_the_object() {
        let at = |offset: u64| body_of(&offset);
        assert_eq!(
            control(ids::DATA_SUPPLY, &at(4 * PAGE), Some(4 * PAGE)),
            Ok(ControlCall::Supply { offset: 4 * PAGE })
        );
        assert_eq!(
            control(ids::DATA_SUPPLY, &at(100), Some(PAGE)),
            Err(ControlError::BadOffset)
        );
        assert_eq!(
            control(ids::DATA_SUPPLY, &at(64 * PAGE), Some(PAGE)),
            Err(ControlError::BadOffset)
        );
        // Across a cluster boundary, not whole pages, empty, past the end, no region.
        for (offset, size) in [
            (3 * PAGE, 2 * PAGE),
            (0, 100),
            (0, 0),
            (63 * PAGE, 2 * PAGE),
        ] {
            assert_eq!(
                control(ids::DATA_SUPPLY, &at(offset), Some(size)),
                Err(ControlError::BadSize),
                "{offset:#x} + {size:#x}"
            );
        }
        assert_eq!(
            control(ids::DATA_SUPPLY, &at(0), None),
            Err(ControlError::BadSize)
        );
    }

    #[test]
    fn ranges_are_checked_for_every_call_and_an_overflow_is_refused() {
        assert_eq!(
            control(
                ids::LOCK_REQUEST,
                &body_of(&(0u64, PAGE, true, false)),
                None
            ),
            Ok(ControlCall::Lock {
                range: 0..PAGE,
                clean: true,
                flush: false
            })
        );
        assert_eq!(
            control(ids::DATA_UNAVAILABLE, &body_of(&(8 * PAGE, 4 * PAGE)), None),
            Ok(ControlCall::Unavailable {
                range: 8 * PAGE..12 * PAGE
            })
        );
        assert_eq!(
            control(ids::DATA_ERROR, &body_of(&(PAGE, PAGE, 5u32)), None),
            Ok(ControlCall::Error {
                range: PAGE..2 * PAGE,
                code: 5
            })
        );
        assert_eq!(
            control(ids::DATA_UNAVAILABLE, &body_of(&(PAGE, u64::MAX)), None),
            Err(ControlError::BadSize)
        );
        // A lock without its flags, an error without its code.
        assert_eq!(
            control(ids::LOCK_REQUEST, &body_of(&(0u64, PAGE)), None),
            Err(ControlError::BadSize)
        );
        assert_eq!(
            control(ids::DATA_ERROR, &body_of(&(0u64, PAGE)), None),
            Err(ControlError::BadSize)
        );
    }

    #[test]
    fn attributes_unknown_calls_and_terminated_objects() {
        let attributes = |cluster_pages| body_of(&Attributes { cluster_pages });
        assert_eq!(
            control(ids::SET_ATTRIBUTES, &attributes(8), None),
            Ok(ControlCall::SetAttributes { cluster_pages: 8 })
        );
        assert_eq!(
            control(ids::SET_ATTRIBUTES, &attributes(3), None),
            Err(ControlError::BadAttributes)
        );
        assert_eq!(
            control(4242, &body_of(&0u64), None),
            Err(ControlError::BadSize)
        );
        assert_eq!(
            control(ids::DATA_SUPPLY, &[1, 2, 3], Some(PAGE)),
            Err(ControlError::BadSize)
        );
        assert_eq!(
            decode_control(
                None,
                &request(ids::DATA_SUPPLY, &body_of(&0u64), Some(PAGE))
            ),
            Err(ControlError::Terminated)
        );
    }

    fn pending(range: Range<u64>) -> AnswerView {
        AnswerView {
            linked: true,
            pending: Some(range),
        }
    }

    fn answer(
        kind: ReplyKind,
        view: &AnswerView,
        body: &[u8],
        memory: Option<u64>,
    ) -> Result<AnswerCall, AnswerRefusal> {
        decode_answer(kind, view, &request(0, body, memory))
    }

    #[test]
    fn a_data_answer_supplies_at_most_what_was_asked() {
        let view = pending(0..4 * PAGE);
        let data = body_of(&(status::OK, supply_tag::DATA));
        let decoded = |memory| answer(ReplyKind::Data, &view, &data, memory);
        assert_eq!(
            decoded(Some(4 * PAGE)),
            Ok(AnswerCall::Data(DataAnswer::Supply))
        );
        assert_eq!(
            decoded(Some(PAGE)),
            Ok(AnswerCall::Data(DataAnswer::Supply))
        );
        for memory in [None, Some(0), Some(100), Some(5 * PAGE)] {
            assert_eq!(
                decoded(memory),
                Ok(AnswerCall::Data(DataAnswer::BadSupply)),
                "{memory:?}"
            );
        }
        let zeros = body_of(&(status::OK, supply_tag::UNAVAILABLE));
        assert_eq!(
            answer(ReplyKind::Data, &view, &zeros, None),
            Ok(AnswerCall::Data(DataAnswer::Zeros))
        );
        let unknown = body_of(&(status::OK, 7u8));
        assert_eq!(
            answer(ReplyKind::Data, &view, &unknown, None),
            Ok(AnswerCall::Data(DataAnswer::BadTag))
        );
        let error = body_of(&(status::ERROR, PagerError::OutOfRange));
        assert_eq!(
            answer(ReplyKind::Data, &view, &error, None),
            Ok(AnswerCall::Data(DataAnswer::Error(Some(
                PagerError::OutOfRange
            ))))
        );
    }

    #[test]
    fn answers_nobody_waits_for_are_refused() {
        let data = body_of(&(status::OK, supply_tag::UNAVAILABLE));
        let nothing = AnswerView {
            linked: true,
            pending: None,
        };
        assert_eq!(
            answer(ReplyKind::Data, &nothing, &data, None),
            Err(AnswerRefusal::Unexpected)
        );
        let unlinked = AnswerView {
            linked: false,
            pending: None,
        };
        for kind in [ReplyKind::Init, ReplyKind::Data, ReplyKind::Return] {
            assert_eq!(
                answer(kind, &unlinked, &data, None),
                Err(AnswerRefusal::Unlinked)
            );
        }
        // An unreadable answer to a request fails the request.
        assert_eq!(
            answer(ReplyKind::Data, &pending(0..PAGE), &[9, 9], None),
            Err(AnswerRefusal::Malformed)
        );
        assert_eq!(
            answer(ReplyKind::Init, &nothing, &[], None),
            Err(AnswerRefusal::Malformed)
        );
    }

    #[test]
    fn an_init_answer_sets_the_cluster_or_refuses() {
        let view = AnswerView {
            linked: true,
            pending: None,
        };
        let ready = |cluster_pages| body_of(&(status::OK, Attributes { cluster_pages }));
        assert_eq!(
            answer(ReplyKind::Init, &view, &ready(8), None),
            Ok(AnswerCall::Init(InitAnswer::Ready { cluster_pages: 8 }))
        );
        assert_eq!(
            answer(ReplyKind::Init, &view, &ready(6), None),
            Ok(AnswerCall::Init(InitAnswer::BadCluster { asked: 6 }))
        );
        assert_eq!(
            answer(ReplyKind::Init, &view, &body_of(&status::ERROR), None),
            Ok(AnswerCall::Init(InitAnswer::Refused {
                status: status::ERROR
            }))
        );
    }

    #[test]
    fn a_refused_return_must_give_every_page_back() {
        let view = pending(4 * PAGE..8 * PAGE);
        let refused = body_of(&(status::OK, returned_tag::REFUSED));
        let decoded = |body: &[u8], memory| answer(ReplyKind::Return, &view, body, memory);
        assert_eq!(
            decoded(&refused, Some(4 * PAGE)),
            Ok(AnswerCall::Return(ReturnAnswer::Refused))
        );
        assert_eq!(
            decoded(&refused, Some(2 * PAGE)),
            Ok(AnswerCall::Return(ReturnAnswer::RefusedWithoutPages))
        );
        assert_eq!(
            decoded(&refused, None),
            Ok(AnswerCall::Return(ReturnAnswer::RefusedWithoutPages))
        );
        assert_eq!(
            decoded(&body_of(&(status::OK, returned_tag::STORED)), None),
            Ok(AnswerCall::Return(ReturnAnswer::Stored))
        );
        let nonsense: [&[u8]; 3] = [&[], &[1, 0, 1], &body_of(&(status::OK, 9u8))];
        for body in nonsense {
            assert_eq!(
                decoded(body, None),
                Ok(AnswerCall::Return(ReturnAnswer::Failed))
            );
        }
    }
}
