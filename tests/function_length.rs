//! Keeps every function in `src/` short: none may span more than `MAX_LINES` lines, counted from the line
//! with `fn` to the line with its closing brace (free functions, methods, nested functions and test
//! functions alike).
//!
//! It reads every file under `src/` as text: comments and the insides of string and character literals are
//! blanked first (so a brace or a `fn` in them counts for nothing), then each `fn` keyword followed by a
//! name opens an item, whose body runs from the first `{` after its signature to the matching `}`. Function
//! pointer types (`fn(u8)`) and closure traits (`impl Fn(..)`) are not items. There are no exceptions.

use std::path::Path;

mod sources;

const MAX_LINES: usize = 80;

/// A function found in a file: its name, the line of its `fn` (1-based) and how many lines it spans.
#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    line: usize,
    lines: usize,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Blanks `text[from..to]` with spaces, keeping its line breaks so that line numbers still hold.
fn blank(code: &mut [char], from: usize, to: usize) {
    let to = to.min(code.len());
    for c in &mut code[from..to] {
        if *c != '\n' {
            *c = ' ';
        }
    }
}

/// Where a `/* .. */` comment starting at `at` ends (block comments nest in Rust).
fn block_comment_end(text: &[char], at: usize) -> usize {
    let (mut depth, mut i) = (0, at);
    while i < text.len() {
        if text[i] == '/' && text.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if text[i] == '*' && text.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    text.len()
}

/// Where a `"..."` literal whose opening quote is at `at` ends (past its closing quote).
fn string_end(text: &[char], at: usize) -> usize {
    let mut i = at + 1;
    while i < text.len() {
        match text[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

/// If a raw string (`r"..."`, `r#"..."#`, also with a `b` or `c` before the `r`) starts at `at`, where it
/// ends. `r#ident` (a raw identifier) is not one.
fn raw_string_end(text: &[char], at: usize) -> Option<usize> {
    let mut i = at;
    if matches!(text[i], 'b' | 'c') {
        i += 1;
    }
    if text.get(i) != Some(&'r') {
        return None;
    }
    i += 1;
    let hashes = text[i..].iter().take_while(|c| **c == '#').count();
    i += hashes;
    if text.get(i) != Some(&'"') {
        return None;
    }
    let terminator: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let body = i + 1;
    let close = text[body..]
        .windows(terminator.len())
        .position(|window| window == terminator.as_slice());
    Some(close.map_or(text.len(), |at| body + at + terminator.len()))
}

/// If a character literal (`'x'`, `'\n'`, `'\u{7b}'`) starts at `at`, where it ends; a lifetime or a
/// label (`'a`) is not one.
fn char_literal_end(text: &[char], at: usize) -> Option<usize> {
    match text.get(at + 1) {
        // The escaped character may itself be a quote (`'\''`): the closing quote comes after it.
        Some('\\') => {
            let close = text.get(at + 3..)?.iter().position(|c| *c == '\'')?;
            Some(at + 3 + close + 1)
        }
        Some(_) if text.get(at + 2) == Some(&'\'') => Some(at + 3),
        _ => None,
    }
}

/// The text with comments and the insides of string and character literals blanked out.
fn code_only(text: &str) -> Vec<char> {
    let text: Vec<char> = text.chars().collect();
    let mut code = text.clone();
    let mut i = 0;
    while i < text.len() {
        let starts_word = i == 0 || !is_ident(text[i - 1]);
        let end = match text[i] {
            '/' if text.get(i + 1) == Some(&'/') => text[i..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(text.len(), |n| i + n),
            '/' if text.get(i + 1) == Some(&'*') => block_comment_end(&text, i),
            '"' => string_end(&text, i),
            '\'' => char_literal_end(&text, i).unwrap_or(i + 1),
            'b' | 'c' | 'r' if starts_word => raw_string_end(&text, i).unwrap_or(i + 1),
            _ => i + 1,
        };
        if end > i + 1 {
            blank(&mut code, i, end);
        }
        i = end;
    }
    code
}

/// Where the brace that closes the one at `open` stands.
fn matching_brace(code: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in code.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Where the body of a function whose signature starts at `from` opens: the first `{` outside brackets
/// and parentheses, unless a `;` (a declaration without a body) comes first.
fn body_start(code: &[char], from: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in code.iter().enumerate().skip(from) {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            '{' if depth == 0 => return Some(i),
            ';' if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// The name after the `fn` keyword at `at`, if this `fn` is an item (not a `fn(..)` pointer type).
fn item_name(code: &[char], at: usize) -> Option<String> {
    let is_fn = code[at] == 'f' && code.get(at + 1) == Some(&'n');
    let before_is_word = at > 0 && is_ident(code[at - 1]);
    let after_is_word = code.get(at + 2).is_some_and(|c| is_ident(*c));
    if !is_fn || before_is_word || after_is_word {
        return None;
    }
    let rest = &code[at + 2..];
    let start = rest.iter().position(|c| !c.is_whitespace())?;
    let name: String = rest[start..]
        .iter()
        .enumerate()
        .take_while(|(n, c)| is_ident(**c) || (*n == 0 && **c == '$'))
        .map(|(_, c)| *c)
        .collect();
    (!name.is_empty() && name != "$").then_some(name)
}

/// Every function with a body in a file's text.
fn functions(text: &str) -> Vec<Function> {
    let code = code_only(text);
    let line_at = |index: usize| code[..index].iter().filter(|c| **c == '\n').count() + 1;
    let mut found = Vec::new();
    for at in 0..code.len().saturating_sub(1) {
        let Some(name) = item_name(&code, at) else {
            continue;
        };
        let Some(close) = body_start(&code, at).and_then(|open| matching_brace(&code, open)) else {
            continue;
        };
        let line = line_at(at);
        found.push(Function {
            name,
            line,
            lines: line_at(close) - line + 1,
        });
    }
    found
}

#[test]
fn no_function_in_src_is_longer_than_the_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = sources::rust_files(&root.join("src"));
    assert!(!files.is_empty(), "no source files found under src/");
    let mut too_long = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(root).unwrap().display();
        for function in functions(&text) {
            if function.lines > MAX_LINES {
                too_long.push(format!(
                    "{shown}:{}: `{}` spans {} lines",
                    function.line, function.name, function.lines
                ));
            }
        }
    }
    assert!(
        too_long.is_empty(),
        "functions longer than {MAX_LINES} lines (split them into functions with one job each):\n{}",
        too_long.join("\n")
    );
}

#[test]
fn the_scanner_measures_functions_and_ignores_literals_and_comments() {
    let long_body = "    let x = 1;\n".repeat(MAX_LINES);
    let sample = format!(
        "// fn commented_out() {{\n\
         fn short(f: impl Fn(u8) -> u8, g: fn(u8) -> u8) -> [u8; 2] {{\n\
         \x20   let brace = \"}}\"; let c = '{{'; let r = r#\"}}\"#; let q = ['\\'', b'{{'];\n\
         \x20   [f(0), g(1)]\n\
         }}\n\
         trait T {{ fn declared(&self) -> u8; }}\n\
         fn long<'a>(s: &'a str) -> &'a str {{\n\
         {long_body}\
         \x20   fn nested() {{ /* }} fn in_a_comment() {{ */ }}\n\
         \x20   s\n\
         }}\n"
    );
    let found = functions(&sample);
    let expected = [
        ("short", 2, 4),
        ("long", 7, MAX_LINES + 4),
        ("nested", 8 + MAX_LINES, 1),
    ];
    let expected: Vec<Function> = expected
        .iter()
        .map(|(name, line, lines)| Function {
            name: name.to_string(),
            line: *line,
            lines: *lines,
        })
        .collect();
    assert_eq!(found, expected);
}
