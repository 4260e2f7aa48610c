//! Job, item and file states, stored as short snake_case words and mapped to the public API's words.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A stored state word that this version does not know (a newer writer, or a corrupted row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word stored in the database.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(UnknownValue { kind: $kind, value: s.to_owned() }),
                }
            }
        }
    };
}

word_enum!(
    /// What a job does.
    JobKind, "job kind" { Import => "import", Export => "export", Sync => "sync" }
);

word_enum!(
    /// A cloud provider Ferry can connect to.
    Provider, "provider" { GoogleDrive => "google_drive" }
);

word_enum!(
    /// A job's lifecycle. Stored words follow the worker's view; [`JobStatus::api_name`] gives the public words.
    JobStatus, "job status" {
        Pending => "pending",
        Processing => "processing",
        Completed => "completed",
        CompletedWithErrors => "completed_with_errors",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

word_enum!(
    /// One file's progress within a job.
    ItemStatus, "item status" {
        Pending => "pending",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

word_enum!(
    /// Who stored a file version's bytes: Ferry itself (an upload) or Drive (an import).
    VersionProvider, "version provider" { Internal => "internal", Drive => "drive" }
);

word_enum!(
    /// A stored file: a placeholder until its bytes have arrived.
    FileStatus, "file status" { Pending => "pending", Ready => "ready", Failed => "failed" }
);

impl JobStatus {
    /// The status word of the public API (`processing` is shown as `in_progress`,
    /// `completed_with_errors` as `partial`).
    pub fn api_name(&self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Processing => "in_progress",
            JobStatus::Completed => "completed",
            JobStatus::CompletedWithErrors => "partial",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Parses either the stored word or the public word (clients filter by the public one).
    pub fn from_api_name(value: &str) -> Result<Self, UnknownValue> {
        match value {
            "in_progress" => Ok(JobStatus::Processing),
            "partial" => Ok(JobStatus::CompletedWithErrors),
            other => other.parse(),
        }
    }

    /// A finished job never changes status again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::CompletedWithErrors | JobStatus::Failed | JobStatus::Cancelled)
    }
}

impl ItemStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(self, ItemStatus::Succeeded | ItemStatus::Failed | ItemStatus::Cancelled)
    }
}

/// A job's item counters, from which its status follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobCounts {
    pub total: i32,
    pub completed: i32,
    pub failed: i32,
    pub cancelled: i32,
}

impl JobCounts {
    pub fn finished(&self) -> i32 {
        self.completed + self.failed + self.cancelled
    }

    /// The status a job has once these counters are true. `started` says whether any item was picked up yet.
    pub fn status(&self, started: bool) -> JobStatus {
        if self.finished() < self.total {
            return if started || self.finished() > 0 { JobStatus::Processing } else { JobStatus::Pending };
        }
        match (self.completed, self.failed, self.cancelled) {
            (c, 0, 0) if c == self.total => JobStatus::Completed,
            (0, _, 0) => JobStatus::Failed,
            (0, 0, _) => JobStatus::Cancelled,
            (0, _, _) if self.cancelled > 0 => JobStatus::Cancelled,
            _ => JobStatus::CompletedWithErrors,
        }
    }
}

impl JobCounts {
    /// The status of a job whose cancel was requested: it keeps running until its in-flight items finish,
    /// then it is `cancelled`, whatever finished before the cancel.
    pub fn status_after_cancel(&self) -> JobStatus {
        if self.finished() < self.total { JobStatus::Processing } else { JobStatus::Cancelled }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_job_ends_cancelled_once_its_running_items_finish() {
        assert_eq!(counts(3, 1, 0, 1).status_after_cancel(), JobStatus::Processing);
        assert_eq!(counts(3, 1, 0, 2).status_after_cancel(), JobStatus::Cancelled);
        assert_eq!(counts(3, 0, 1, 2).status_after_cancel(), JobStatus::Cancelled);
    }

    fn counts(total: i32, completed: i32, failed: i32, cancelled: i32) -> JobCounts {
        JobCounts { total, completed, failed, cancelled }
    }

    #[test]
    fn job_status_follows_the_counters() {
        assert_eq!(counts(3, 0, 0, 0).status(false), JobStatus::Pending);
        assert_eq!(counts(3, 0, 0, 0).status(true), JobStatus::Processing);
        assert_eq!(counts(3, 1, 0, 0).status(false), JobStatus::Processing);
        assert_eq!(counts(3, 3, 0, 0).status(true), JobStatus::Completed);
        assert_eq!(counts(3, 2, 1, 0).status(true), JobStatus::CompletedWithErrors);
        assert_eq!(counts(3, 0, 3, 0).status(true), JobStatus::Failed);
        assert_eq!(counts(3, 0, 0, 3).status(true), JobStatus::Cancelled);
        assert_eq!(counts(3, 0, 1, 2).status(true), JobStatus::Cancelled);
        assert_eq!(counts(3, 1, 0, 2).status(true), JobStatus::CompletedWithErrors);
    }

    #[test]
    fn public_status_words_match_the_api() {
        let shown: Vec<_> = JobStatus::ALL.iter().map(JobStatus::api_name).collect();
        assert_eq!(shown, ["pending", "in_progress", "completed", "partial", "failed", "cancelled"]);
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::from_api_name(status.api_name()), Ok(*status));
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(*status));
        }
    }

    #[test]
    fn unknown_words_are_errors() {
        let err = "exploded".parse::<ItemStatus>().unwrap_err();
        assert_eq!(err.to_string(), "unknown item status `exploded`");
    }
}
