//! Property tests of the message ABI's decoders (header, descriptor, disposition, return
//! code, body length prefix, short messages in registers): any bytes decode without a panic
//! and valid encodings round-trip.

extern crate std;

use std::vec::Vec;

use proptest::prelude::*;

use super::body::{values, LENGTH_PREFIX};
use super::message::{
    registers, Descriptor, Disposition, MessageHeader, MsgReturn, DESCRIPTOR_SIZE, HEADER_SIZE,
};
use crate::ipc::message::Received;
use crate::props::config;

/// Any of the six dispositions.
fn disposition() -> impl Strategy<Value = Disposition> {
    (16u8..=21).prop_map(|raw| Disposition::from_raw(raw).expect("16..=21"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_header_bytes_decode_and_encode_back_unchanged(bytes in any::<[u8; HEADER_SIZE]>()) {
        let header = MessageHeader::from_bytes(&bytes);
        prop_assert_eq!(header.to_bytes(), bytes);
        prop_assert_eq!(header.remote_disposition(), bytes[0]);
        prop_assert_eq!(header.local_disposition(), bytes[1]);
        prop_assert_eq!(header.is_complex(), bytes[3] & 0x80 != 0);
    }

    #[test]
    fn header_bits_carry_both_dispositions_and_the_complex_flag(
        remote in disposition(),
        local in proptest::option::of(disposition()),
        complex in any::<bool>(),
        words in any::<[u32; 5]>(),
    ) {
        let header = MessageHeader {
            bits: MessageHeader::bits(remote, local, complex),
            size: words[0],
            remote_port: words[1],
            local_port: words[2],
            voucher: words[3],
            id: words[4],
        };
        let back = MessageHeader::from_bytes(&header.to_bytes());
        prop_assert_eq!(back, header);
        prop_assert_eq!(
            Disposition::from_raw(back.remote_disposition()),
            Some(remote)
        );
        prop_assert_eq!(Disposition::from_raw(back.local_disposition()), local);
        prop_assert_eq!(back.is_complex(), complex);
    }

    #[test]
    fn any_descriptor_bytes_decode_and_encode_back_unchanged(
        bytes in any::<[u8; DESCRIPTOR_SIZE]>(),
    ) {
        let descriptor = Descriptor::from_bytes(&bytes);
        prop_assert_eq!(descriptor.to_bytes(), bytes);
        prop_assert_eq!(Descriptor::from_bytes(&descriptor.to_bytes()), descriptor);
    }

    #[test]
    fn port_and_memory_descriptors_round_trip(
        name in any::<u32>(),
        disposition in disposition(),
        address in any::<u64>(),
        size in any::<u32>(),
        deallocate in any::<bool>(),
    ) {
        let port = Descriptor::port(name, disposition);
        prop_assert_eq!(Descriptor::from_bytes(&port.to_bytes()), port);
        let memory = Descriptor::out_of_line(address, size, deallocate);
        let back = Descriptor::from_bytes(&memory.to_bytes());
        prop_assert_eq!((back.value, back.size), (address, size));
        prop_assert_eq!(back, memory);
    }

    #[test]
    fn only_known_dispositions_and_return_codes_decode(
        raw in any::<u8>(),
        code in any::<u32>(),
    ) {
        match Disposition::from_raw(raw) {
            Some(disposition) => prop_assert_eq!(disposition as u8, raw),
            None => prop_assert!(!(16..=21).contains(&raw)),
        }
        match MsgReturn::from_raw(code) {
            Some(ret) => prop_assert_eq!(ret as u32, code),
            None => prop_assert!(MsgReturn::ALL.iter().all(|known| *known as u32 != code)),
        }
    }

    #[test]
    fn body_values_are_what_the_length_prefix_says_or_nothing(
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        match values(&body) {
            Some(found) => {
                let length = usize::from(u16::from_le_bytes([body[0], body[1]]));
                prop_assert_eq!(found, &body[LENGTH_PREFIX..LENGTH_PREFIX + length]);
            }
            None => prop_assert!(
                body.len() < LENGTH_PREFIX
                    || usize::from(u16::from_le_bytes([body[0], body[1]])) + LENGTH_PREFIX
                        > body.len()
            ),
        }
    }

    #[test]
    fn body_values_round_trip_through_their_prefix_and_padding(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        padding in 0usize..4,
    ) {
        let mut body = Vec::from((data.len() as u16).to_le_bytes());
        body.extend_from_slice(&data);
        body.resize(body.len() + padding, 0);
        prop_assert_eq!(values(&body), Some(&data[..]));
    }

    #[test]
    fn a_short_message_round_trips_through_registers(
        remote in disposition(),
        local in proptest::option::of(disposition()),
        ports in any::<(u32, u32, u32)>(),
        body in proptest::collection::vec(
            any::<u8>(),
            0..=registers::MAX_BODY
        ),
    ) {
        let size = (HEADER_SIZE + body.len()).next_multiple_of(4);
        let header = MessageHeader {
            bits: MessageHeader::bits(remote, local, false),
            size: size as u32,
            remote_port: ports.0,
            local_port: ports.1,
            voucher: 0,
            id: ports.2,
        };
        let words = registers::pack(&header, &body);
        prop_assert_eq!(registers::header(&words, size as u32), header);
        let bytes = registers::to_bytes(&words, size as u32);
        prop_assert_eq!(&bytes[HEADER_SIZE..HEADER_SIZE + body.len()], &body[..]);
        prop_assert!(bytes[HEADER_SIZE + body.len()..].iter().all(|&b| b == 0));
        let mut buffer = [0xa5u8; registers::MAX_SIZE];
        let received =
            Received::from_registers(&mut buffer, &words, size).expect("a valid short message");
        prop_assert_eq!(received.header, header);
        prop_assert_eq!(&received.body[..body.len()], &body[..]);
    }

    #[test]
    fn any_register_words_are_a_message_or_refused(
        words in any::<[u64; 4]>(),
        size in 0usize..64,
        room in 0usize..64,
    ) {
        let mut buffer = std::vec![0u8; room];
        match Received::from_registers(&mut buffer, &words, size) {
            Ok(received) => {
                prop_assert!((HEADER_SIZE..=registers::MAX_SIZE).contains(&size));
                prop_assert!(!received.header.is_complex());
                prop_assert_eq!(received.body.len(), size - HEADER_SIZE);
                prop_assert_eq!(received.header.size as usize, size);
                prop_assert_eq!(received.rights().count() + received.memory().count(), 0);
            }
            Err(_) => prop_assert!(
                room < registers::MAX_SIZE
                    || !(HEADER_SIZE..=registers::MAX_SIZE).contains(&size)
                    || registers::header(&words, 0).is_complex()
            ),
        }
    }
}
