//! Property tests of reading a kernel receiver's message body ([`Incoming`]): any body, simple
//! or complex with any descriptor count, is read or refused without a panic, and values
//! encoded as the kernel's peers encode them are read back in order.

use proptest::prelude::*;

use super::request::tests::body_of;
use super::request::Incoming;
use libipc::abi::message::DESCRIPTOR_SIZE;
use libipc::props::config;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_body_is_read_or_refused_and_values_stay_inside_it(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        complex in any::<bool>(),
        count in prop_oneof![0u32..12, any::<u32>()],
        takes in proptest::collection::vec(0u8..5, 0..6),
    ) {
        let mut body = body;
        if complex && body.len() >= 4 {
            body[..4].copy_from_slice(&count.to_le_bytes());
        }
        let Some(mut incoming) = Incoming::new(&body, complex) else {
            return Ok(());
        };
        let mut remaining = incoming.remaining();
        prop_assert!(remaining + 2 <= body.len());
        for take in takes {
            let taken = match take {
                0 => incoming.take::<u64>().is_some(),
                1 => incoming.take::<bool>().is_some(),
                2 => incoming.take::<u8>().is_some(),
                3 => incoming.take::<alloc::string::String>().is_some(),
                _ => incoming.take::<(u32, Option<u16>)>().is_some(),
            };
            // Reading only ever moves forward.
            prop_assert!(incoming.remaining() <= remaining);
            prop_assert!(taken || incoming.remaining() == remaining);
            remaining = incoming.remaining();
        }
    }

    #[test]
    fn values_are_read_back_in_order_after_any_descriptors(
        values in any::<(u64, bool, u32, Option<i16>)>(),
        descriptors in 0usize..5,
        padding in 0usize..4,
    ) {
        let encoded = body_of(&values);
        let simple = [encoded.clone(), vec![0; padding]].concat();
        let mut complex = Vec::from((descriptors as u32).to_le_bytes());
        complex.resize(4 + descriptors * DESCRIPTOR_SIZE, 0x5a);
        complex.extend_from_slice(&simple);
        for (body, is_complex) in [(&simple, false), (&complex, true)] {
            let mut incoming = Incoming::new(body, is_complex).expect("a valid body");
            prop_assert_eq!(incoming.take::<u64>(), Some(values.0));
            prop_assert_eq!(incoming.take::<bool>(), Some(values.1));
            prop_assert_eq!(incoming.take::<u32>(), Some(values.2));
            prop_assert_eq!(incoming.take::<Option<i16>>(), Some(values.3));
            prop_assert_eq!(incoming.remaining(), 0);
        }
    }
}
