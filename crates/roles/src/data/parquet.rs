//! A dataset export as a Parquet file (readable by pyarrow and DuckDB): one row per item with
//! its provenance, its content and its Merkle proof.

use std::{path::Path, sync::Arc};

use anyhow::{Context, Result, anyhow};
use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::{ArrowWriter, arrow_reader::ParquetRecordBatchReaderBuilder};

/// The exported columns, one entry per item.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Columns {
    /// The dataset (bounty) id.
    pub dataset: Vec<u64>,
    /// The item id.
    pub item: Vec<u64>,
    /// Who contributed it (address).
    pub contributor: Vec<String>,
    /// blake3 of its content (hex).
    pub hash: Vec<String>,
    /// Its content (the exact bytes hashed, as text).
    pub content: Vec<String>,
    /// Its Merkle proof, as JSON.
    pub proof: Vec<String>,
    /// The dataset's root (hex).
    pub root: Vec<String>,
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("dataset", DataType::UInt64, false),
        Field::new("item", DataType::UInt64, false),
        Field::new("contributor", DataType::Utf8, false),
        Field::new("hash", DataType::Utf8, false),
        Field::new("content", DataType::Utf8, false),
        Field::new("proof", DataType::Utf8, false),
        Field::new("root", DataType::Utf8, false),
    ]))
}

/// Writes the columns to `path`.
pub fn write(path: &Path, c: &Columns) -> Result<()> {
    let strings = |v: &[String]| Arc::new(StringArray::from_iter_values(v)) as ArrayRef;
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(UInt64Array::from(c.dataset.clone())),
            Arc::new(UInt64Array::from(c.item.clone())),
            strings(&c.contributor),
            strings(&c.hash),
            strings(&c.content),
            strings(&c.proof),
            strings(&c.root),
        ],
    )?;
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut writer = ArrowWriter::try_new(file, schema(), None)?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}

/// Reads the columns back from `path`.
pub fn read(path: &Path) -> Result<Columns> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a Parquet file", path.display()))?
        .build()?;
    let mut c = Columns::default();
    for batch in reader {
        let batch = batch?;
        let u64s = |name: &str| -> Result<Vec<u64>> {
            let col = batch
                .column_by_name(name)
                .ok_or_else(|| anyhow!("the file has no column {name}"))?;
            let arr = col
                .as_any()
                .downcast_ref::<UInt64Array>()
                .ok_or_else(|| anyhow!("column {name} is not UInt64"))?;
            Ok(arr.values().to_vec())
        };
        let strs = |name: &str| -> Result<Vec<String>> {
            let col = batch
                .column_by_name(name)
                .ok_or_else(|| anyhow!("the file has no column {name}"))?;
            let arr = col
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| anyhow!("column {name} is not text"))?;
            if arr.null_count() > 0 {
                return Err(anyhow!("column {name} has empty cells"));
            }
            Ok(arr
                .iter()
                .map(|s| s.unwrap_or_default().to_string())
                .collect())
        };
        c.dataset.extend(u64s("dataset")?);
        c.item.extend(u64s("item")?);
        c.contributor.extend(strs("contributor")?);
        c.hash.extend(strs("hash")?);
        c.content.extend(strs("content")?);
        c.proof.extend(strs("proof")?);
        c.root.extend(strs("root")?);
    }
    Ok(c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip_through_a_parquet_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.parquet");
        let c = Columns {
            dataset: vec![0, 0],
            item: vec![3, 5],
            contributor: vec!["a".into(), "b".into()],
            hash: vec!["h1".into(), "h2".into()],
            content: vec!["{}".into(), "{\"x\":1}".into()],
            proof: vec!["[]".into(), "[]".into()],
            root: vec!["r".into(), "r".into()],
        };
        write(&path, &c).unwrap();
        assert_eq!(read(&path).unwrap(), c);
        std::fs::write(&path, b"not parquet").unwrap();
        assert!(read(&path).is_err());
    }
}
