//! The test-support crate never ships: no workspace member names it among the dependencies its
//! product is built with (`[dependencies]`, `[build-dependencies]`), only under
//! `[dev-dependencies]`, so `cargo tree -e normal` of a product crate never lists it. And it is
//! never published.

use std::path::{Path, PathBuf};

const SELF: &str = "waotp-test-support";

fn manifest(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn no_product_crate_builds_with_the_test_support_crate() {
    let workspace = manifest(&root().join("Cargo.toml"));
    let members = workspace["workspace"]["members"].as_array().expect("workspace members");
    let mut checked = 0;
    for member in members.iter().filter_map(|m| m.as_str()) {
        let crate_manifest = manifest(&root().join(member).join("Cargo.toml"));
        if crate_manifest["package"]["name"].as_str() == Some(SELF) {
            assert_eq!(crate_manifest["package"].get("publish").and_then(|p| p.as_bool()), Some(false));
            continue;
        }
        for table in ["dependencies", "build-dependencies"] {
            let deps = crate_manifest.get(table).and_then(|t| t.as_table());
            assert!(!deps.is_some_and(|d| d.contains_key(SELF)), "{member} has {SELF} in [{table}]");
        }
        checked += 1;
    }
    assert!(checked >= 6, "{checked} product crates");
}
