//! Helpers shared by the integration tests.
#![allow(dead_code)]

use stepsweep::backend::gpu::{NO_F64_ENV, REQUIRE_GPU_ENV};
use stepsweep::backend::GpuContext;
use stepsweep::spec::{Precision, Spec};

/// Any GPU adapter (lavapipe included). Without one the test is skipped with a
/// message, unless STEPSWEEP_REQUIRE_GPU is set (as CI does), when it fails.
pub fn gpu_or_skip(test: &str) -> Option<GpuContext> {
    match GpuContext::open(false) {
        Ok(Some(ctx)) => Some(ctx),
        other => {
            let why = match other {
                Err(e) => e.to_string(),
                _ => "no GPU adapter found".to_string(),
            };
            if std::env::var_os(REQUIRE_GPU_ENV).is_some() {
                panic!("{test}: {why}, and {REQUIRE_GPU_ENV} is set; install mesa-vulkan-drivers for lavapipe");
            }
            eprintln!("skipping {test}: {why} (set {REQUIRE_GPU_ENV}=1 to make this a failure)");
            None
        }
    }
}

/// `ctx` where it can run `precision`; an adapter without f64 skips the f64
/// half of a test with a message, unless STEPSWEEP_REQUIRE_GPU is set (CI's
/// lavapipe has f64), when it fails.
pub fn with_precision(ctx: GpuContext, precision: Precision, test: &str) -> Option<GpuContext> {
    if precision == Precision::F32 || ctx.f64 {
        return Some(ctx);
    }
    if std::env::var_os(REQUIRE_GPU_ENV).is_some() && std::env::var_os(NO_F64_ENV).is_none() {
        panic!("{test}: the adapter has no f64 arithmetic, and {REQUIRE_GPU_ENV} is set");
    }
    eprintln!("skipping {test} in f64: the adapter has no f64 arithmetic");
    None
}

pub fn spec(text: &str) -> Spec {
    Spec::from_toml(text, "test spec").expect("test spec parses")
}

pub fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_stepsweep"))
}

/// Runs the binary with `args`, `--out out` and `-q`, asserts it succeeded,
/// and returns its stdout.
pub fn run_ok(args: &[&str], out: &std::path::Path) -> String {
    let o = bin()
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("-q")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A finished run's summary.json.
pub fn summary(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

/// A table's columns as text, value by value in row order: whole numbers
/// as themselves, floats by their bits (so -0 differs from 0; every NaN is
/// one value), nulls and empty CSV fields as "". Two tables with the same
/// result are equal whatever their format, chunking or row groups.
pub type Table = (Vec<String>, Vec<Vec<String>>);

fn float_text(v: f64) -> String {
    // CSV writes every NaN as "NaN", whatever its sign and payload.
    if v.is_nan() {
        return "f:NaN".into();
    }
    format!("f:{:016x}", v.to_bits())
}

/// A Parquet file's table, read row by row through the Parquet crate's
/// record reader (not the writer's column code).
pub fn parquet_table(path: &std::path::Path) -> Table {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let names: Vec<String> = (0..schema.num_columns())
        .map(|j| schema.column(j).name().to_string())
        .collect();
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        for (j, (_, field)) in row.get_column_iter().enumerate() {
            let text = match field {
                Field::Null => String::new(),
                Field::ULong(v) => v.to_string(),
                Field::Double(v) => float_text(*v),
                Field::Str(v) => v.clone(),
                other => panic!(
                    "{}: column {} has an unexpected value {other:?}",
                    path.display(),
                    names[j]
                ),
            };
            columns[j].push(text);
        }
    }
    (names, columns)
}

/// A CSV file's table, read with the types the Parquet file of the same
/// columns has: `whole` columns as numbers, text columns as text, every
/// other as a float ("inf" included).
pub fn csv_table(path: &std::path::Path, parquet: &Table) -> Table {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let names: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(names, parquet.0, "{}: the columns differ", path.display());
    let kinds: Vec<char> = parquet
        .1
        .iter()
        .map(|column| {
            let first = column.iter().find(|v| !v.is_empty());
            match first {
                Some(v) if v.starts_with("f:") => 'f',
                Some(v) if v.parse::<u64>().is_ok() => 'u',
                Some(_) => 's',
                None => 'f',
            }
        })
        .collect();
    let mut columns = vec![Vec::new(); names.len()];
    for record in reader.records() {
        let record = record.unwrap();
        for (j, field) in record.iter().enumerate() {
            let text = match (field, kinds[j]) {
                ("", _) => String::new(),
                (v, 'f') => float_text(v.parse().unwrap_or_else(|_| panic!("{v} is not a float"))),
                (v, _) => v.to_string(),
            };
            columns[j].push(text);
        }
    }
    (names, columns)
}
