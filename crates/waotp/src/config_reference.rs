//! `waotp config reference`: the configuration reference as Markdown, generated from the one
//! table of keys ([`KEYS`]: name, secret) and `config.example.toml` (each key's default and its
//! comment), with each key's environment variables and command-line flag. The book keeps the
//! output as `docs/src/operations/configuration-reference.md`; a test fails when the committed
//! page is not what this prints, or when the docs name a `WAOTP_…` variable no key has.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::bail;

use crate::settings::{env_name, secret_file_env, KEYS};

/// Where the generated page is kept, from the repository's root.
#[cfg(test)]
pub const PAGE: &str = "docs/src/operations/configuration-reference.md";

/// The keys that share one comment of `config.example.toml`, in its order.
#[derive(Debug, PartialEq, Eq)]
struct Group {
    /// The file's section (`# --- the server ---`), if any.
    section: Option<String>,
    /// Each key with its default: `None` when the file leaves it unset (`# key = …`).
    keys: Vec<(&'static str, Option<String>)>,
    comment: Vec<String>,
}

/// Reads `example` (the text of `config.example.toml`) into groups: a key takes the comment
/// lines right above it; keys on the lines right below it (no blank line, no comment between)
/// share that comment. An error names a key of [`KEYS`] the file does not have, or one
/// without a comment.
fn groups(example: &str) -> anyhow::Result<Vec<Group>> {
    let mut groups: Vec<Group> = Vec::new();
    let mut section = None;
    let mut comment: Vec<String> = Vec::new();
    // Whether the previous line was a key (so a key right below joins its group).
    let mut after_key = false;
    // The file's own introduction: its first block of comments, up to the first blank line.
    let mut intro = true;
    for line in example.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            intro = false;
            comment.clear();
            after_key = false;
            continue;
        }
        if intro {
            continue;
        }
        if let Some(title) = line.strip_prefix("# ---") {
            section = Some(title.trim_end_matches('-').trim().to_owned());
            comment.clear();
            after_key = false;
            continue;
        }
        let (commented, body) = match line.strip_prefix('#') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, line),
        };
        match key_line(body) {
            Some((key, value)) => {
                let default = if commented { None } else { Some(value) };
                if comment.is_empty() && after_key {
                    groups.last_mut().expect("a group before").keys.push((key, default));
                } else {
                    groups.push(Group {
                        section: section.clone(),
                        keys: vec![(key, default)],
                        comment: std::mem::take(&mut comment),
                    });
                }
                after_key = true;
            }
            None if commented => {
                let text = body.strip_prefix("SECRET.").map_or(body, str::trim_start);
                if !text.is_empty() {
                    comment.push(text.to_owned());
                }
                after_key = false;
            }
            None => bail!("config.example.toml: `{line}` is neither a comment nor a known key"),
        }
    }
    for (key, _) in KEYS {
        let Some(group) = groups.iter().find(|g| g.keys.iter().any(|(k, _)| k == key)) else {
            bail!("config.example.toml does not document the key `{key}` (every key of settings::KEYS must be there)");
        };
        if group.comment.is_empty() {
            bail!("config.example.toml: the key `{key}` has no comment above it (or above the keys it follows)");
        }
    }
    Ok(groups)
}

/// `key = value` of a known key, with the value as text.
fn key_line(line: &str) -> Option<(&'static str, String)> {
    let (name, value) = line.split_once('=')?;
    let (key, _) = KEYS.iter().find(|(k, _)| *k == name.trim())?;
    // As the file writes it (a TOML value), once it reads as one.
    let _: toml::Table = line.parse().ok()?;
    Some((key, value.trim().to_owned()))
}

/// Each key's defaults in `config.example.toml`: `None` when unset.
#[cfg(test)]
pub fn defaults(example: &str) -> anyhow::Result<BTreeMap<&'static str, Option<String>>> {
    Ok(groups(example)?.into_iter().flat_map(|g| g.keys).collect())
}

/// Flags: (flag, the commands it applies to when not only `serve`).
pub type Flags = BTreeMap<&'static str, (String, Option<&'static str>)>;

/// The page: `example` is `config.example.toml`, `flags` each key's command-line flag, if it has
/// one (as [`crate::cli::key_flags`] reads them off the command line's definition).
pub fn reference(example: &str, flags: &Flags) -> anyhow::Result<String> {
    let mut out = String::new();
    out.push_str(
        "# Configuration reference\n\n\
         <!-- Generated by `waotp config reference` from the keys of crates/waotp/src/settings.rs and\n     \
         config.example.toml: do not edit. After changing either, regenerate it:\n     \
         cargo run -- config reference > docs/src/operations/configuration-reference.md -->\n\n\
         Every setting, in the order of `config.example.toml`, which holds each default (built into\n\
         the binary) and the text below it. A setting is read from, each overriding the one before:\n\
         the default, the configuration file (the key), the environment (`WAOTP_` and the key in\n\
         capitals) and the command-line flag, where there is one (see\n\
         [configuration](configuration.md#layers)). A secret can also be read from a file: the\n\
         environment's `…_FILE`, or the key with `_file` in the configuration file; it is never\n\
         printed. \"Unset\" means off, or as the text says.\n",
    );
    let mut section = None;
    for group in groups(example)? {
        if group.section.is_some() && group.section != section {
            section = group.section.clone();
            let title = section.as_deref().unwrap_or_default();
            let mut chars = title.chars();
            let title: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
            let _ = write!(out, "\n## {title}\n");
        }
        let names: Vec<String> = group.keys.iter().map(|(k, _)| format!("`{k}`")).collect();
        let _ = write!(out, "\n### {}\n\n", names.join(", "));
        out.push_str("| key | environment | command line | default |\n|---|---|---|---|\n");
        let anchors = group.keys.len() > 1;
        for (key, default) in &group.keys {
            let secret = KEYS.iter().any(|(k, s)| k == key && *s);
            let anchor = if anchors { format!("<a id=\"{key}\"></a>") } else { String::new() };
            let name =
                if secret { format!("{anchor}`{key}` (secret; or `{key}_file`)") } else { format!("{anchor}`{key}`") };
            let env = if secret {
                format!("`{}`, `{}`", env_name(key), secret_file_env(key))
            } else {
                format!("`{}`", env_name(key))
            };
            let flag = match flags.get(key) {
                Some((flag, Some(scope))) => format!("`{flag}` ({scope})"),
                Some((flag, None)) => format!("`{flag}`"),
                None => "—".to_owned(),
            };
            let default = match default {
                Some(v) => format!("`{v}`"),
                None => "unset".to_owned(),
            };
            let _ = writeln!(out, "| {name} | {env} | {flag} | {default} |");
        }
        out.push('\n');
        out.push_str(&escape(&group.comment.join("\n")));
        out.push('\n');
    }
    Ok(out)
}

/// The comment as Markdown text: the file's comments are plain text, so what Markdown would
/// read as markup at the start of a line (a list, a heading, a quote) or as HTML is escaped.
fn escape(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.replace('<', "&lt;");
            match line.chars().next() {
                Some('#' | '>' | '-' | '+' | '*' | '|') => format!("\\{line}"),
                _ => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
#[path = "config_reference/tests.rs"]
mod tests;
