//! The code's shape, checked: no Rust source file over [`FILE_MAX`] lines and no function
//! over [`FN_MAX`] lines unless a `// long: <why>` comment sits directly above it (among
//! its doc comments and attributes). ARCHITECTURE.md states both rules; this test keeps
//! them true. `python3`-free on purpose: it runs under `cargo test --workspace`.

use std::path::{Path, PathBuf};

const FILE_MAX: usize = 800;
const FN_MAX: usize = 80;
const ROOTS: [&str; 5] = ["crates", "src", "tests", "benches", "examples"];

#[test]
fn no_file_or_function_is_too_long_without_saying_why() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ROOTS {
        collect_rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 50,
        "found only {} source files under {root:?}",
        files.len()
    );
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source file");
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        problems.extend(shape_problems(&shown, &text));
    }
    assert!(
        problems.is_empty(),
        "{} shape problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_checker_finds_long_functions_and_accepts_the_reason() {
    let body = "    let x = 1;\n".repeat(FN_MAX);
    let long = format!("fn long_one() {{\n{body}}}\n");
    assert_eq!(
        shape_problems("a.rs", &long).len(),
        1,
        "an unexplained long fn is a problem"
    );
    let explained = format!("/// Docs.\n// long: one table\n#[test]\n{long}");
    assert!(
        shape_problems("a.rs", &explained).is_empty(),
        "`// long:` explains it"
    );
    let braces = format!("fn tricky() {{\n    let s = \"}}}}\"; let c = '}}';\n{body}}}\n");
    assert_eq!(
        shape_problems("a.rs", &braces).len(),
        1,
        "braces in literals are not code"
    );
    let short = "pub(crate) async fn short() -> Result<(), ()> {\n    Ok(())\n}\n";
    assert!(shape_problems("a.rs", short).is_empty());
    let many_lines = "// line\n".repeat(FILE_MAX + 1);
    assert_eq!(
        shape_problems("a.rs", &many_lines).len(),
        1,
        "a long file is a problem"
    );
}

fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                collect_rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every problem in one file, as `path:line: what`.
fn shape_problems(path: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut problems = Vec::new();
    if lines.len() > FILE_MAX {
        problems.push(format!("{path}: {} lines (> {FILE_MAX})", lines.len()));
    }
    let code = blank_literals_and_comments(text);
    let code_lines: Vec<&str> = code.split('\n').collect();
    let mut line_starts = Vec::with_capacity(code_lines.len());
    let mut offset = 0;
    for line in &code_lines {
        line_starts.push(offset);
        offset += line.len() + 1;
    }
    for (index, line) in code_lines.iter().enumerate() {
        let Some((name, after)) = fn_header(line) else {
            continue;
        };
        let Some(open) = body_start(&code, line_starts[index] + after) else {
            continue;
        };
        let Some(close) = matching_brace(&code, open) else {
            continue;
        };
        let length = code[..close].matches('\n').count() - index + 1;
        if length > FN_MAX && !explained_above(&lines, index) {
            problems.push(format!(
                "{path}:{}: fn {name} is {length} lines (> {FN_MAX})",
                index + 1
            ));
        }
    }
    problems
}

/// The function's name and the byte offset just after it, if the line declares a fn.
fn fn_header(line: &str) -> Option<(&str, usize)> {
    let trimmed = line.trim_start();
    let mut rest = trimmed;
    let qualifiers = [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "default ",
        "const ",
        "async ",
        "unsafe ",
    ];
    'strip: loop {
        for q in qualifiers {
            if let Some(r) = rest.strip_prefix(q) {
                rest = r.trim_start();
                continue 'strip;
            }
        }
        break;
    }
    let rest = rest.strip_prefix("fn ")?;
    let name_len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let consumed = line.len() - rest.len() + name_len;
    Some((&rest[..name_len], consumed))
}

/// The `{` that opens the body, or `None` for a declaration ending in `;`.
fn body_start(code: &str, from: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in code[from..].char_indices() {
        match c {
            '(' | '[' | '<' => depth += 1,
            ')' | ']' | '>' => depth -= 1,
            ';' if depth <= 0 => return None,
            '{' if depth <= 0 => return Some(from + i),
            _ => {}
        }
    }
    None
}

fn matching_brace(code: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether a `// long: <why>` comment is among the comments and attributes right above.
fn explained_above(lines: &[&str], fn_line: usize) -> bool {
    lines[..fn_line]
        .iter()
        .rev()
        .map(|l| l.trim_start())
        .take_while(|l| l.starts_with("//") || l.starts_with("#"))
        .any(|l| l.starts_with("//") && l.contains("long:"))
}

/// The text with comments, string and char literals replaced by spaces (newlines kept),
/// so that braces inside them do not count.
fn blank_literals_and_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for b in &mut out[from..to.min(bytes.len())] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    };
    let mut i = 0;
    while i < bytes.len() {
        let prev_is_ident = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if bytes[i..].starts_with(b"//") {
            let end = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if bytes[i..].starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < bytes.len() && depth > 0 {
                if bytes[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if bytes[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if !prev_is_ident && raw_string_hashes(&bytes[i..]).is_some() {
            let (prefix, hashes) = raw_string_hashes(&bytes[i..]).unwrap_or_default();
            let terminator = format!("\"{}", "#".repeat(hashes));
            let body = i + prefix;
            let end = text[body..]
                .find(&terminator)
                .map_or(bytes.len(), |n| body + n + terminator.len());
            blank(&mut out, i, end);
            i = end;
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if bytes[i] == b'\'' {
            match char_literal_len(&text[i..]) {
                Some(len) => {
                    blank(&mut out, i, i + len);
                    i += len;
                }
                None => i += 1, // a lifetime
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// For `r"`, `r#"`, `br##"` ...: the prefix length up to and including `"`, and the hashes.
fn raw_string_hashes(bytes: &[u8]) -> Option<(usize, usize)> {
    let start = if bytes.starts_with(b"br") {
        2
    } else if bytes.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = bytes[start..].iter().take_while(|&&b| b == b'#').count();
    (bytes.get(start + hashes) == Some(&b'"')).then_some((start + hashes + 1, hashes))
}

/// The length of a char literal at the start of `s` (`'a'`, `'\n'`, `'\u{7f}'`), if any.
fn char_literal_len(s: &str) -> Option<usize> {
    let mut chars = s.char_indices().skip(1);
    let (_, first) = chars.next()?;
    if first == '\\' {
        let close = s[2..].find('\'')?;
        (close <= 10).then_some(close + 3)
    } else {
        let (at, next) = chars.next()?;
        (next == '\'').then_some(at + 1)
    }
}
