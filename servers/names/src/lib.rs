//! The name service's server: the table of names (host-tested) and the server built both
//! ways ([`serve`]), as the program `names` and collocated in the kernel. bootstrap starts
//! it first; every program bootstrap starts gets a port of its own here.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use libipc::names::{check_name, NameError};

#[cfg(target_os = "none")]
pub mod serve;

/// Most names the service holds.
pub const NAME_TABLE_CAPACITY: usize = 64;

/// Most programs with a port of their own at once (bootstrap's children).
pub const MAX_CLIENTS: usize = 64;

/// Names and the rights registered under them: at most `capacity` entries, names distinct and
/// valid (see [`check_name`]).
#[derive(Debug)]
pub struct NameTable<R> {
    entries: Vec<(String, R)>,
    capacity: usize,
}

impl<R> NameTable<R> {
    pub fn new(capacity: usize) -> Self {
        NameTable {
            entries: Vec::new(),
            capacity,
        }
    }

    /// Registers `right` under `name`. On error the right is dropped (given back).
    pub fn register(&mut self, name: String, right: R) -> Result<(), NameError> {
        check_name(&name)?;
        if self.entries.iter().any(|(n, _)| *n == name) {
            return Err(NameError::Duplicate);
        }
        if self.entries.len() >= self.capacity || self.entries.try_reserve(1).is_err() {
            return Err(NameError::TableFull);
        }
        self.entries.push((name, right));
        Ok(())
    }

    /// The right registered under `name`.
    pub fn lookup(&self, name: &str) -> Result<&R, NameError> {
        check_name(name)?;
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, right)| right)
            .ok_or(NameError::Unknown)
    }

    /// Removes (and drops) every entry whose right `dead` says is gone; how many.
    pub fn remove_where(&mut self, mut dead: impl FnMut(&R) -> bool) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(_, right)| !dead(right));
        before - self.entries.len()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libipc::names::MAX_NAME_LEN;

    #[test]
    fn registers_looks_up_and_refuses() {
        let mut table = NameTable::new(2);
        assert_eq!(table.register("echo".into(), 7), Ok(()));
        assert_eq!(table.lookup("echo"), Ok(&7));
        assert_eq!(table.register("echo".into(), 8), Err(NameError::Duplicate));
        assert_eq!(table.lookup("nope"), Err(NameError::Unknown));
        assert_eq!(table.register(String::new(), 8), Err(NameError::Empty));
        let long = "n".repeat(MAX_NAME_LEN + 1);
        assert_eq!(table.register(long.clone(), 8), Err(NameError::TooLong));
        assert_eq!(table.lookup(&long), Err(NameError::TooLong));
        assert_eq!(table.register("n".repeat(MAX_NAME_LEN), 9), Ok(()));
        assert_eq!(
            table.register("third".into(), 10),
            Err(NameError::TableFull)
        );
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn dead_entries_go_and_free_their_names() {
        let mut table = NameTable::new(4);
        table.register("a".into(), 1).unwrap();
        table.register("b".into(), 2).unwrap();
        table.register("c".into(), 1).unwrap();
        assert_eq!(table.remove_where(|&r| r == 1), 2);
        assert_eq!(table.lookup("a"), Err(NameError::Unknown));
        assert_eq!(table.lookup("b"), Ok(&2));
        assert_eq!(table.register("a".into(), 3), Ok(()));
    }
}
