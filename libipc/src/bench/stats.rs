//! The arithmetic of the figures: medians of timed samples and ratios printed with a fixed
//! number of decimals. Pure, so it is unit-tested on the host.

use core::fmt;

/// Smallest, middle and largest of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub min: u64,
    /// The middle sample once sorted (of an even count, the upper of the two middle ones).
    pub median: u64,
    pub max: u64,
}

impl Summary {
    /// Sorts `samples` and reads off its extremes and middle; `None` if there are none.
    pub fn of(samples: &mut [u64]) -> Option<Summary> {
        samples.sort_unstable();
        Some(Summary {
            min: *samples.first()?,
            median: samples[samples.len() / 2],
            max: *samples.last()?,
        })
    }
}

/// `numerator / denominator` rounded to the nearest integer, halves away from zero.
///
/// # Panics
/// If `denominator` is 0.
pub fn rounded_ratio(numerator: i64, denominator: i64) -> i64 {
    assert!(denominator != 0, "ratio with a zero denominator");
    let (numerator, denominator) = (i128::from(numerator), i128::from(denominator));
    let sign = if (numerator < 0) != (denominator < 0) {
        -1
    } else {
        1
    };
    let (n, d) = (numerator.abs(), denominator.abs());
    (sign * ((2 * n + d) / (2 * d))) as i64
}

/// A ratio displayed with one decimal (`12.3`, `-0.5`), kept as a count of tenths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tenths(pub i64);

impl Tenths {
    /// `numerator / denominator` to the nearest tenth.
    pub fn of_ratio(numerator: i64, denominator: i64) -> Tenths {
        Tenths(rounded_ratio(numerator.saturating_mul(10), denominator))
    }
}

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        write!(f, "{sign}{}.{}", magnitude / 10, magnitude % 10)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn median_is_the_middle_of_the_sorted_samples() {
        let mut odd = [9, 1, 5, 3, 7];
        assert_eq!(
            Summary::of(&mut odd),
            Some(Summary {
                min: 1,
                median: 5,
                max: 9
            })
        );
        let mut even = [4, 1, 3, 2];
        assert_eq!(Summary::of(&mut even).unwrap().median, 3);
        let mut one = [42];
        assert_eq!(
            Summary::of(&mut one),
            Some(Summary {
                min: 42,
                median: 42,
                max: 42
            })
        );
        assert_eq!(Summary::of(&mut []), None);
    }

    #[test]
    fn an_outlier_does_not_move_the_median() {
        let mut samples = [100, 101, 99, 100, 1_000_000, 100, 98];
        assert_eq!(Summary::of(&mut samples).unwrap().median, 100);
    }

    #[test]
    fn ratios_round_half_away_from_zero() {
        assert_eq!(rounded_ratio(10, 4), 3);
        assert_eq!(rounded_ratio(9, 4), 2);
        assert_eq!(rounded_ratio(-10, 4), -3);
        assert_eq!(rounded_ratio(10, -4), -3);
        assert_eq!(rounded_ratio(0, 7), 0);
        assert_eq!(rounded_ratio(i64::MAX, 1), i64::MAX);
    }

    #[test]
    fn tenths_print_one_decimal() {
        assert_eq!(std::format!("{}", Tenths::of_ratio(12_345, 1000)), "12.3");
        assert_eq!(std::format!("{}", Tenths::of_ratio(12_350, 1000)), "12.4");
        assert_eq!(std::format!("{}", Tenths::of_ratio(7, 1000)), "0.0");
        assert_eq!(std::format!("{}", Tenths::of_ratio(-500, 1000)), "-0.5");
        assert_eq!(std::format!("{}", Tenths::of_ratio(3000, 1000)), "3.0");
    }
}
