//! The settings table, `config.example.toml`, the code's defaults and the docs agree: on each
//! key, its default and its environment variables.

use std::path::{Path, PathBuf};

use super::*;
use crate::settings::{Settings, DEFAULTS, OTHER_ENV};

/// Variables the docs may name that are not settings: the test suites' and `scripts/test`'s.
const TEST_ENV: &[&str] = &[
    "WAOTP_TEST_POSTGRES",
    "WAOTP_TEST_POSTGRES_DIRECT",
    "WAOTP_TEST_PG_BIN",
    "WAOTP_TEST_PGBOUNCER",
    "WAOTP_CHROMIUM",
    "WAOTP_CHROMEDRIVER",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn generated() -> String {
    reference(DEFAULTS, &crate::cli::key_flags()).expect("the reference of config.example.toml")
}

/// The documentation the checks read: the README, CONTRIBUTING.md, `config.example.toml` and
/// every page of the book, as (path from the root, text).
fn docs() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let root = repo();
    let mut paths: Vec<PathBuf> =
        ["README.md", "CONTRIBUTING.md", "config.example.toml"].iter().map(|p| root.join(p)).collect();
    walk(&root.join("docs/src"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.strip_prefix(&root).unwrap_or(&p).display().to_string(), text)
        })
        .collect()
}

#[test]
fn the_committed_reference_is_the_generated_one() {
    let committed = std::fs::read_to_string(repo().join(PAGE)).unwrap_or_default();
    let generated = generated();
    let line = committed
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .map_or_else(|| committed.lines().count().min(generated.lines().count()) + 1, |i| i + 1);
    assert!(
        committed == generated,
        "{PAGE} is not what `waotp config reference` prints (first difference at line {line}): regenerate it with\n  \
         cargo run -- config reference > {PAGE}"
    );
}

#[test]
fn the_reference_names_every_key_its_variables_and_its_flag() {
    let page = generated();
    let flags = crate::cli::key_flags();
    for (key, secret) in KEYS {
        let heading = page.lines().find(|l| l.starts_with("### ") && l.contains(&format!("`{key}`")));
        assert!(heading.is_some(), "no heading names `{key}`");
        let row = page.lines().find(|l| l.starts_with('|') && l.contains(&format!("`{key}`"))).expect("a row");
        assert!(row.contains(&format!("`{}`", env_name(key))), "{row}");
        assert_eq!(row.contains(&format!("`{}`", secret_file_env(key))), *secret, "{row}");
        if let Some((flag, _)) = flags.get(key) {
            assert!(row.contains(&format!("`{flag}`")), "{row}");
        }
    }
    assert_eq!(flags.get("listen"), Some(&("waotp serve --listen".to_owned(), None)));
    assert_eq!(flags.get("database_url"), Some(&("--database-url".to_owned(), Some("every command"))));
    assert_eq!(flags.get("server_url").map(|(f, _)| f.as_str()), Some("--server"));
}

#[test]
fn every_flag_of_serve_sets_a_key() {
    use clap::CommandFactory;
    let cli = crate::cli::Cli::command();
    let serve = cli.find_subcommand("serve").expect("serve");
    let flags = crate::cli::key_flags();
    for long in serve.get_arguments().filter_map(|a| a.get_long()).filter(|l| !["help", "version"].contains(l)) {
        assert!(
            flags.values().any(|(f, _)| f == &format!("waotp serve --{long}")),
            "`waotp serve --{long}` is no key's flag: add the key to settings::KEYS and config.example.toml"
        );
    }
}

/// `config.example.toml` without the lines of `key` (its line, and the comment right above).
fn without(key: &str, comment_too: bool) -> String {
    let lines: Vec<&str> = DEFAULTS.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("{key} =")) || l.starts_with(&format!("# {key} =")))
        .expect("the key's line");
    let mut from = at;
    while comment_too && from > 0 && lines[from - 1].starts_with('#') && !lines[from - 1].starts_with("# ---") {
        from -= 1;
    }
    let keep = if comment_too { from..at } else { at..at + 1 };
    lines.iter().enumerate().filter(|(i, _)| !keep.contains(i)).map(|(_, l)| format!("{l}\n")).collect()
}

#[test]
fn a_key_missing_from_the_example_or_without_a_comment_is_an_error() {
    let flags = Flags::new();
    let e = reference(&without("retention", false), &flags).map(|_| ()).expect_err("a missing key");
    assert!(e.to_string().contains("does not document the key `retention`"), "{e}");
    // After a blank line: a key right below another one shares that one's comment instead.
    let e = reference(&without("server_secret", true), &flags).map(|_| ()).expect_err("a key without its comment");
    assert!(e.to_string().contains("`server_secret` has no comment"), "{e}");
    assert!(reference(DEFAULTS, &flags).is_ok());
}

#[test]
fn the_code_defaults_are_the_examples() {
    let from_example = crate::cli::config_of(&Settings::defaults_only()).expect("the defaults are valid");
    let built_in = waotp_server::Config::new(waotp_server::config::DEFAULT_DATABASE_URL);
    assert_eq!(format!("{from_example:#?}"), format!("{built_in:#?}"), "config.example.toml and Config::new disagree");
}

/// Each `WAOTP_…` name in `text`, with its line number.
fn waotp_names(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("WAOTP_") {
            let tail = &rest[at..];
            let end =
                tail.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
            found.push((i + 1, tail[..end].to_owned()));
            rest = &tail[end..];
        }
    }
    found
}

#[test]
fn the_docs_name_only_variables_waotp_knows() {
    let mut known: Vec<String> = OTHER_ENV.iter().chain(TEST_ENV).map(|v| v.to_string()).collect();
    for (key, secret) in KEYS {
        known.push(env_name(key));
        if *secret {
            known.push(secret_file_env(key));
        }
    }
    let mut unknown = Vec::new();
    for (path, text) in docs() {
        for (line, name) in waotp_names(&text) {
            // `WAOTP_…`, `WAOTP_*`, `WAOTP_WHATSAPP_…`: a prefix of known names.
            let ok =
                if name.ends_with('_') { known.iter().any(|k| k.starts_with(&name)) } else { known.contains(&name) };
            if !ok {
                unknown.push(format!("{path}:{line}: {name}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "variables that are no setting's (settings::KEYS) nor known otherwise:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn the_name_scanner_finds_each_name() {
    assert_eq!(
        waotp_names("a `WAOTP_LOG=info` and WAOTP_SERVER_SECRET_FILE, `WAOTP_*`\nWAOTP_X1"),
        vec![
            (1, "WAOTP_LOG".into()),
            (1, "WAOTP_SERVER_SECRET_FILE".into()),
            (1, "WAOTP_".into()),
            (2, "WAOTP_X1".into())
        ]
    );
}

/// A Markdown table row's cells (a `\|` is part of its cell).
fn cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|');
    let row = row.strip_suffix('|').unwrap_or(row);
    let mut cells = vec![String::new()];
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => cells.last_mut().unwrap().push(chars.next().unwrap()),
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// The key a table row is about: its first cell names one key, as the key or its variable.
fn row_key(first: &str) -> Option<&'static str> {
    let names: Vec<&str> = first.split('`').skip(1).step_by(2).collect();
    let [name] = names[..] else { return None };
    KEYS.iter().map(|(k, _)| *k).find(|k| name == *k || name == env_name(k))
}

/// A default as written in a doc or the example: without code marks or quotes.
fn plain(v: &str) -> String {
    v.chars().filter(|c| !matches!(c, '`' | '"')).collect::<String>().trim().to_owned()
}

#[test]
fn the_docs_tables_give_each_key_its_default() {
    let defaults = defaults(DEFAULTS).expect("the example's defaults");
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (path, text) in docs() {
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            if !lines[i].trim_start().starts_with('|') {
                i += 1;
                continue;
            }
            let header = cells(lines[i]);
            let column = header.iter().position(|h| h.to_lowercase().contains("default"));
            i += 1;
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                let row = cells(lines[i]);
                let key = column.and_then(|_| row.first().and_then(|c| row_key(c)));
                if let (Some(key), Some(column)) = (key, column) {
                    if let (Some(Some(default)), Some(cell)) = (defaults.get(key), row.get(column)) {
                        if !plain(default).is_empty() {
                            checked += 1;
                            if plain(cell) != plain(default) {
                                wrong.push(format!(
                                    "{path}:{}: `{key}`: {cell} (config.example.toml: {default})",
                                    i + 1
                                ));
                            }
                        }
                    }
                }
                i += 1;
            }
        }
    }
    assert!(wrong.is_empty(), "defaults that disagree with config.example.toml:\n{}", wrong.join("\n"));
    assert!(checked >= KEYS.len() / 2, "only {checked} documented defaults found: is the reference page there?");
}
