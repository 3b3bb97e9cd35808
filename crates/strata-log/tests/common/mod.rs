//! What several of the store's tests share.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

/// A runtime for driving the store's async appends from a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Copies a data dir (or any tree), leaving out a broker's `LOCK` file.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}
