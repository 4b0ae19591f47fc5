//! Keys: BIP39 mnemonics with SLIP-0010 ed25519 derivation, passphrase-encrypted keystores
//! (argon2id + XChaCha20-Poly1305), and the devnet's plaintext development keyring.

use std::{
    fs,
    path::{Path, PathBuf},
    str::FromStr,
};

use anyhow::{Context, Result, anyhow, bail};
use argon2::{Algorithm, Argon2, Params as Argon2Params, Version};
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit},
};
use hibana_types::{Address, PublicKey, SecretKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// SLIP-0010 derivation path of the first Hibana account (all hardened, as ed25519 requires).
pub(crate) const DERIVATION_PATH: &str = "m/44'/7468'/0'/0'/0'";

/// Warning stored in, and printed about, every plaintext development key.
pub(crate) const DEV_KEY_WARNING: &str = "INSECURE DEVELOPMENT KEY: stored in plaintext by `hibana devnet`; never hold real funds with it";

/// A fresh 24-word mnemonic.
pub(crate) fn new_mnemonic() -> Result<bip39::Mnemonic> {
    let mut entropy = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut entropy);
    Ok(bip39::Mnemonic::from_entropy(&entropy)?)
}

/// Parses a mnemonic phrase, with a clear error.
pub(crate) fn parse_mnemonic(phrase: &str) -> Result<bip39::Mnemonic> {
    let normalized = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
    bip39::Mnemonic::parse(normalized).map_err(|e| anyhow!("invalid mnemonic: {e}"))
}

/// The account key of a mnemonic (empty BIP39 passphrase, SLIP-0010 path [`DERIVATION_PATH`]).
pub(crate) fn derive_key(mnemonic: &bip39::Mnemonic) -> Result<SecretKey> {
    let seed = mnemonic.to_seed("");
    let root = ed25519_dalek_bip32::ExtendedSigningKey::from_seed(&seed)
        .map_err(|e| anyhow!("key derivation failed: {e}"))?;
    let path = ed25519_dalek_bip32::DerivationPath::from_str(DERIVATION_PATH)
        .map_err(|e| anyhow!("bad derivation path: {e:?}"))?;
    let child = root
        .derive(&path)
        .map_err(|e| anyhow!("key derivation failed: {e}"))?;
    Ok(SecretKey::from_bytes(child.signing_key.to_bytes()))
}

/// Checks that a key name is safe as a file name.
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!("key name {name:?} must be 1-64 characters of letters, digits, '-' or '_'");
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct Crypto {
    kdf: String,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

/// An encrypted keystore file: the mnemonic under a passphrase.
#[derive(Serialize, Deserialize)]
pub(crate) struct Keystore {
    version: u32,
    pub(crate) name: String,
    pub(crate) address: Address,
    pub(crate) public_key: PublicKey,
    crypto: Crypto,
}

fn kdf(passphrase: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<[u8; 32]> {
    let params =
        Argon2Params::new(m, t, p, Some(32)).map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| anyhow!("argon2: {e}"))?;
    Ok(key)
}

impl Keystore {
    /// Encrypts a mnemonic under a passphrase.
    pub(crate) fn seal(
        name: &str,
        mnemonic: &bip39::Mnemonic,
        passphrase: &str,
    ) -> Result<Keystore> {
        let key = derive_key(mnemonic)?;
        let (m, t, p) = (19 * 1024, 2, 1);
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(&kdf(passphrase, &salt, m, t, p)?.into());
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&nonce), mnemonic.to_string().as_bytes())
            .map_err(|_| anyhow!("encryption failed"))?;
        Ok(Keystore {
            version: 1,
            name: name.to_string(),
            address: key.public_key().address(),
            public_key: key.public_key(),
            crypto: Crypto {
                kdf: "argon2id".into(),
                m_cost_kib: m,
                t_cost: t,
                p_cost: p,
                salt: hex::encode(salt),
                cipher: "xchacha20poly1305".into(),
                nonce: hex::encode(nonce),
                ciphertext: hex::encode(ciphertext),
            },
        })
    }

    /// Decrypts the key with a passphrase.
    pub(crate) fn open(&self, passphrase: &str) -> Result<SecretKey> {
        let c = &self.crypto;
        if c.kdf != "argon2id" || c.cipher != "xchacha20poly1305" {
            bail!(
                "keystore {} uses an unsupported scheme ({} / {})",
                self.name,
                c.kdf,
                c.cipher
            );
        }
        let salt = hex::decode(&c.salt).context("keystore salt is not hex")?;
        let nonce: [u8; 24] = hex::decode(&c.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| anyhow!("keystore nonce is malformed"))?;
        let ciphertext = hex::decode(&c.ciphertext).context("keystore ciphertext is not hex")?;
        let cipher = XChaCha20Poly1305::new(
            &kdf(passphrase, &salt, c.m_cost_kib, c.t_cost, c.p_cost)?.into(),
        );
        let plain = cipher
            .decrypt(XNonce::from_slice(&nonce), ciphertext.as_slice())
            .map_err(|_| {
                anyhow!(
                    "wrong passphrase for key {:?} (or the keystore is corrupt)",
                    self.name
                )
            })?;
        let phrase = String::from_utf8(plain).context("keystore content is not text")?;
        let key = derive_key(&parse_mnemonic(&phrase)?)?;
        if key.public_key() != self.public_key {
            bail!(
                "keystore {} is inconsistent: its key does not match its public key",
                self.name
            );
        }
        Ok(key)
    }
}

/// A folder of encrypted keystores, one `NAME.json` per key.
pub(crate) struct Keyring {
    pub(crate) dir: PathBuf,
}

impl Keyring {
    pub(crate) fn new(dir: PathBuf) -> Keyring {
        Keyring { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    pub(crate) fn add(&self, store: &Keystore) -> Result<PathBuf> {
        check_name(&store.name)?;
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create keyring {}", self.dir.display()))?;
        let path = self.path(&store.name);
        if path.exists() {
            bail!(
                "a key named {:?} already exists in {}",
                store.name,
                self.dir.display()
            );
        }
        write_private(&path, &serde_json::to_vec_pretty(store)?)?;
        Ok(path)
    }

    pub(crate) fn get(&self, name: &str) -> Result<Keystore> {
        check_name(name)?;
        let path = self.path(name);
        let bytes = fs::read(&path).map_err(|_| {
            anyhow!(
                "no key named {name:?} in {} (see `hibana wallet list`)",
                self.dir.display()
            )
        })?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("keystore {} is corrupt", path.display()))
    }

    pub(crate) fn list(&self) -> Result<Vec<Keystore>> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Ok(bytes) = fs::read(&path)
                && let Ok(store) = serde_json::from_slice::<Keystore>(&bytes)
            {
                out.push(store);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// A plaintext development key, as `hibana devnet` writes them.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct DevKey {
    pub(crate) warning: String,
    pub(crate) name: String,
    pub(crate) address: Address,
    pub(crate) mnemonic: String,
}

impl DevKey {
    pub(crate) fn new(name: &str) -> Result<(DevKey, SecretKey)> {
        let mnemonic = new_mnemonic()?;
        let key = derive_key(&mnemonic)?;
        let dev = DevKey {
            warning: DEV_KEY_WARNING.into(),
            name: name.into(),
            address: key.public_key().address(),
            mnemonic: mnemonic.to_string(),
        };
        Ok((dev, key))
    }

    pub(crate) fn secret(&self) -> Result<SecretKey> {
        derive_key(&parse_mnemonic(&self.mnemonic)?)
    }
}

/// The folder of a home's development keyring.
pub(crate) fn dev_keyring_dir(home: &Path) -> PathBuf {
    home.join("dev-keyring")
}

pub(crate) fn write_dev_key(home: &Path, key: &DevKey) -> Result<()> {
    let dir = dev_keyring_dir(home);
    fs::create_dir_all(&dir)?;
    write_private(
        &dir.join(format!("{}.json", key.name)),
        &serde_json::to_vec_pretty(key)?,
    )
}

pub(crate) fn read_dev_key(home: &Path, name: &str) -> Result<DevKey> {
    check_name(name)?;
    let path = dev_keyring_dir(home).join(format!("{name}.json"));
    let bytes = fs::read(&path).map_err(|_| {
        anyhow!(
            "no development key named {name:?} in {} (devnet keys: alice, bob, carol)",
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("development key {} is corrupt", path.display()))
}

pub(crate) fn list_dev_keys(home: &Path) -> Vec<DevKey> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dev_keyring_dir(home)) {
        for entry in entries.flatten() {
            if let Ok(bytes) = fs::read(entry.path())
                && let Ok(key) = serde_json::from_slice::<DevKey>(&bytes)
            {
                out.push(key);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Writes a file readable only by its owner.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

/// Reads a passphrase from the first line of a file, or asks on the terminal.
pub(crate) fn passphrase(file: Option<&Path>, prompt: &str, confirm: bool) -> Result<String> {
    if let Some(path) = file {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read password file {}", path.display()))?;
        let line = text.lines().next().unwrap_or("").to_string();
        if line.is_empty() {
            bail!("password file {} is empty", path.display());
        }
        return Ok(line);
    }
    let first = rpassword::prompt_password(prompt).map_err(|_| {
        anyhow!("cannot ask for a passphrase without a terminal: use --password-file")
    })?;
    if first.is_empty() {
        bail!("the passphrase must not be empty");
    }
    if confirm {
        let again = rpassword::prompt_password("Repeat the passphrase: ").map_err(|_| {
            anyhow!("cannot ask for a passphrase without a terminal: use --password-file")
        })?;
        if again != first {
            bail!("the passphrases do not match");
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystore_round_trip_and_wrong_passphrase() {
        let mnemonic = new_mnemonic().unwrap();
        assert_eq!(mnemonic.word_count(), 24);
        let store = Keystore::seal("k", &mnemonic, "correct horse").unwrap();
        let key = store.open("correct horse").unwrap();
        assert_eq!(
            key.public_key(),
            derive_key(&mnemonic).unwrap().public_key()
        );
        assert!(
            store
                .open("wrong")
                .unwrap_err()
                .to_string()
                .contains("wrong passphrase")
        );
    }

    #[test]
    fn derivation_is_deterministic_and_path_specific() {
        let m = parse_mnemonic(
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        )
        .unwrap();
        let a = derive_key(&m).unwrap();
        let b = derive_key(&m).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert!(parse_mnemonic("abandon abandon abandon").is_err());
        assert!(check_name("../etc").is_err());
    }
}
