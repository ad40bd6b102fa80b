//! The finished rows of one A/B run: `rows-KEY.jsonl` in the output folder, one [`SideRow`]
//! a line, appended and flushed as each row finishes.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{AbError, SideRow};

/// The run file, and the rows read from it.
pub struct Store {
    path: PathBuf,
    file: File,
    /// `(side, row id)` → the row.
    done: HashMap<(String, String), SideRow>,
}

impl Store {
    /// Opens (or creates) the run file of `key` in `dir`. A last line cut by a crash is
    /// dropped (the file is truncated after the last complete line); any other line that does
    /// not parse is an error, not something to skip in silence.
    pub fn open(dir: &Path, key: &str) -> Result<Self, AbError> {
        let path = dir.join(format!("rows-{key}.jsonl"));
        let io = |e: std::io::Error| AbError::io(&path, e.to_string(), e);
        std::fs::create_dir_all(dir).map_err(|e| AbError::io(dir, e.to_string(), e))?;
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut done = HashMap::new();
        for (n, line) in text[..complete].split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
            let row: SideRow = serde_json::from_slice(line).map_err(|e| AbError::io(&path, format!("line {}: {e}", n + 1), e))?;
            done.insert((row.side.clone(), row.result.id.clone()), row);
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
        let mut file = file;
        file.set_len(complete as u64).map_err(io)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).map_err(io)?;
        Ok(Store { path, file, done })
    }

    /// The run file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A finished row of a side.
    pub fn get(&self, side: &str, id: &str) -> Option<&SideRow> {
        self.done.get(&(side.to_string(), id.to_string()))
    }

    /// Appends a finished row (one line, flushed).
    pub fn append(&mut self, row: &SideRow) -> Result<(), AbError> {
        let io = |e: std::io::Error| AbError::io(&self.path, e.to_string(), e);
        let mut line = serde_json::to_vec(row).map_err(|e| AbError::io(&self.path, e.to_string(), e))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.flush().map_err(io)?;
        self.done.insert((row.side.clone(), row.result.id.clone()), row.clone());
        Ok(())
    }
}
