//! The README's error table is the code's: every code with its status, nothing more, nothing less.

use std::collections::BTreeMap;

use ferry_gateway::error::ErrorCode;

#[test]
fn the_readme_error_table_matches_the_error_codes() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README.md");
    let documented: BTreeMap<String, u16> = readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let status = cells.get(2)?.parse().ok()?;
            code.chars().all(|c| c.is_ascii_uppercase() || c == '_').then(|| (code.to_owned(), status))
        })
        .collect();
    let actual: BTreeMap<String, u16> =
        ErrorCode::ALL.iter().map(|code| (code.as_str().to_owned(), code.status().as_u16())).collect();
    assert_eq!(
        documented, actual,
        "README.md's error table must list exactly the codes of ErrorCode with their status"
    );
}
