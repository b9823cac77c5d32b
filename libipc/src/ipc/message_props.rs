//! Property tests of the received-message parser and the message encoder: any bytes and
//! size, and mutations of encoded messages, parse to a refusal or to a message whose parts
//! lie inside what was received; encoded messages parse back to what was sent.

extern crate std;

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::message::{MessageError, Name, OutMessage, Received};
use crate::abi::message::{
    Disposition, MessageHeader, ReceivedRight, DESCRIPTOR_SIZE, HEADER_SIZE, MAX_DESCRIPTORS,
    MAX_MESSAGE_SIZE,
};
use crate::props::{config, mutate, mutations};

/// Any of the six dispositions.
fn disposition() -> impl Strategy<Value = Disposition> {
    (16u8..=21).prop_map(|raw| Disposition::from_raw(raw).expect("16..=21"))
}

/// The parts of a message to send: id, destination, reply, rights, regions, body.
#[derive(Clone, Debug)]
struct Parts {
    id: u32,
    destination: (Name, Disposition),
    reply: Option<(Name, Disposition)>,
    rights: Vec<(Name, Disposition)>,
    memory: Vec<(u64, u32, bool)>,
    body: Vec<u8>,
}

impl Parts {
    /// The message these parts make (`None` if the rights or regions are too many).
    fn message(&self) -> Option<OutMessage<'_>> {
        let mut message = OutMessage::new(self.id, self.destination.0)
            .to(self.destination.0, self.destination.1)
            .with_body(&self.body);
        if let Some((name, disposition)) = self.reply {
            message = message.with_reply(name, disposition);
        }
        message
            .with_rights(&self.rights)
            .ok()?
            .with_memory(&self.memory)
            .ok()
    }
}

fn parts(max_body: usize) -> impl Strategy<Value = Parts> {
    (
        any::<u32>(),
        (any::<Name>(), disposition()),
        proptest::option::of((any::<Name>(), disposition())),
        proptest::collection::vec((any::<Name>(), disposition()), 0..6),
        proptest::collection::vec((any::<u64>(), any::<u32>(), any::<bool>()), 0..4),
        proptest::collection::vec(any::<u8>(), 0..max_body),
    )
        .prop_map(|(id, destination, reply, rights, memory, body)| Parts {
            id,
            destination,
            reply,
            rights,
            memory,
            body,
        })
}

/// Checks that a parsed message lies inside the first `size` bytes of `buffer` and that its
/// descriptors are at most what the count allows.
fn check_parsed(buffer: &[u8], size: usize, received: &Received<'_>) -> Result<(), TestCaseError> {
    prop_assert!((HEADER_SIZE..=buffer.len()).contains(&size));
    prop_assert_eq!(
        received.header,
        MessageHeader::from_bytes(buffer[..HEADER_SIZE].try_into().expect("24 bytes"))
    );
    // The body is the tail of what was received.
    prop_assert!(received.body.len() <= size - HEADER_SIZE);
    prop_assert_eq!(received.body, &buffer[size - received.body.len()..size]);
    let carried = received.rights().count() + received.memory().count();
    if received.header.is_complex() {
        let count = u32::from_le_bytes(buffer[HEADER_SIZE..HEADER_SIZE + 4].try_into().unwrap());
        prop_assert!(count as usize <= MAX_DESCRIPTORS);
        prop_assert!(carried <= count as usize);
        prop_assert_eq!(
            received.body.len(),
            size - HEADER_SIZE - 4 - count as usize * DESCRIPTOR_SIZE
        );
    } else {
        prop_assert_eq!(carried, 0);
        prop_assert_eq!(received.body.len(), size - HEADER_SIZE);
    }
    if let Some((name, kind)) = received.reply() {
        prop_assert_eq!(name, received.header.remote_port);
        prop_assert_ne!(name, 0);
        prop_assert_eq!(kind as u8, received.header.remote_disposition());
    }
    for (_, kind) in received.rights() {
        prop_assert!(kind.is_none_or(|kind| (16..=18).contains(&(kind as u8))));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_and_size_parse_to_a_refusal_or_a_message_inside_them(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        size in 0usize..1500,
        whole in any::<bool>(),
    ) {
        // Half of the sizes are the whole buffer, as the kernel's received size is.
        let size = if whole { bytes.len() } else { size };
        match Received::parse(&bytes, size) {
            Ok(received) => check_parsed(&bytes, size, &received)?,
            Err(error) => prop_assert_eq!(error, MessageError::Malformed),
        }
    }

    #[test]
    fn complex_messages_with_any_count_parse_to_a_refusal_or_a_message_inside_them(
        header in any::<[u8; HEADER_SIZE]>(),
        count in prop_oneof![4 => 0u32..MAX_DESCRIPTORS as u32 + 4, 1 => any::<u32>()],
        descriptors in 0usize..MAX_DESCRIPTORS + 4,
        tail in proptest::collection::vec(any::<u8>(), 0..64),
        cut in 0usize..16,
    ) {
        // A complex header, a count, about that many descriptors (of any bytes), a body.
        let mut bytes = header.to_vec();
        bytes[3] |= 0x80;
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.resize(bytes.len() + descriptors * DESCRIPTOR_SIZE, 0x11);
        bytes.extend_from_slice(&tail);
        let size = bytes.len().saturating_sub(cut);
        match Received::parse(&bytes, size) {
            Ok(received) => check_parsed(&bytes, size, &received)?,
            Err(error) => prop_assert_eq!(error, MessageError::Malformed),
        }
    }

    #[test]
    fn encoded_messages_parse_back_to_what_was_sent(parts in parts(400)) {
        let Some(message) = parts.message() else {
            return Ok(());
        };
        let mut buffer = vec![0u8; MAX_MESSAGE_SIZE];
        let size = message.encode(&mut buffer).expect("fits");
        prop_assert_eq!(size, message.size());
        prop_assert_eq!(size % 4, 0);
        let received = Received::parse(&buffer, size).expect("a valid message");
        check_parsed(&buffer, size, &received)?;
        let header = received.header;
        prop_assert_eq!(header.id, parts.id);
        prop_assert_eq!(header.size as usize, size);
        prop_assert_eq!(
            (header.remote_port, header.remote_disposition()),
            (parts.destination.0, parts.destination.1 as u8)
        );
        prop_assert_eq!(header.local_port, parts.reply.map_or(0, |r| r.0));
        prop_assert_eq!(
            header.local_disposition(),
            parts.reply.map_or(0, |r| r.1 as u8)
        );
        prop_assert_eq!(
            header.is_complex(),
            !parts.rights.is_empty() || !parts.memory.is_empty()
        );
        // The sender's dispositions read as received kinds only where they coincide.
        let rights: Vec<_> = received.rights().collect();
        let expected: Vec<_> = parts
            .rights
            .iter()
            .map(|&(name, disposition)| {
                let kind = match disposition as u8 {
                    16 => Some(ReceivedRight::Receive),
                    17 => Some(ReceivedRight::Send),
                    18 => Some(ReceivedRight::SendOnce),
                    _ => None,
                };
                (name, kind)
            })
            .collect();
        prop_assert_eq!(rights, expected);
        let memory: Vec<_> = received.memory().collect();
        let sent: Vec<_> = parts.memory.iter().map(|&(a, s, _)| (a, s)).collect();
        prop_assert_eq!(memory, sent);
        prop_assert_eq!(&received.body[..parts.body.len()], &parts.body[..]);
        prop_assert!(received.body[parts.body.len()..].iter().all(|&b| b == 0));
        prop_assert!(received.body.len() - parts.body.len() < 4);
    }

    #[test]
    fn encoding_into_a_short_buffer_is_refused_not_cut(
        parts in parts(MAX_MESSAGE_SIZE + 64),
        room in 0usize..MAX_MESSAGE_SIZE + 64,
    ) {
        let Some(message) = parts.message() else {
            return Ok(());
        };
        let mut buffer = vec![0u8; room];
        match message.encode(&mut buffer) {
            Ok(size) => {
                prop_assert_eq!(size, message.size());
                prop_assert!(size <= room && size <= MAX_MESSAGE_SIZE);
            }
            Err(error) => {
                prop_assert_eq!(error, MessageError::TooLarge);
                prop_assert!(message.size() > room || message.size() > MAX_MESSAGE_SIZE);
            }
        }
    }

    #[test]
    fn mutated_messages_parse_to_a_refusal_or_a_message_inside_them(
        parts in parts(200),
        mutations in mutations(),
        size_change in -8isize..8,
    ) {
        let Some(message) = parts.message() else {
            return Ok(());
        };
        let mut buffer = vec![0u8; message.size()];
        let size = message.encode(&mut buffer).expect("fits");
        mutate(&mut buffer, &mutations);
        let size = size.saturating_add_signed(size_change);
        match Received::parse(&buffer, size) {
            Ok(received) => check_parsed(&buffer, size, &received)?,
            Err(error) => prop_assert_eq!(error, MessageError::Malformed),
        }
    }
}
