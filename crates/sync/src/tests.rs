use super::*;

const ROOT: &str = "root-folder";

fn folder(id: &str, parent: &str) -> Recorded {
    Recorded {
        drive_id: id.into(),
        is_folder: true,
        parent: parent.into(),
        name: id.into(),
        content: None,
        in_trash: false,
        ready: true,
    }
}

fn file(id: &str, parent: &str, md5: &str) -> Recorded {
    Recorded {
        drive_id: id.into(),
        is_folder: false,
        parent: parent.into(),
        name: id.into(),
        content: Some(md5.into()),
        in_trash: false,
        ready: true,
    }
}

fn seen_folder(id: &str, parent: &str) -> Observation {
    Observation::Present(Seen {
        drive_id: id.into(),
        is_folder: true,
        parents: vec![parent.into()],
        name: id.into(),
        trashed: false,
        content: None,
    })
}

fn seen_file(id: &str, parent: &str, md5: &str) -> Observation {
    Observation::Present(Seen {
        drive_id: id.into(),
        is_folder: false,
        parents: vec![parent.into()],
        name: id.into(),
        trashed: false,
        content: Some(md5.into()),
    })
}

fn renamed(observation: Observation, name: &str) -> Observation {
    match observation {
        Observation::Present(mut item) => {
            item.name = name.into();
            Observation::Present(item)
        }
        other => other,
    }
}

fn trashed(observation: Observation) -> Observation {
    match observation {
        Observation::Present(mut item) => {
            item.trashed = true;
            Observation::Present(item)
        }
        other => other,
    }
}

fn changes(recorded: &[Recorded], observed: &[Observation]) -> Plan {
    plan(Input { root: ROOT, recorded, observed, full: false, purge: false })
}

#[test]
fn a_first_listing_creates_folders_parents_first_and_adds_every_file() {
    let observed = [
        seen_file("deep-file", "inner", "m3"),
        seen_folder("inner", "outer"),
        seen_folder("outer", ROOT),
        seen_file("top-file", ROOT, "m1"),
    ];
    let plan = plan(Input { root: ROOT, recorded: &[], observed: &observed, full: true, purge: false });
    let kinds: Vec<&str> = plan
        .actions
        .iter()
        .map(|a| match a {
            Action::CreateFolder { drive_id, .. } | Action::AddFile { drive_id, .. } => drive_id.as_str(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["outer", "inner", "deep-file", "top-file"]);
    assert_eq!(plan.transfers(), 2);
    assert!(plan.needs_listing.is_empty(), "a full listing already holds every subtree");
}

#[test]
fn an_unchanged_listing_plans_nothing() {
    let recorded = [folder("docs", ROOT), file("a", "docs", "m1")];
    let observed = [seen_folder("docs", ROOT), seen_file("a", "docs", "m1")];
    let plan = plan(Input { root: ROOT, recorded: &recorded, observed: &observed, full: true, purge: true });
    assert_eq!(plan, Plan::default());
}

#[test]
fn an_edit_is_a_transfer_and_a_rename_or_move_is_not() {
    let recorded =
        [folder("docs", ROOT), file("edited", "docs", "old"), file("renamed", "docs", "m"), file("moved", "docs", "m")];
    let observed = [
        seen_file("edited", "docs", "new"),
        renamed(seen_file("renamed", "docs", "m"), "better name"),
        seen_file("moved", ROOT, "m"),
    ];
    let plan = changes(&recorded, &observed);
    assert_eq!(
        plan.actions,
        [
            Action::Transfer { drive_id: "edited".into(), content: Some("new".into()) },
            Action::UpdateFile { drive_id: "moved".into(), parent: ROOT.into(), name: "moved".into() },
            Action::UpdateFile { drive_id: "renamed".into(), parent: "docs".into(), name: "better name".into() },
        ]
    );
    assert_eq!((plan.renamed_files, plan.deleted_files), (2, 0));
}

#[test]
fn a_file_that_never_arrived_is_transferred_again_even_unchanged() {
    let mut pending = file("a", ROOT, "m1");
    pending.ready = false;
    let plan = changes(&[pending], &[seen_file("a", ROOT, "m1")]);
    assert_eq!(plan.actions, [Action::Transfer { drive_id: "a".into(), content: Some("m1".into()) }]);
}

#[test]
fn trashed_deleted_and_moved_out_files_leave_the_library() {
    let recorded = [file("binned", ROOT, "m"), file("deleted", ROOT, "m"), file("left", ROOT, "m")];
    let observed = [
        trashed(seen_file("binned", ROOT, "m")),
        Observation::Removed("deleted".into()),
        seen_file("left", "some-folder-outside", "m"),
    ];
    let plan = changes(&recorded, &observed);
    assert_eq!(plan.actions, ["binned", "deleted", "left"].map(|id| Action::Trash { drive_id: id.into() }).to_vec());
    assert_eq!(plan.deleted_files, 3);
}

#[test]
fn a_folder_moved_out_takes_its_recorded_contents_except_what_moved_elsewhere_inside() {
    let recorded = [
        folder("team", ROOT),
        folder("sub", "team"),
        file("deep", "sub", "m"),
        file("kept", "team", "m"),
        file("rescued", "team", "m"),
    ];
    // `team` moved out of the library; `rescued` was moved to the top first. Drive reports only those two.
    let observed = [seen_folder("team", "elsewhere"), seen_file("rescued", ROOT, "m")];
    let plan = changes(&recorded, &observed);
    assert_eq!(
        plan.actions,
        [
            Action::UpdateFile { drive_id: "rescued".into(), parent: ROOT.into(), name: "rescued".into() },
            Action::Trash { drive_id: "deep".into() },
            Action::Trash { drive_id: "kept".into() },
            Action::Trash { drive_id: "sub".into() },
            Action::Trash { drive_id: "team".into() },
        ]
    );
    assert_eq!((plan.deleted_files, plan.renamed_files), (2, 1));
}

#[test]
fn a_folder_moved_in_is_created_and_must_be_listed() {
    let observed = [seen_folder("arrived", ROOT), seen_folder("arrived-child", "arrived")];
    let plan = changes(&[], &observed);
    assert_eq!(
        plan.actions,
        [
            Action::CreateFolder { drive_id: "arrived".into(), parent: ROOT.into(), name: "arrived".into() },
            Action::CreateFolder {
                drive_id: "arrived-child".into(),
                parent: "arrived".into(),
                name: "arrived-child".into()
            },
        ]
    );
    assert_eq!(plan.needs_listing, ["arrived", "arrived-child"]);
}

#[test]
fn a_file_restored_in_drive_comes_back_from_the_mirrors_trash() {
    let mut binned = file("back", ROOT, "m");
    binned.in_trash = true;
    let mut edited = file("back-edited", ROOT, "old");
    edited.in_trash = true;
    let plan = changes(&[binned, edited], &[seen_file("back", ROOT, "m"), seen_file("back-edited", ROOT, "new")]);
    assert_eq!(
        plan.actions,
        [
            Action::Restore { drive_id: "back".into(), parent: ROOT.into(), name: "back".into() },
            Action::Restore { drive_id: "back-edited".into(), parent: ROOT.into(), name: "back-edited".into() },
            Action::Transfer { drive_id: "back-edited".into(), content: Some("new".into()) },
        ]
    );
    assert_eq!(plan.restored_files, 1);
}

#[test]
fn files_outside_the_library_are_ignored_and_something_already_trashed_stays_trashed() {
    let mut gone = file("gone", ROOT, "m");
    gone.in_trash = true;
    let observed = [
        seen_file("stranger", "other-folder", "m"),
        Observation::Removed("gone".into()),
        Observation::Removed("never-seen".into()),
    ];
    assert_eq!(changes(&[gone], &observed), Plan::default());
}

#[test]
fn purge_removes_what_a_full_listing_lacks_and_only_then() {
    let recorded = [folder("docs", ROOT), file("a", "docs", "m"), file("stray", ROOT, "m")];
    let observed = [seen_folder("docs", ROOT), seen_file("a", "docs", "m")];
    let without = plan(Input { root: ROOT, recorded: &recorded, observed: &observed, full: true, purge: false });
    assert_eq!(without, Plan::default(), "a full listing without purge removes nothing");
    let purged = plan(Input { root: ROOT, recorded: &recorded, observed: &observed, full: true, purge: true });
    assert_eq!(purged.actions, [Action::Trash { drive_id: "stray".into() }]);
    assert_eq!(purged.deleted_files, 1);
    let feed = plan(Input { root: ROOT, recorded: &recorded, observed: &observed, full: false, purge: true });
    assert_eq!(feed, Plan::default(), "purge needs a full listing");
}

#[test]
fn a_cycle_in_drives_answers_does_not_hang_and_counts_as_outside() {
    let observed = [seen_folder("x", "y"), seen_folder("y", "x"), seen_file("f", "x", "m")];
    assert_eq!(changes(&[], &observed), Plan::default());
}
