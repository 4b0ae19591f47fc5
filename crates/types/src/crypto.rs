//! ed25519 keys and signatures.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_consensus::{SigningKey, VerificationKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Address;

/// An ed25519 public key (32 bytes, not yet checked to be a valid point).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

/// An ed25519 secret key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

/// A signature that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key bytes are not a valid ed25519 point.
    #[error("the signer's public key is not a valid ed25519 key")]
    BadPublicKey,
    /// The signature does not match the key and message.
    #[error("the signature does not match the signer's public key")]
    Mismatch,
}

impl PublicKey {
    /// The address of this key.
    pub fn address(&self) -> Address {
        Address::from_public_key(self)
    }

    /// Parses the key into a verification key.
    pub fn verification_key(&self) -> Result<VerificationKey, SignatureError> {
        VerificationKey::try_from(self.0).map_err(|_| SignatureError::BadPublicKey)
    }

    /// Verifies a signature over a message (ZIP-215 rules, which batch verification agrees
    /// with, so every validator reaches the same verdict).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let key = self.verification_key()?;
        key.verify(&signature.to_ed25519(), message)
            .map_err(|_| SignatureError::Mismatch)
    }
}

impl Signature {
    /// The signature in the verifier's type.
    pub fn to_ed25519(&self) -> ed25519_consensus::Signature {
        ed25519_consensus::Signature::from(self.0)
    }
}

impl SecretKey {
    /// Generates a fresh key from the operating system's randomness.
    pub fn generate() -> SecretKey {
        SecretKey(SigningKey::new(rand::rngs::OsRng))
    }

    /// A key from its 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from(bytes))
    }

    /// The 32 secret bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verification_key().to_bytes())
    }

    /// Signs a message.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public_key())
    }
}

macro_rules! hex_serde {
    ($ty:ident, $len:expr, $what:expr) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| format!("invalid {}: expected {} hex digits", $what, 2 * $len))?;
                Ok($ty(out))
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <String as Deserialize>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_serde!(PublicKey, 32, "public key");
hex_serde!(Signature, 64, "signature");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let key = SecretKey::generate();
        let sig = key.sign(b"hello");
        assert_eq!(key.public_key().verify(b"hello", &sig), Ok(()));
        assert_eq!(
            key.public_key().verify(b"hellp", &sig),
            Err(SignatureError::Mismatch)
        );
        let other = SecretKey::generate().public_key();
        assert_eq!(other.verify(b"hello", &sig), Err(SignatureError::Mismatch));
        let restored = SecretKey::from_bytes(key.to_bytes());
        assert_eq!(restored.public_key(), key.public_key());
    }
}
