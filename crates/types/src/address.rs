//! Account addresses: 20 bytes of blake3(public key), shown as bech32 with prefix `hib`.

use std::{fmt, str::FromStr};

use bech32::{Bech32, Hrp};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PublicKey;

/// The human-readable prefix of every Hibana address.
pub const ADDRESS_HRP: &str = "hib";

/// An account address (`hib1…`).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct Address(pub [u8; 20]);

/// Why a string is not a Hibana address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not valid bech32 (bad characters, checksum or length).
    #[error("invalid address {0:?}: not a bech32 string ({1})")]
    Bech32(String, String),
    /// Valid bech32 with another prefix.
    #[error("invalid address {0:?}: prefix must be `hib`, found `{1}`")]
    WrongPrefix(String, String),
    /// Valid bech32 carrying the wrong number of bytes.
    #[error("invalid address {0:?}: expected 20 bytes, found {1}")]
    WrongLength(String, usize),
}

impl Address {
    /// Derives the address of a public key.
    pub fn from_public_key(key: &PublicKey) -> Address {
        let digest = blake3::hash(&key.0);
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest.as_bytes()[..20]);
        Address(out)
    }

    /// Returns the raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

fn hrp() -> Hrp {
    // "hib" is a valid human-readable part; parse_unchecked avoids a fallible path.
    Hrp::parse_unchecked(ADDRESS_HRP)
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match bech32::encode::<Bech32>(hrp(), &self.0) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (found, data) =
            bech32::decode(s).map_err(|e| AddressError::Bech32(s.to_string(), e.to_string()))?;
        if found.as_str() != ADDRESS_HRP {
            return Err(AddressError::WrongPrefix(s.to_string(), found.to_string()));
        }
        let bytes: [u8; 20] = data
            .as_slice()
            .try_into()
            .map_err(|_| AddressError::WrongLength(s.to_string(), data.len()))?;
        Ok(Address(bytes))
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    #[test]
    fn display_parse_round_trip() {
        let addr = SecretKey::generate().public_key().address();
        let s = addr.to_string();
        assert!(s.starts_with("hib1"), "{s}");
        assert_eq!(s.parse::<Address>(), Ok(addr));
    }

    #[test]
    fn rejects_other_prefix_and_bad_checksum() {
        let addr = Address([7; 20]);
        let other = bech32::encode::<Bech32>(Hrp::parse_unchecked("cosmos"), &addr.0).unwrap();
        assert!(matches!(
            other.parse::<Address>(),
            Err(AddressError::WrongPrefix(..))
        ));
        let mut s = addr.to_string();
        let last = s.pop().unwrap();
        s.push(if last == 'q' { 'p' } else { 'q' });
        assert!(matches!(
            s.parse::<Address>(),
            Err(AddressError::Bech32(..))
        ));
        let short = bech32::encode::<Bech32>(hrp(), &[1, 2, 3]).unwrap();
        assert!(matches!(
            short.parse::<Address>(),
            Err(AddressError::WrongLength(_, 3))
        ));
    }
}
