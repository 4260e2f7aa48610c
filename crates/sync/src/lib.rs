//! Library sync planning: from what a library's mirror recorded of its Drive folder and what Drive reports now
//! (a full listing, or the changes feed since the last run), the steps that make the mirror equal the folder.
//! Pure: no I/O, so every case (moves in and out, trash and restore, content edits, purge) is decided here and
//! tested without a server; the worker gathers the observations and applies the plan in one transaction.

use std::collections::{HashMap, HashSet};

/// What the mirror recorded about one Drive item when it last applied a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub drive_id: String,
    pub is_folder: bool,
    /// The Drive parent it had (the linked folder's id at the top).
    pub parent: String,
    pub name: String,
    /// What identifies the content transferred last (Drive's md5, or its version for Workspace files).
    pub content: Option<String>,
    /// The mirror put the item in the trash (it left the folder); it can come back.
    pub in_trash: bool,
    /// A file whose content arrived; false while (or after) its transfer is pending or failed.
    pub ready: bool,
}

/// A Drive item as Drive reports it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub drive_id: String,
    pub is_folder: bool,
    pub parents: Vec<String>,
    pub name: String,
    pub trashed: bool,
    /// md5 for binary files, the version for Workspace files, `None` for folders.
    pub content: Option<String>,
}

/// One observation: an item as it is, or gone (deleted forever, or no longer visible to the account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    Present(Seen),
    Removed(String),
}

/// What a run knows.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The linked folder's Drive id.
    pub root: &'a str,
    pub recorded: &'a [Recorded],
    pub observed: &'a [Observation],
    /// The observations are a full listing of the folder's tree (not the changes feed).
    pub full: bool,
    /// With a full listing: what the mirror has but the listing lacks leaves the mirror.
    pub purge: bool,
}

/// One step. Parents are Drive ids; the linked folder's id stands for the library's own directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A folder new to the mirror.
    CreateFolder { drive_id: String, parent: String, name: String },
    /// A recorded folder renamed or moved within the library.
    UpdateFolder { drive_id: String, parent: String, name: String },
    /// A file new to the mirror: an item, then its content's transfer.
    AddFile { drive_id: String, parent: String, name: String, content: Option<String> },
    /// New content for a recorded file (edited in Drive, or its last transfer did not finish).
    Transfer { drive_id: String, content: Option<String> },
    /// A recorded file renamed or moved within the library (no download).
    UpdateFile { drive_id: String, parent: String, name: String },
    /// Out of the mirror into its trash: trashed or deleted in Drive, or moved out of the folder.
    Trash { drive_id: String },
    /// Back from the mirror's trash (restored in Drive, or moved back in).
    Restore { drive_id: String, parent: String, name: String },
}

/// The steps in the order to apply them, with what they mean for the run's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Folders that came into the library with this batch of changes: list each (its whole tree) and plan again
    /// with those observations added, since the changes feed reports the folder but not what it holds.
    pub needs_listing: Vec<String>,
    /// Files renamed or moved without new content.
    pub renamed_files: usize,
    /// Files restored without new content.
    pub restored_files: usize,
    /// Files that left the library.
    pub deleted_files: usize,
}

impl Plan {
    /// Transfers this plan starts: new files and new content.
    pub fn transfers(&self) -> usize {
        self.actions.iter().filter(|a| matches!(a, Action::AddFile { .. } | Action::Transfer { .. })).count()
    }
}

struct Node<'a> {
    is_folder: bool,
    parent: Option<&'a str>,
    gone: bool,
}

/// Decides every step. See the crate documentation.
pub fn plan(input: Input<'_>) -> Plan {
    let recorded: HashMap<&str, &Recorded> = input.recorded.iter().map(|r| (r.drive_id.as_str(), r)).collect();
    let mut seen: HashMap<&str, &Seen> = HashMap::new();
    let mut removed: HashSet<&str> = HashSet::new();
    for observation in input.observed {
        match observation {
            Observation::Present(item) => {
                removed.remove(item.drive_id.as_str());
                seen.insert(item.drive_id.as_str(), item);
            }
            Observation::Removed(id) => {
                seen.remove(id.as_str());
                removed.insert(id.as_str());
            }
        }
    }

    // Where each item is now: Drive's word when it reported the item, else what the mirror recorded.
    let node = |id: &str| -> Option<Node<'_>> {
        if removed.contains(id) {
            return Some(Node { is_folder: false, parent: None, gone: true });
        }
        if let Some(item) = seen.get(id) {
            return Some(Node {
                is_folder: item.is_folder,
                parent: item.parents.first().map(String::as_str),
                gone: item.trashed,
            });
        }
        recorded.get(id).map(|r| Node { is_folder: r.is_folder, parent: Some(r.parent.as_str()), gone: r.in_trash })
    };
    // Depth below the linked folder when the item is inside it (and not trashed), else `None`.
    let mut depths: HashMap<String, Option<usize>> = HashMap::new();
    let mut depth_of = |id: &str| -> Option<usize> {
        let mut chain: Vec<String> = Vec::new();
        let mut current = id.to_owned();
        let found = loop {
            if current == input.root {
                break Some(0);
            }
            if let Some(known) = depths.get(&current) {
                break *known;
            }
            if chain.contains(&current) || chain.len() > 10_000 {
                break None; // a cycle: Drive never has one, but a bad answer must not hang the run
            }
            match node(&current) {
                Some(Node { gone: false, parent: Some(parent), is_folder, .. }) if is_folder || chain.is_empty() => {
                    chain.push(current.clone());
                    current = parent.to_owned();
                }
                _ => {
                    chain.push(current.clone());
                    break None;
                }
            }
        };
        // `found` is the depth of `current`; each item of the chain is one deeper than the next.
        let mut depth = found;
        for id in chain.iter().rev() {
            depth = depth.map(|d| d + 1);
            depths.insert(id.clone(), depth);
        }
        if chain.is_empty() { found } else { depths.get(id).copied().flatten() }
    };

    let mut plan = Plan::default();
    let mut creates: Vec<(usize, Action)> = Vec::new();
    let mut folder_updates: Vec<(usize, Action)> = Vec::new();
    let mut file_steps: Vec<Action> = Vec::new();
    let mut trashed: HashSet<String> = HashSet::new();

    let mut ids: Vec<&str> = seen.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let item = seen[id];
        if id == input.root {
            continue;
        }
        let depth = depth_of(id);
        let parent = item.parents.first().cloned().unwrap_or_default();
        let known = recorded.get(id);
        match (depth, known) {
            (None, Some(r)) if !r.in_trash => {
                trashed.insert(id.to_owned());
            }
            (None, _) => {}
            (Some(depth), None) => {
                if item.is_folder {
                    creates.push((
                        depth,
                        Action::CreateFolder { drive_id: id.to_owned(), parent, name: item.name.clone() },
                    ));
                    if !input.full {
                        plan.needs_listing.push(id.to_owned());
                    }
                } else {
                    file_steps.push(Action::AddFile {
                        drive_id: id.to_owned(),
                        parent,
                        name: item.name.clone(),
                        content: item.content.clone(),
                    });
                }
            }
            (Some(depth), Some(r)) => {
                let moved = r.parent != parent || r.name != item.name;
                if r.in_trash {
                    let step = Action::Restore { drive_id: id.to_owned(), parent, name: item.name.clone() };
                    if item.is_folder {
                        folder_updates.push((depth, step));
                        if !input.full {
                            plan.needs_listing.push(id.to_owned());
                        }
                    } else {
                        file_steps.push(step);
                        if r.content != item.content || !r.ready {
                            file_steps
                                .push(Action::Transfer { drive_id: id.to_owned(), content: item.content.clone() });
                        } else {
                            plan.restored_files += 1;
                        }
                    }
                } else if item.is_folder {
                    if moved || !r.ready {
                        folder_updates.push((
                            depth,
                            Action::UpdateFolder { drive_id: id.to_owned(), parent, name: item.name.clone() },
                        ));
                    }
                } else {
                    let new_content = r.content != item.content || !r.ready;
                    if moved {
                        file_steps.push(Action::UpdateFile {
                            drive_id: id.to_owned(),
                            parent,
                            name: item.name.clone(),
                        });
                    }
                    if new_content {
                        file_steps.push(Action::Transfer { drive_id: id.to_owned(), content: item.content.clone() });
                    } else if moved {
                        plan.renamed_files += 1;
                    }
                }
            }
        }
    }
    for id in &removed {
        if recorded.get(id).is_some_and(|r| !r.in_trash) {
            trashed.insert((*id).to_owned());
        }
    }
    if input.full && input.purge {
        for r in input.recorded {
            if !r.in_trash && !seen.contains_key(r.drive_id.as_str()) {
                trashed.insert(r.drive_id.clone());
            }
        }
    }
    // A trashed folder takes what the mirror holds below it, unless Drive put that elsewhere in the library.
    let mut children: HashMap<&str, Vec<&Recorded>> = HashMap::new();
    for r in input.recorded {
        children.entry(r.parent.as_str()).or_default().push(r);
    }
    let mut queue: Vec<String> = trashed.iter().cloned().collect();
    while let Some(id) = queue.pop() {
        for child in children.get(id.as_str()).into_iter().flatten() {
            let stays = seen.contains_key(child.drive_id.as_str()) && depth_of(&child.drive_id).is_some();
            if !child.in_trash && !stays && trashed.insert(child.drive_id.clone()) {
                queue.push(child.drive_id.clone());
            }
        }
    }

    creates.sort_by_key(|a| a.0);
    folder_updates.sort_by_key(|a| a.0);
    plan.actions.extend(creates.into_iter().map(|(_, step)| step));
    plan.actions.extend(folder_updates.into_iter().map(|(_, step)| step));
    plan.actions.extend(file_steps);
    let mut trashed: Vec<String> = trashed.into_iter().collect();
    trashed.sort_unstable();
    for id in trashed {
        if recorded.get(id.as_str()).is_some_and(|r| !r.is_folder) {
            plan.deleted_files += 1;
        }
        plan.actions.push(Action::Trash { drive_id: id });
    }
    plan.needs_listing.sort_unstable();
    plan
}

#[cfg(test)]
mod tests;
