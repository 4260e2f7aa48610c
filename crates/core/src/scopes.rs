//! API key scopes: what a key may do. A key with no scope list may do everything; otherwise each request needs
//! the scope its route requires (`library:write` to change a library, `files:read` to list files, ...).

use std::fmt;

/// One permission an API key can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    LibraryRead,
    LibraryWrite,
    LibrarySync,
    FilesRead,
    FilesWrite,
    CloudStorageRead,
    CloudStorageWrite,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::LibraryRead,
        Scope::LibraryWrite,
        Scope::LibrarySync,
        Scope::FilesRead,
        Scope::FilesWrite,
        Scope::CloudStorageRead,
        Scope::CloudStorageWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::LibraryRead => "library:read",
            Scope::LibraryWrite => "library:write",
            Scope::LibrarySync => "library:sync",
            Scope::FilesRead => "files:read",
            Scope::FilesWrite => "files:write",
            Scope::CloudStorageRead => "cloud-storage:read",
            Scope::CloudStorageWrite => "cloud-storage:write",
        }
    }

    /// The scopes a name stands for: one scope, or every scope of a family for `family:*`.
    pub fn expand(name: &str) -> Result<Vec<Scope>, UnknownScope> {
        let name = name.trim();
        if let Some(family) = name.strip_suffix(":*") {
            let matching: Vec<Scope> = Scope::ALL
                .into_iter()
                .filter(|s| s.as_str().split_once(':').is_some_and(|(f, _)| f == family))
                .collect();
            if matching.is_empty() {
                return Err(UnknownScope(name.to_owned()));
            }
            return Ok(matching);
        }
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .map(|s| vec![s])
            .ok_or_else(|| UnknownScope(name.to_owned()))
    }

    /// A comma-separated list (`library:read,files:*`), expanded, sorted and without repeats.
    pub fn parse_list(list: &str) -> Result<Vec<Scope>, UnknownScope> {
        let mut scopes = Vec::new();
        for name in list.split(',').filter(|n| !n.trim().is_empty()) {
            scopes.extend(Scope::expand(name)?);
        }
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not one of [`Scope::ALL`] (or a `family:*` of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScope(pub String);

impl fmt::Display for UnknownScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        write!(f, "unknown scope {:?}; known scopes: {} (or family:*)", self.0, known.join(", "))
    }
}

impl std::error::Error for UnknownScope {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_expand_families_and_refuse_unknown_names() {
        assert_eq!(
            Scope::parse_list("files:*, library:sync,files:read").expect("valid"),
            vec![Scope::LibrarySync, Scope::FilesRead, Scope::FilesWrite]
        );
        assert_eq!(Scope::parse_list("library:*").expect("valid").len(), 3);
        assert_eq!(Scope::parse_list("library:delete"), Err(UnknownScope("library:delete".into())));
        assert_eq!(Scope::parse_list("nothing:*"), Err(UnknownScope("nothing:*".into())));
    }
}
