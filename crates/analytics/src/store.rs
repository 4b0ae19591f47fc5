//! The tables on disk: a folder per table of Parquet files, and the cursor that says which
//! heights they hold.
//!
//! ```text
//! DIR/cursor.json                      last indexed height and that block's hash
//! DIR/labels.json                      names set with `hibana analytics label`
//! DIR/tables/transfers/part-000000000001-000000000250.parquet
//! DIR/tables/accounts/snapshot.parquet
//! ```
//!
//! Crash safety: every file is written as `*.tmp`, synced, then renamed over its final name, so a
//! reader sees a whole file or none. Block-derived tables get one part file per batch of heights,
//! written *before* the cursor moves past them; at open, parts beyond the cursor (a crash between
//! the two) are deleted, so the heights are indexed again and appear once. Compaction merges
//! small parts into one covering their range, then deletes them; a part covered by another is
//! ignored by readers and deleted at open, so a crash mid-compaction never duplicates rows.

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use arrow::record_batch::RecordBatch;
use parquet::{
    arrow::{ArrowWriter, arrow_reader::ParquetRecordBatchReaderBuilder},
    basic::Compression,
    file::properties::WriterProperties,
};
use serde::{Deserialize, Serialize};

use crate::{
    AnalyticsError,
    derive::Rows,
    tables::{Refresh, Row, TABLES, TableDef, table},
};

/// Parts of a table beyond this count are merged into one.
const COMPACT_ABOVE: usize = 16;
/// Parts larger than this are left alone by compaction.
const COMPACT_MAX_BYTES: u64 = 64 << 20;

/// Where the indexer stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Last indexed height (0: nothing yet).
    pub height: u64,
    /// Hash of the block at `height`, to tell a different chain from this one.
    pub block_hash: Option<String>,
    /// The chain id.
    pub chain_id: Option<String>,
}

/// A part file of a block-derived table, holding heights `from..=to`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    from: u64,
    to: u64,
    path: PathBuf,
}

/// The folder of tables.
#[derive(Debug, Clone)]
pub struct TableStore {
    dir: PathBuf,
}

impl TableStore {
    /// Opens (creating) the tables under `dir`, and removes what a crash left behind.
    pub fn open(dir: &Path) -> Result<TableStore, AnalyticsError> {
        let store = TableStore {
            dir: dir.to_path_buf(),
        };
        for def in TABLES {
            let folder = store.table_dir(def.name);
            fs::create_dir_all(&folder).map_err(|e| AnalyticsError::io(&folder, e))?;
        }
        store.recover()?;
        Ok(store)
    }

    /// A store to read only, without creating or cleaning anything.
    pub fn reader(dir: &Path) -> TableStore {
        TableStore {
            dir: dir.to_path_buf(),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn table_dir(&self, name: &str) -> PathBuf {
        self.dir.join("tables").join(name)
    }

    fn cursor_path(&self) -> PathBuf {
        self.dir.join("cursor.json")
    }

    /// The cursor (height 0 if nothing was indexed).
    pub fn cursor(&self) -> Result<Cursor, AnalyticsError> {
        let path = self.cursor_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| AnalyticsError::Corrupt(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Cursor {
                height: 0,
                block_hash: None,
                chain_id: None,
            }),
            Err(e) => Err(AnalyticsError::io(&path, e)),
        }
    }

    fn recover(&self) -> Result<(), AnalyticsError> {
        let cursor = self.cursor()?;
        for def in TABLES {
            let folder = self.table_dir(def.name);
            let entries = fs::read_dir(&folder).map_err(|e| AnalyticsError::io(&folder, e))?;
            for entry in entries.flatten() {
                if entry.path().extension().is_some_and(|e| e == "tmp") {
                    remove(&entry.path())?;
                }
            }
            if def.refresh == Refresh::Append {
                let (live, dead) = self.scan(def.name)?;
                for part in dead {
                    remove(&part.path)?;
                }
                for part in live.into_iter().filter(|p| p.from > cursor.height) {
                    remove(&part.path)?;
                }
            }
        }
        Ok(())
    }

    /// The parts of a table: those readers use, and those another part covers.
    fn scan(&self, name: &str) -> Result<(Vec<Part>, Vec<Part>), AnalyticsError> {
        let folder = self.table_dir(name);
        let mut parts = Vec::new();
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], vec![])),
            Err(e) => return Err(AnalyticsError::io(&folder, e)),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            let Some(range) = file
                .strip_prefix("part-")
                .and_then(|f| f.strip_suffix(".parquet"))
            else {
                continue;
            };
            if let Some((from, to)) = range.split_once('-')
                && let (Ok(from), Ok(to)) = (from.parse(), to.parse())
            {
                parts.push(Part { from, to, path });
            }
        }
        parts.sort_by_key(|p| (p.from, std::cmp::Reverse(p.to)));
        let (mut live, mut dead): (Vec<Part>, Vec<Part>) = (vec![], vec![]);
        for part in parts {
            match live.last() {
                Some(last) if part.to <= last.to => dead.push(part),
                _ => live.push(part),
            }
        }
        Ok((live, dead))
    }

    /// The Parquet files a reader of table `name` should read.
    pub fn files(&self, name: &str) -> Result<Vec<PathBuf>, AnalyticsError> {
        let def = table(name).ok_or_else(|| AnalyticsError::UnknownTable(name.to_string()))?;
        Ok(match def.refresh {
            Refresh::Append => self.scan(name)?.0.into_iter().map(|p| p.path).collect(),
            Refresh::Snapshot => {
                let path = self.table_dir(name).join("snapshot.parquet");
                if path.exists() { vec![path] } else { vec![] }
            }
        })
    }

    /// Writes the rows of heights `from..=to` as new parts, then moves the cursor to `to`.
    pub fn append(
        &self,
        from: u64,
        to: u64,
        rows: &Rows,
        cursor: &Cursor,
    ) -> Result<(), AnalyticsError> {
        for def in TABLES.iter().filter(|d| d.refresh == Refresh::Append) {
            let Some(rows) = rows.get(def.name).filter(|r| !r.is_empty()) else {
                continue;
            };
            let batch = def.batch(rows)?;
            let path = self
                .table_dir(def.name)
                .join(format!("part-{from:012}-{to:012}.parquet"));
            write_parquet(&path, &[batch], def)?;
        }
        write_atomic(
            &self.cursor_path(),
            &serde_json::to_vec_pretty(cursor)
                .map_err(|e| AnalyticsError::Corrupt(e.to_string()))?,
        )
    }

    /// Replaces a snapshot table's rows.
    pub fn write_snapshot(&self, name: &str, rows: &[Row]) -> Result<(), AnalyticsError> {
        let def = table(name).ok_or_else(|| AnalyticsError::UnknownTable(name.to_string()))?;
        let batch = def.batch(rows)?;
        write_parquet(
            &self.table_dir(name).join("snapshot.parquet"),
            &[batch],
            def,
        )
    }

    /// Merges the small parts of every block-derived table once they are many.
    pub fn compact(&self) -> Result<usize, AnalyticsError> {
        let mut merged = 0;
        for def in TABLES.iter().filter(|d| d.refresh == Refresh::Append) {
            let (live, _) = self.scan(def.name)?;
            // The trailing run of small parts: contiguous in height, so one part can cover them.
            let small: Vec<&Part> = live
                .iter()
                .rev()
                .take_while(|p| {
                    fs::metadata(&p.path)
                        .map(|m| m.len() < COMPACT_MAX_BYTES)
                        .unwrap_or(false)
                })
                .collect();
            if small.len() <= COMPACT_ABOVE {
                continue;
            }
            let from = small.iter().map(|p| p.from).min().unwrap_or(0);
            let to = small.iter().map(|p| p.to).max().unwrap_or(0);
            let mut batches = Vec::new();
            for part in small.iter().rev() {
                batches.extend(read_parquet(&part.path)?);
            }
            let path = self
                .table_dir(def.name)
                .join(format!("part-{from:012}-{to:012}.parquet"));
            write_parquet(&path, &batches, def)?;
            for part in small {
                if part.path != path {
                    remove(&part.path)?;
                }
            }
            merged += 1;
        }
        Ok(merged)
    }

    /// Rows of a table as record batches (for the indexer's own bookkeeping and tests).
    pub fn read(&self, name: &str) -> Result<Vec<RecordBatch>, AnalyticsError> {
        let mut out = Vec::new();
        for path in self.files(name)? {
            out.extend(read_parquet(&path)?);
        }
        Ok(out)
    }

    fn labels_path(&self) -> PathBuf {
        self.dir.join("labels.json")
    }

    /// Names set by users, by address.
    pub fn user_labels(&self) -> Result<BTreeMap<String, String>, AnalyticsError> {
        let path = self.labels_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| AnalyticsError::Corrupt(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(AnalyticsError::io(&path, e)),
        }
    }

    /// Names `address` (a later name replaces an earlier one).
    pub fn set_label(&self, address: &str, name: &str) -> Result<(), AnalyticsError> {
        address
            .parse::<hibana_types::Address>()
            .map_err(|e| AnalyticsError::BadInput(format!("{address:?} is not an address: {e}")))?;
        let name = name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(AnalyticsError::BadInput(
                "a label is 1 to 64 printable characters".into(),
            ));
        }
        fs::create_dir_all(&self.dir).map_err(|e| AnalyticsError::io(&self.dir, e))?;
        let mut labels = self.user_labels()?;
        labels.insert(address.to_string(), name.to_string());
        write_atomic(
            &self.labels_path(),
            &serde_json::to_vec_pretty(&labels)
                .map_err(|e| AnalyticsError::Corrupt(e.to_string()))?,
        )
    }
}

fn remove(path: &Path) -> Result<(), AnalyticsError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AnalyticsError::io(path, e)),
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AnalyticsError> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(|e| AnalyticsError::io(&tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| AnalyticsError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| AnalyticsError::io(path, e))?;
    if let Some(parent) = path.parent()
        && let Ok(dir) = fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Encodes batches as one Parquet file (Snappy).
pub fn parquet_bytes(
    batches: &[RecordBatch],
    schema: arrow::datatypes::SchemaRef,
) -> Result<Vec<u8>, AnalyticsError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut out, schema, Some(props)).map_err(AnalyticsError::Parquet)?;
    for batch in batches {
        writer.write(batch).map_err(AnalyticsError::Parquet)?;
    }
    writer.close().map_err(AnalyticsError::Parquet)?;
    Ok(out)
}

fn write_parquet(
    path: &Path,
    batches: &[RecordBatch],
    def: &TableDef,
) -> Result<(), AnalyticsError> {
    write_atomic(path, &parquet_bytes(batches, def.schema())?)
}

fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>, AnalyticsError> {
    let file = fs::File::open(path).map_err(|e| AnalyticsError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(AnalyticsError::Parquet)?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(AnalyticsError::Arrow)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tables::cell;

    fn rows_at(height: u64) -> Rows {
        let mut rows = Rows::new();
        rows.entry("transfers").or_default().push(vec![
            cell::u64(height),
            cell::time(height * 1000),
            cell::str(format!("tx{height}")),
            cell::u64(0),
            cell::str("a"),
            cell::str("b"),
            cell::amount(u128::from(height)),
        ]);
        rows
    }

    fn cursor(height: u64) -> Cursor {
        Cursor {
            height,
            block_hash: None,
            chain_id: None,
        }
    }

    fn count(store: &TableStore, name: &str) -> usize {
        store.read(name).unwrap().iter().map(|b| b.num_rows()).sum()
    }

    #[test]
    fn parts_beyond_the_cursor_are_dropped_at_open_so_heights_are_never_doubled() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::open(dir.path()).unwrap();
        store.append(1, 1, &rows_at(1), &cursor(1)).unwrap();
        // A crash after writing the part of height 2 but before the cursor moved.
        let part = store
            .table_dir("transfers")
            .join("part-000000000002-000000000002.parquet");
        write_parquet(
            &part,
            &[table("transfers")
                .unwrap()
                .batch(&rows_at(2)["transfers"])
                .unwrap()],
            table("transfers").unwrap(),
        )
        .unwrap();
        fs::write(store.table_dir("transfers").join("x.tmp"), b"half").unwrap();
        let store = TableStore::open(dir.path()).unwrap();
        assert_eq!(store.cursor().unwrap().height, 1);
        assert_eq!(count(&store, "transfers"), 1);
        assert!(!part.exists());
        assert!(!store.table_dir("transfers").join("x.tmp").exists());
        store.append(2, 2, &rows_at(2), &cursor(2)).unwrap();
        assert_eq!(count(&store, "transfers"), 2);
    }

    #[test]
    fn compaction_keeps_every_row_once_and_survives_a_crash_before_deleting() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::open(dir.path()).unwrap();
        for h in 1..=40 {
            store.append(h, h, &rows_at(h), &cursor(h)).unwrap();
        }
        // Keep a copy of one old part, as if the crash came before the old parts were deleted.
        let old = store
            .table_dir("transfers")
            .join("part-000000000007-000000000007.parquet");
        let bytes = fs::read(&old).unwrap();
        assert_eq!(store.compact().unwrap(), 1);
        assert_eq!(count(&store, "transfers"), 40);
        fs::write(&old, bytes).unwrap();
        assert_eq!(count(&store, "transfers"), 40, "a covered part is not read");
        let store = TableStore::open(dir.path()).unwrap();
        assert!(!old.exists(), "a covered part is deleted at open");
        assert_eq!(store.files("transfers").unwrap().len(), 1);
    }

    #[test]
    fn labels_are_checked_and_replace_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::open(dir.path()).unwrap();
        let addr = hibana_types::SecretKey::generate()
            .public_key()
            .address()
            .to_string();
        assert!(store.set_label("not-an-address", "x").is_err());
        assert!(store.set_label(&addr, "").is_err());
        store.set_label(&addr, "treasury").unwrap();
        store.set_label(&addr, "exchange").unwrap();
        assert_eq!(store.user_labels().unwrap()[&addr], "exchange");
    }
}
