//! Fuzzes the message ABI: header and descriptor bytes, the received-message parser (from a
//! buffer and from registers), a body's length prefix, dispositions and return codes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libipc::abi::body::{values, LENGTH_PREFIX};
use libipc::abi::message::{
    registers, Descriptor, Disposition, MessageHeader, MsgReturn, DESCRIPTOR_SIZE, HEADER_SIZE,
    MAX_DESCRIPTORS,
};
use libipc::ipc::message::{MessageError, Received};

fuzz_target!(|data: &[u8]| {
    if let Some(bytes) = data.first_chunk::<HEADER_SIZE>() {
        assert_eq!(&MessageHeader::from_bytes(bytes).to_bytes(), bytes);
    }
    if let Some(bytes) = data.first_chunk::<DESCRIPTOR_SIZE>() {
        assert_eq!(&Descriptor::from_bytes(bytes).to_bytes(), bytes);
    }
    if let Some(&raw) = data.first() {
        assert!(Disposition::from_raw(raw).is_none_or(|d| d as u8 == raw));
    }
    if let Some(raw) = data.first_chunk::<4>() {
        let raw = u32::from_le_bytes(*raw);
        assert!(MsgReturn::from_raw(raw).is_none_or(|r| r as u32 == raw));
    }
    if let Some(found) = values(data) {
        let length = usize::from(u16::from_le_bytes([data[0], data[1]]));
        assert_eq!(found, &data[LENGTH_PREFIX..LENGTH_PREFIX + length]);
    }

    // The whole input as a received message, and as one cut short by its last byte's worth.
    let cut = data.last().map_or(0, |&b| usize::from(b));
    for size in [data.len(), data.len().saturating_sub(cut), cut] {
        match Received::parse(data, size) {
            Ok(message) => {
                assert!((HEADER_SIZE..=data.len()).contains(&size));
                assert_eq!(message.body, &data[size - message.body.len()..size]);
                let carried = message.rights().count() + message.memory().count();
                assert!(carried <= MAX_DESCRIPTORS);
                if !message.header.is_complex() {
                    assert_eq!((carried, message.body.len()), (0, size - HEADER_SIZE));
                }
                if let Some((name, _)) = message.reply() {
                    assert_ne!(name, 0);
                }
            }
            Err(error) => assert_eq!(error, MessageError::Malformed),
        }
    }

    // The first 32 bytes as the register words of a short message.
    if let Some(words) = data.first_chunk::<32>() {
        let words: [u64; 4] = core::array::from_fn(|i| {
            u64::from_le_bytes(words[8 * i..8 * i + 8].try_into().unwrap())
        });
        let mut buffer = [0u8; registers::MAX_SIZE];
        if let Ok(message) = Received::from_registers(&mut buffer, &words, cut % 64) {
            assert!(!message.header.is_complex());
            assert_eq!(message.body.len(), cut % 64 - HEADER_SIZE);
        }
    }
});
