//! Partial-response field masks (`fields=nextPageToken,files(id,name)`, `files/id`, `*`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::DriveError;

#[derive(Debug, Clone, PartialEq)]
pub enum Mask {
    All,
    Fields(BTreeMap<String, Mask>),
}

/// Every field of Drive's File resource: asking for one we do not fill is fine, asking for a
/// name Drive does not know is a 400.
pub const FILE_FIELDS: &[&str] = &[
    "kind",
    "id",
    "name",
    "mimeType",
    "description",
    "starred",
    "trashed",
    "explicitlyTrashed",
    "trashingUser",
    "trashedTime",
    "parents",
    "properties",
    "appProperties",
    "spaces",
    "version",
    "webContentLink",
    "webViewLink",
    "iconLink",
    "hasThumbnail",
    "thumbnailLink",
    "thumbnailVersion",
    "viewedByMe",
    "viewedByMeTime",
    "createdTime",
    "modifiedTime",
    "modifiedByMeTime",
    "modifiedByMe",
    "sharedWithMeTime",
    "sharingUser",
    "owners",
    "teamDriveId",
    "driveId",
    "lastModifyingUser",
    "shared",
    "ownedByMe",
    "capabilities",
    "viewersCanCopyContent",
    "copyRequiresWriterPermission",
    "writersCanShare",
    "permissions",
    "permissionIds",
    "hasAugmentedPermissions",
    "folderColorRgb",
    "originalFilename",
    "fullFileExtension",
    "fileExtension",
    "md5Checksum",
    "sha1Checksum",
    "sha256Checksum",
    "size",
    "quotaBytesUsed",
    "headRevisionId",
    "contentHints",
    "imageMediaMetadata",
    "videoMediaMetadata",
    "isAppAuthorized",
    "exportLinks",
    "shortcutDetails",
    "contentRestrictions",
    "resourceKey",
    "linkShareMetadata",
    "labelInfo",
    "inheritedPermissionsDisabled",
    "downloadRestrictions",
];

pub const FILE_LIST_FIELDS: &[&str] = &["kind", "incompleteSearch", "nextPageToken", "files"];
pub const CHANGE_LIST_FIELDS: &[&str] = &["kind", "nextPageToken", "newStartPageToken", "changes"];
pub const CHANGE_FIELDS: &[&str] = &[
    "kind",
    "changeType",
    "type",
    "time",
    "removed",
    "fileId",
    "file",
    "driveId",
    "drive",
    "teamDriveId",
    "teamDrive",
];
pub const ABOUT_FIELDS: &[&str] = &[
    "kind",
    "user",
    "storageQuota",
    "driveThemes",
    "canCreateDrives",
    "importFormats",
    "exportFormats",
    "appInstalled",
    "maxUploadSize",
    "maxImportSizes",
    "folderColorPalette",
    "teamDriveThemes",
    "canCreateTeamDrives",
];
pub const GENERATED_IDS_FIELDS: &[&str] = &["kind", "space", "ids"];
pub const DRIVE_LIST_FIELDS: &[&str] = &["kind", "nextPageToken", "drives"];

impl Mask {
    /// Parses a mask; `Err` carries the text Google would name in "Invalid field selection".
    pub fn parse(input: &str) -> Result<Mask, String> {
        let mut p = Parser { s: input.as_bytes(), i: 0 };
        let mask = p.list(false)?;
        Ok(mask.normalized())
    }

    /// Checks the top-level names against `allowed`, returning the first unknown one.
    pub fn check(&self, allowed: &[&str]) -> Result<(), DriveError> {
        if let Mask::Fields(map) = self {
            for name in map.keys() {
                if name != "*" && !allowed.contains(&name.as_str()) {
                    return Err(DriveError::invalid_fields(name));
                }
            }
        }
        Ok(())
    }

    /// Checks `child`'s sub-mask (e.g. `files(...)`) against `allowed`.
    pub fn check_child(&self, child: &str, allowed: &[&str]) -> Result<(), DriveError> {
        if let Mask::Fields(map) = self
            && let Some(sub) = map.get(child)
        {
            sub.check(allowed)?;
        }
        Ok(())
    }

    pub fn apply(&self, value: &Value) -> Value {
        match (self, value) {
            (Mask::All, v) => v.clone(),
            (Mask::Fields(_), Value::Array(items)) => Value::Array(items.iter().map(|v| self.apply(v)).collect()),
            (Mask::Fields(map), Value::Object(obj)) => {
                let mut out = Map::new();
                if let Some(star) = map.get("*") {
                    for (k, v) in obj {
                        let sub = map.get(k).unwrap_or(star);
                        out.insert(k.clone(), sub.apply(v));
                    }
                } else {
                    for (k, sub) in map {
                        if let Some(v) = obj.get(k) {
                            out.insert(k.clone(), sub.apply(v));
                        }
                    }
                }
                Value::Object(out)
            }
            (Mask::Fields(_), v) => v.clone(),
        }
    }

    fn insert(&mut self, path: &[String], sub: Mask) {
        let Mask::Fields(map) = self else {
            return; // already everything
        };
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if rest.is_empty() {
            match map.get_mut(first) {
                Some(existing) => existing.merge(sub),
                None => {
                    map.insert(first.clone(), sub);
                }
            }
        } else {
            map.entry(first.clone()).or_insert_with(|| Mask::Fields(BTreeMap::new())).insert(rest, sub);
        }
    }

    fn merge(&mut self, other: Mask) {
        match (&mut *self, other) {
            (Mask::All, _) => {}
            (_, Mask::All) => *self = Mask::All,
            (Mask::Fields(_), Mask::Fields(other)) => {
                for (k, v) in other {
                    self.insert(&[k], v);
                }
            }
        }
    }

    /// A bare `*` at a level means everything at that level.
    fn normalized(self) -> Mask {
        match self {
            Mask::All => Mask::All,
            Mask::Fields(map) => {
                if map.len() == 1 && map.get("*") == Some(&Mask::All) {
                    return Mask::All;
                }
                Mask::Fields(map.into_iter().map(|(k, v)| (k, v.normalized())).collect())
            }
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn rest(&self) -> String {
        String::from_utf8_lossy(&self.s[self.i.min(self.s.len())..]).into_owned()
    }

    fn name(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'*' || c == b'-' || c == b'.' {
                self.i += 1;
            } else {
                break;
            }
        }
        if start == self.i {
            return Err(self.rest());
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn list(&mut self, nested: bool) -> Result<Mask, String> {
        let mut mask = Mask::Fields(BTreeMap::new());
        loop {
            let mut path = vec![self.name()?];
            self.ws();
            while self.peek() == Some(b'/') {
                self.i += 1;
                path.push(self.name()?);
                self.ws();
            }
            let sub = if self.peek() == Some(b'(') {
                self.i += 1;
                let sub = self.list(true)?;
                if self.peek() != Some(b')') {
                    return Err(self.rest());
                }
                self.i += 1;
                sub
            } else {
                Mask::All
            };
            mask.insert(&path, sub);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b')') if nested => return Ok(mask),
                None if !nested => return Ok(mask),
                _ => return Err(self.rest()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_applies_nested_masks() {
        let m = Mask::parse("nextPageToken, files(id,name)").expect("mask");
        let v = json!({"kind":"drive#fileList","nextPageToken":"t","files":[{"id":"a","name":"n","size":"3"}]});
        assert_eq!(m.apply(&v), json!({"nextPageToken":"t","files":[{"id":"a","name":"n"}]}));
        let m = Mask::parse("files/id,kind").expect("mask");
        assert_eq!(m.apply(&v), json!({"kind":"drive#fileList","files":[{"id":"a"}]}));
        assert_eq!(Mask::parse("*").expect("mask"), Mask::All);
        let m = Mask::parse("files(*)").expect("mask");
        assert_eq!(m.apply(&v)["files"][0]["size"], "3");
    }

    #[test]
    fn rejects_garbage() {
        assert!(Mask::parse("files(id").is_err());
        assert!(Mask::parse("a,,b").is_err());
        assert!(Mask::parse("").is_err());
        let m = Mask::parse("bogus").expect("mask");
        assert!(m.check(FILE_FIELDS).is_err());
    }
}
