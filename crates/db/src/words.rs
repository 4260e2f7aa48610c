//! The diesel mapping of the state words (`ferry_core::{JobKind, JobStatus, ItemStatus, FileStatus}`): rows
//! carry the enums, and a stored word this version does not know fails the read (a deserialization error) instead
//! of becoming a string that every caller compares on its own.
//!
//! `ferry_core` stays free of diesel, so the mapping is a local wrapper (`Word<T>`) that row structs name in
//! `#[diesel(deserialize_as = ...)]`; queries filter with the enum's `as_str()`.

use std::str::FromStr;

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::sql_types::Text;
use ferry_core::{FileStatus, ItemStatus, JobKind, JobStatus, VersionProvider};

/// A state word read from a `TEXT` column.
#[derive(Debug, Clone, Copy)]
pub struct Word<T>(pub T);

impl<T> FromSql<Text, Pg> for Word<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
        Ok(Word(text.parse::<T>()?))
    }
}

// What `#[derive(FromSqlRow)]` would write; the derive cannot take the generic bounds.
impl<T> diesel::Queryable<Text, Pg> for Word<T>
where
    Word<T>: FromSql<Text, Pg>,
{
    type Row = Self;

    fn build(row: Self) -> deserialize::Result<Self> {
        Ok(row)
    }
}

macro_rules! unwrap_word {
    ($($ty:ty),+) => {
        $(impl From<Word<$ty>> for $ty {
            fn from(word: Word<$ty>) -> $ty {
                word.0
            }
        })+
    };
}

unwrap_word!(JobKind, JobStatus, ItemStatus, FileStatus, VersionProvider);
