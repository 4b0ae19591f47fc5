//! A bounded reader of GGUF headers: the magic, version, tensor count and the metadata
//! key/value pairs that precede a model's tensors.
//!
//! The catalog reads the header of every GGUF file it installs and refuses one that is not a
//! well-formed GGUF, so llama.cpp (whose GGUF parser has had memory-safety bugs) only ever
//! opens files whose header a bounded Rust reader has accepted. Every count and length is
//! checked against a limit before anything is allocated, and nesting is bounded.
//!
//! ```
//! let mut file = b"GGUF".to_vec();
//! file.extend_from_slice(&3u32.to_le_bytes()); // version
//! file.extend_from_slice(&0u64.to_le_bytes()); // tensors
//! file.extend_from_slice(&0u64.to_le_bytes()); // metadata pairs
//! let header = hibana_ai::gguf::read_header(&mut file.as_slice()).unwrap();
//! assert_eq!(header.version, 3);
//! ```

use std::{collections::BTreeMap, io::Read};

/// Most metadata pairs a header may hold (real models hold a few dozen).
pub const MAX_METADATA_PAIRS: u64 = 4096;
/// Most tensors a header may announce (real models hold a few hundred to a few thousand).
pub const MAX_TENSORS: u64 = 1 << 20;
/// Longest string (a key, a value or an array element), in bytes.
pub const MAX_STRING_BYTES: u64 = 1 << 20;
/// Most elements of one array (a tokenizer's vocabulary is the largest: ~260k tokens).
pub const MAX_ARRAY_LEN: u64 = 1 << 21;
/// Most bytes the metadata may take in all (a 262k-token vocabulary takes about 8 MiB).
pub const MAX_METADATA_BYTES: u64 = 64 << 20;
/// Deepest nesting of arrays within arrays.
const MAX_DEPTH: usize = 4;

/// Why a header was refused.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file does not start with `GGUF`.
    #[error("not a GGUF file (bad magic bytes)")]
    Magic,
    /// A GGUF version this reader does not know (2 and 3 are read).
    #[error("GGUF version {0} is not supported (versions 2 and 3 are)")]
    Version(u32),
    /// The header ends early or could not be read.
    #[error("the GGUF header is truncated or unreadable: {0}")]
    Io(#[from] std::io::Error),
    /// A count, length, type or nesting is out of bounds.
    #[error("malformed GGUF header: {0}")]
    Malformed(String),
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// Any unsigned integer type (u8 to u64).
    Uint(u64),
    /// Any signed integer type (i8 to i64).
    Int(i64),
    /// A 32- or 64-bit float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string (invalid sequences replaced).
    String(String),
    /// An array: its elements are read and checked but not kept (the catalog needs none of
    /// them, and a vocabulary kept as values would take far more memory than its bytes).
    Array {
        /// The elements' value type (GGUF type code).
        item_type: u32,
        /// Number of elements.
        len: u64,
    },
}

/// What a GGUF file declares before its tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    /// Format version (2 or 3).
    pub version: u32,
    /// Number of tensors the file declares.
    pub tensor_count: u64,
    /// Metadata by key (`general.architecture`, `tokenizer.ggml.tokens`…).
    pub metadata: BTreeMap<String, GgufValue>,
}

impl GgufHeader {
    /// The model architecture (`general.architecture`), if declared.
    pub fn architecture(&self) -> Option<&str> {
        match self.metadata.get("general.architecture") {
            Some(GgufValue::String(s)) => Some(s),
            _ => None,
        }
    }
}

/// Reads and checks a GGUF header from the start of `reader`, leaving it after the metadata.
pub fn read_header(reader: &mut impl Read) -> Result<GgufHeader, GgufError> {
    let mut r = Reader {
        inner: reader,
        budget: MAX_METADATA_BYTES,
    };
    let mut magic = [0u8; 4];
    r.bytes(&mut magic)?;
    if &magic != b"GGUF" {
        return Err(GgufError::Magic);
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version(version));
    }
    let tensor_count = r.u64()?;
    if tensor_count > MAX_TENSORS {
        return Err(malformed(format!("{tensor_count} tensors announced")));
    }
    let pairs = r.u64()?;
    if pairs > MAX_METADATA_PAIRS {
        return Err(malformed(format!("{pairs} metadata pairs announced")));
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..pairs {
        let key = r.string(true)?;
        let kind = r.u32()?;
        let value = r.value(kind, 0, true)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(malformed(format!("metadata key {key:?} appears twice")));
        }
    }
    Ok(GgufHeader {
        version,
        tensor_count,
        metadata,
    })
}

fn malformed(reason: String) -> GgufError {
    GgufError::Malformed(reason)
}

/// A reader that refuses to read more than its budget of bytes.
struct Reader<'a, R: Read> {
    inner: &'a mut R,
    budget: u64,
}

impl<R: Read> Reader<'_, R> {
    fn spend(&mut self, n: u64) -> Result<(), GgufError> {
        self.budget = self
            .budget
            .checked_sub(n)
            .ok_or_else(|| malformed(format!("the metadata exceeds {MAX_METADATA_BYTES} bytes")))?;
        Ok(())
    }

    fn bytes(&mut self, out: &mut [u8]) -> Result<(), GgufError> {
        self.spend(out.len() as u64)?;
        self.inner.read_exact(out)?;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut out = [0u8; N];
        self.bytes(&mut out)?;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A length-prefixed string, kept only if `keep` (else read and dropped).
    fn string(&mut self, keep: bool) -> Result<String, GgufError> {
        let len = self.u64()?;
        if len > MAX_STRING_BYTES {
            return Err(malformed(format!("a string of {len} bytes")));
        }
        self.spend(len)?;
        // `take` bounds the read; the length was checked above, so this holds at most that.
        let mut taken = (&mut *self.inner).take(len);
        let mut bytes = Vec::new();
        let read = if keep {
            taken.read_to_end(&mut bytes)? as u64
        } else {
            std::io::copy(&mut taken, &mut std::io::sink())?
        };
        if read != len {
            return Err(GgufError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A value of type `kind`; strings are kept only if `keep`.
    fn value(&mut self, kind: u32, depth: usize, keep: bool) -> Result<GgufValue, GgufError> {
        Ok(match kind {
            0 => GgufValue::Uint(u8::from_le_bytes(self.array()?).into()),
            1 => GgufValue::Int(i8::from_le_bytes(self.array()?).into()),
            2 => GgufValue::Uint(u16::from_le_bytes(self.array()?).into()),
            3 => GgufValue::Int(i16::from_le_bytes(self.array()?).into()),
            4 => GgufValue::Uint(self.u32()?.into()),
            5 => GgufValue::Int(i32::from_le_bytes(self.array()?).into()),
            6 => GgufValue::Float(f32::from_le_bytes(self.array()?).into()),
            7 => match self.array::<1>()? {
                [0] => GgufValue::Bool(false),
                [1] => GgufValue::Bool(true),
                [b] => return Err(malformed(format!("boolean byte {b}"))),
            },
            8 => GgufValue::String(self.string(keep)?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(malformed(format!("arrays nested deeper than {MAX_DEPTH}")));
                }
                let item = self.u32()?;
                let len = self.u64()?;
                if len > MAX_ARRAY_LEN {
                    return Err(malformed(format!("an array of {len} elements")));
                }
                // Every element costs at least one byte of the budget, so a long array ends at
                // the budget or the end of the file, and nothing of it is held.
                for _ in 0..len {
                    self.value(item, depth + 1, false)?;
                }
                GgufValue::Array {
                    item_type: item,
                    len,
                }
            }
            10 => GgufValue::Uint(self.u64()?),
            11 => GgufValue::Int(i64::from_le_bytes(self.array()?)),
            12 => GgufValue::Float(f64::from_le_bytes(self.array()?)),
            other => return Err(malformed(format!("unknown value type {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pairs: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&2u64.to_le_bytes());
        out.extend_from_slice(&(pairs.len() as u64).to_le_bytes());
        for (key, kind, value) in pairs {
            out.extend_from_slice(&(key.len() as u64).to_le_bytes());
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(value);
        }
        out
    }

    fn string(s: &str) -> Vec<u8> {
        let mut out = (s.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out
    }

    #[test]
    fn reads_metadata_of_every_type() {
        let mut array = 8u32.to_le_bytes().to_vec();
        array.extend_from_slice(&2u64.to_le_bytes());
        array.extend(string("a"));
        array.extend(string("b"));
        let bytes = header(&[
            ("general.architecture", 8, &string("llama")),
            ("llama.context_length", 4, &2048u32.to_le_bytes()),
            ("tokenizer.ggml.tokens", 9, &array),
            ("x.f", 6, &1.5f32.to_le_bytes()),
            ("x.b", 7, &[1]),
        ]);
        let h = read_header(&mut bytes.as_slice()).unwrap();
        assert_eq!(h.tensor_count, 2);
        assert_eq!(h.architecture(), Some("llama"));
        assert_eq!(h.metadata["llama.context_length"], GgufValue::Uint(2048));
        assert_eq!(
            h.metadata["tokenizer.ggml.tokens"],
            GgufValue::Array {
                item_type: 8,
                len: 2
            }
        );
        assert_eq!(h.metadata["x.f"], GgufValue::Float(1.5));
    }

    #[test]
    fn refuses_bad_magic_version_and_huge_lengths() {
        assert!(matches!(
            read_header(&mut &b"GGML\x03\0\0\0"[..]),
            Err(GgufError::Magic)
        ));
        let mut v9 = header(&[]);
        v9[4] = 9;
        assert!(matches!(
            read_header(&mut v9.as_slice()),
            Err(GgufError::Version(9))
        ));
        // A string that claims 2^63 bytes is refused before anything is allocated.
        let huge = header(&[("k", 8, &(1u64 << 63).to_le_bytes())]);
        assert!(matches!(
            read_header(&mut huge.as_slice()),
            Err(GgufError::Malformed(_))
        ));
        // An array that claims 2^20 elements but has none is a truncation, not an allocation.
        let mut array = 0u32.to_le_bytes().to_vec();
        array.extend_from_slice(&(1u64 << 20).to_le_bytes());
        let short = header(&[("k", 9, &array)]);
        assert!(matches!(
            read_header(&mut short.as_slice()),
            Err(GgufError::Io(_))
        ));
        let truncated = header(&[("general.architecture", 8, &string("llama"))]);
        assert!(read_header(&mut &truncated[..truncated.len() - 1]).is_err());
    }
}
