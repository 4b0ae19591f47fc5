//! Token amounts in base units (1 HIB = 10^9 base units).

use std::{fmt, str::FromStr};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Base units in one HIB.
pub const BASE_UNITS_PER_HIB: u128 = 1_000_000_000;
const DECIMALS: usize = 9;

/// An amount of HIB in base units. Parses `1.5HIB`, `1.5 hib` and `1500000000` (base units);
/// displays as `1.5HIB`.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Debug,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Amount(pub u128);

/// Why a string is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Empty input.
    #[error("empty amount: write base units like `1500000000` or HIB like `1.5HIB`")]
    Empty,
    /// A unit other than HIB.
    #[error("unknown unit {0:?} in amount: use `HIB` (e.g. `1.5HIB`) or no unit for base units")]
    UnknownUnit(String),
    /// Not a decimal number.
    #[error("invalid amount {0:?}: expected digits with an optional decimal point")]
    NotANumber(String),
    /// More than 9 decimal places.
    #[error("amount {0:?} has more than 9 decimal places (1 base unit = 0.000000001HIB)")]
    TooManyDecimals(String),
    /// Base units cannot be fractional.
    #[error("amount {0:?}: base units cannot have decimals; add `HIB` for whole tokens")]
    FractionalBaseUnits(String),
    /// Larger than the maximum representable amount.
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// An amount in base units.
    pub const fn from_base(units: u128) -> Amount {
        Amount(units)
    }

    /// An amount of whole HIB, if it fits.
    pub fn from_hib(hib: u128) -> Option<Amount> {
        hib.checked_mul(BASE_UNITS_PER_HIB).map(Amount)
    }

    /// The amount in base units.
    pub const fn base(self) -> u128 {
        self.0
    }

    /// Adds, returning `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// Subtracts, returning `None` if the result would be negative.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / BASE_UNITS_PER_HIB;
        let frac = self.0 % BASE_UNITS_PER_HIB;
        if frac == 0 {
            write!(f, "{whole}HIB")
        } else {
            let digits = format!("{frac:09}");
            write!(f, "{whole}.{}HIB", digits.trim_end_matches('0'))
        }
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if s.is_empty() {
            return Err(AmountError::Empty);
        }
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let unit = unit.trim();
        let in_hib = match unit.to_ascii_lowercase().as_str() {
            "" => false,
            "hib" => true,
            _ => return Err(AmountError::UnknownUnit(unit.to_string())),
        };
        let overflow = || AmountError::Overflow(input.to_string());
        let not_number = || AmountError::NotANumber(input.to_string());
        let (whole, frac) = match number.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (number, None),
        };
        if whole.is_empty() && frac.is_none_or(str::is_empty) {
            return Err(not_number());
        }
        if !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_number());
        }
        let whole_value: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| overflow())?
        };
        if !in_hib {
            if frac.is_some() {
                return Err(AmountError::FractionalBaseUnits(input.to_string()));
            }
            return Ok(Amount(whole_value));
        }
        let frac = frac.unwrap_or("");
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_number());
        }
        if frac.len() > DECIMALS {
            return Err(AmountError::TooManyDecimals(input.to_string()));
        }
        let frac_value: u128 = if frac.is_empty() {
            0
        } else {
            let padded = format!("{frac:0<9}");
            padded.parse().map_err(|_| not_number())?
        };
        whole_value
            .checked_mul(BASE_UNITS_PER_HIB)
            .and_then(|v| v.checked_add(frac_value))
            .map(Amount)
            .ok_or_else(overflow)
    }
}

/// JSON shows amounts as strings of base units, since u128 does not fit a JSON number.
impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(u64),
            Text(String),
        }
        match <Repr as Deserialize>::deserialize(deserializer)? {
            Repr::Number(n) => Ok(Amount(u128::from(n))),
            Repr::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!("1.5HIB".parse(), Ok(Amount(1_500_000_000)));
        assert_eq!("1.5 hib".parse(), Ok(Amount(1_500_000_000)));
        assert_eq!("1500000000".parse(), Ok(Amount(1_500_000_000)));
        assert_eq!("0.000000001HIB".parse(), Ok(Amount(1)));
        assert_eq!(".5HIB".parse(), Ok(Amount(500_000_000)));
        assert_eq!("7HIB".parse(), Ok(Amount(7_000_000_000)));
    }

    #[test]
    fn rejects_bad_forms_with_reasons() {
        assert_eq!("".parse::<Amount>(), Err(AmountError::Empty));
        assert!(matches!(
            "1.0000000001HIB".parse::<Amount>(),
            Err(AmountError::TooManyDecimals(_))
        ));
        assert!(matches!(
            "1.5ETH".parse::<Amount>(),
            Err(AmountError::UnknownUnit(_))
        ));
        assert!(matches!(
            "1.5".parse::<Amount>(),
            Err(AmountError::FractionalBaseUnits(_))
        ));
        assert!(matches!(
            "-1HIB".parse::<Amount>(),
            Err(AmountError::UnknownUnit(_))
        ));
        assert!(matches!(
            "1.2.3HIB".parse::<Amount>(),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            ".HIB".parse::<Amount>(),
            Err(AmountError::NotANumber(_))
        ));
        let huge = format!("{}HIB", u128::MAX);
        assert!(matches!(
            huge.parse::<Amount>(),
            Err(AmountError::Overflow(_))
        ));
    }

    #[test]
    fn displays_without_trailing_zeros() {
        assert_eq!(Amount(1_500_000_000).to_string(), "1.5HIB");
        assert_eq!(Amount(1).to_string(), "0.000000001HIB");
        assert_eq!(Amount(0).to_string(), "0HIB");
    }

    proptest! {
        #[test]
        fn display_round_trips(units in any::<u128>()) {
            let a = Amount(units);
            prop_assert_eq!(a.to_string().parse::<Amount>(), Ok(a));
            prop_assert_eq!(units.to_string().parse::<Amount>(), Ok(a));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in ".{0,40}") {
            let _ = s.parse::<Amount>();
        }
    }
}
