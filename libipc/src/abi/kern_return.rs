//! Kernel return codes, as Mach's `kern_return_t`: every failing call names one of these.

use core::fmt;

/// The outcome of a kernel operation. `Success` is 0; each error has a stable number that
/// crosses the user/kernel boundary in a register.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernReturn {
    Success = 0,
    /// An address is not valid in the caller's address space.
    InvalidAddress = 1,
    /// The operation is not allowed by the protection of the memory.
    ProtectionFailure = 2,
    /// No room in the address space for the request.
    NoSpace = 3,
    /// An argument is malformed or out of range.
    InvalidArgument = 4,
    /// The operation failed for a reason not covered by another code.
    Failure = 5,
    /// The kernel (or the caller's quota) is out of a resource: memory, names, objects.
    ResourceShortage = 6,
    /// The caller does not hold the right the operation needs.
    InvalidRight = 17,
    /// The name does not denote a right in the caller's space.
    InvalidName = 15,
    /// The value is not valid for this object.
    InvalidValue = 18,
    /// The operation was aborted (the object died, the wait was interrupted).
    Aborted = 14,
    /// A pager could not supply memory the call touched (its error, its death, or no
    /// answer in time).
    MemoryError = 10,
    /// A timeout expired first.
    OperationTimedOut = 49,
    /// The call number is not a system call.
    InvalidSyscall = 50,
}

impl KernReturn {
    /// All codes, for decoding and exhaustive tests.
    pub const ALL: [KernReturn; 14] = [
        Self::Success,
        Self::InvalidAddress,
        Self::ProtectionFailure,
        Self::NoSpace,
        Self::InvalidArgument,
        Self::Failure,
        Self::ResourceShortage,
        Self::InvalidRight,
        Self::InvalidName,
        Self::InvalidValue,
        Self::Aborted,
        Self::MemoryError,
        Self::OperationTimedOut,
        Self::InvalidSyscall,
    ];

    /// Decodes a raw code; unknown numbers are `None` (a newer kernel, or garbage).
    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|code| *code as u32 == raw)
    }

    /// A short description for reports.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::InvalidAddress => "invalid address",
            Self::ProtectionFailure => "protection failure",
            Self::NoSpace => "no space in the address space",
            Self::InvalidArgument => "invalid argument",
            Self::Failure => "failure",
            Self::ResourceShortage => "resource shortage",
            Self::InvalidRight => "invalid right",
            Self::InvalidName => "invalid name",
            Self::InvalidValue => "invalid value",
            Self::Aborted => "aborted",
            Self::MemoryError => "memory error (the pager could not supply the page)",
            Self::OperationTimedOut => "operation timed out",
            Self::InvalidSyscall => "invalid system call",
        }
    }
}

impl fmt::Display for KernReturn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        for (i, a) in KernReturn::ALL.iter().enumerate() {
            assert_eq!(KernReturn::from_raw(*a as u32), Some(*a));
            for b in &KernReturn::ALL[i + 1..] {
                assert_ne!(*a as u32, *b as u32);
            }
        }
        assert_eq!(KernReturn::from_raw(12345), None);
    }
}
