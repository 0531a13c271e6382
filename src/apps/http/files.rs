//! Files under `--root`, with no way out of it: the decoded path may not
//! contain `..`, `.`, NUL or backslash segments, and the resolved file
//! (symlinks followed) must still lie under the canonical root.

use std::path::{Path, PathBuf};

/// Open the file for request path `path` under `root`: (file, length).
/// A directory serves its `index.html`.
pub fn open(root: &Path, path: &str) -> Option<(std::fs::File, u64)> {
    let full = resolve(root, path)?;
    let meta = std::fs::metadata(&full).ok()?;
    let full = if meta.is_dir() {
        full.join("index.html")
    } else {
        full
    };
    let real = full.canonicalize().ok()?;
    if !real.starts_with(root.canonicalize().ok()?) {
        return None;
    }
    let f = std::fs::File::open(&real).ok()?;
    let meta = f.metadata().ok()?;
    meta.is_file().then_some((f, meta.len()))
}

/// `root` joined with the percent-decoded `path`, or `None` if the path
/// tries to leave `root`.
pub fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path)?;
    let text = std::str::from_utf8(&decoded).ok()?;
    let mut out = root.to_path_buf();
    for seg in text.split('/') {
        if seg.is_empty() {
            continue;
        }
        if seg == ".." || seg == "." || seg.contains(['\0', '\\']) {
            return None;
        }
        out.push(seg);
    }
    Some(out)
}

/// RFC 3986 §2.1 percent-decoding; `None` on a malformed escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_way_out() {
        let root = Path::new("/srv");
        assert_eq!(
            resolve(root, "/a/b.txt"),
            Some(PathBuf::from("/srv/a/b.txt"))
        );
        assert_eq!(resolve(root, "/a%20b"), Some(PathBuf::from("/srv/a b")));
        for bad in [
            "/../etc/passwd",
            "/a/../../x",
            "/%2e%2e/x",
            "/%2E%2E%2Fetc",
            "/a%00b",
            "/a%5c..%5cb",
            "/%zz",
            "/%2",
            "/./x",
        ] {
            assert_eq!(resolve(root, bad), None, "{bad}");
        }
    }

    #[test]
    fn serves_files_and_index_but_not_outside() {
        let dir = std::env::temp_dir().join(format!("xdptcp-files-{}", std::process::id()));
        let sub = dir.join("root");
        std::fs::create_dir_all(sub.join("d")).unwrap();
        std::fs::write(sub.join("f.txt"), b"hello").unwrap();
        std::fs::write(sub.join("d/index.html"), b"<p>").unwrap();
        std::fs::write(dir.join("secret"), b"no").unwrap();
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink(dir.join("secret"), sub.join("link"));
        assert_eq!(open(&sub, "/f.txt").map(|f| f.1), Some(5));
        assert_eq!(open(&sub, "/d/").map(|f| f.1), Some(3));
        assert!(open(&sub, "/missing").is_none());
        assert!(open(&sub, "/link").is_none(), "a symlink out of the root");
        assert!(open(&sub, "/../secret").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
