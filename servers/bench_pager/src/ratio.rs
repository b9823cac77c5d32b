//! Ratios printed with two decimals (`4.00`, `0.67`), the form of the read-ahead figures.

use core::fmt;

/// A non-negative ratio kept as a whole number of hundredths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hundredths(u128);

impl Hundredths {
    /// `numerator / denominator` to the nearest hundredth (halves up); `None` when the
    /// denominator is 0 (a ratio of nothing is no figure).
    pub fn of_ratio(numerator: u64, denominator: u64) -> Option<Hundredths> {
        if denominator == 0 {
            return None;
        }
        let (n, d) = (u128::from(numerator), u128::from(denominator));
        Some(Hundredths((200 * n + d) / (2 * d)))
    }
}

impl fmt::Display for Hundredths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(numerator: u64, denominator: u64) -> String {
        Hundredths::of_ratio(numerator, denominator)
            .unwrap()
            .to_string()
    }

    #[test]
    fn ratios_show_two_decimals() {
        assert_eq!(shown(1024, 256), "4.00");
        assert_eq!(shown(2, 3), "0.67");
        assert_eq!(shown(1, 3), "0.33");
        assert_eq!(shown(1, 8), "0.13"); // 0.125: halves go up
        assert_eq!(shown(0, 7), "0.00");
        assert_eq!(shown(1537, 1024), "1.50");
        assert_eq!(shown(u64::MAX, 1), "18446744073709551615.00");
    }

    #[test]
    fn no_ratio_of_nothing() {
        assert_eq!(Hundredths::of_ratio(5, 0), None);
    }
}
