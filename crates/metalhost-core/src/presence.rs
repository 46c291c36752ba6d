//! Whether a standalone host's manifest is there (pure: the runtime passes the time). A manifest
//! that goes is not taken at once as a deletion: a file read while an editor rewrites it is empty
//! or missing for an instant, so the host is deleted only once its manifest has stayed gone for a
//! while.

use std::time::{Duration, Instant};

/// Where a host's manifest stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// There and usable: the host is reconciled.
    Present,
    /// There but unusable (the reason): reported in the status, nothing done to the host.
    Unusable(String),
    /// Seen gone since `since`; nothing starts for the host meanwhile. `unusable` is the reason
    /// its manifest was unusable before it went, if it was.
    Missing {
        /// When it was first seen gone.
        since: Instant,
        /// Why the manifest was unusable before it went.
        unusable: Option<String>,
    },
    /// Its manifest stayed gone: the host is being deleted.
    Deleting,
}

impl Presence {
    /// The manifest was read (`unusable`: why it cannot be used). Returns whether the host must
    /// be looked at again because of it: it was being deleted or was unusable, and is now usable.
    pub fn seen(&mut self, unusable: Option<String>) -> bool {
        let again = unusable.is_none() && matches!(self, Presence::Deleting | Presence::Unusable(_));
        let again =
            again || (unusable.is_none() && matches!(self, Presence::Missing { unusable: Some(_), .. }));
        *self = match unusable {
            Some(reason) => Presence::Unusable(reason),
            None => Presence::Present,
        };
        again
    }

    /// The manifest was not among those read at `now`. When some file could not be read
    /// (`complete` false) its hosts would look gone: nothing changes but that a host seen gone
    /// before is no longer counted gone. Returns whether the host has just been seen gone.
    pub fn not_seen(&mut self, now: Instant, complete: bool) -> bool {
        match (std::mem::replace(self, Presence::Present), complete) {
            (Presence::Deleting, _) => *self = Presence::Deleting,
            (Presence::Missing { unusable, .. }, false) => *self = Presence::back(unusable),
            (missing @ Presence::Missing { .. }, true) => *self = missing,
            (other, false) => *self = other,
            (Presence::Present, true) => {
                *self = Presence::Missing { since: now, unusable: None };
                return true;
            }
            (Presence::Unusable(reason), true) => {
                *self = Presence::Missing { since: now, unusable: Some(reason) };
                return true;
            }
        }
        false
    }

    fn back(unusable: Option<String>) -> Presence {
        unusable.map_or(Presence::Present, Presence::Unusable)
    }

    /// Whether the manifest has stayed gone for `gone_for` at `now`; if so the host is now
    /// [`Presence::Deleting`] (an unusable one all the same).
    pub fn expire(&mut self, now: Instant, gone_for: Duration) -> bool {
        let expired =
            matches!(self, Presence::Missing { since, .. } if now.duration_since(*since) >= gone_for);
        if expired {
            *self = Presence::Deleting;
        }
        expired
    }

    /// Why the manifest is unusable, if it is (also while it is missing).
    pub fn unusable(&self) -> Option<&str> {
        match self {
            Presence::Unusable(reason) | Presence::Missing { unusable: Some(reason), .. } => Some(reason),
            _ => None,
        }
    }

    /// Since when the manifest has been seen gone, if it is.
    pub fn missing_since(&self) -> Option<Instant> {
        match self {
            Presence::Missing { since, .. } => Some(*since),
            _ => None,
        }
    }

    /// Whether the host is being deleted.
    pub fn deleting(&self) -> bool {
        *self == Presence::Deleting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GONE_FOR: Duration = Duration::from_secs(1);

    #[test]
    fn a_manifest_gone_for_a_while_deletes_its_host_and_one_back_in_time_does_not() {
        let t0 = Instant::now();
        let mut p = Presence::Present;
        assert!(p.not_seen(t0, true));
        assert_eq!(p.missing_since(), Some(t0));
        // seen gone again: still counted from the first time
        assert!(!p.not_seen(t0 + GONE_FOR / 2, true));
        assert!(!p.expire(t0 + GONE_FOR / 2, GONE_FOR));
        // back before the time is up (an editor's rewrite): nothing happens to the host
        assert!(!p.seen(None));
        assert_eq!(p, Presence::Present);
        assert!(p.not_seen(t0 + GONE_FOR, true));
        assert!(p.expire(t0 + 3 * GONE_FOR, GONE_FOR));
        assert!(p.deleting());
        // a deleting host stays deleting while its manifest stays gone, and comes back when it is back
        assert!(!p.not_seen(t0 + 4 * GONE_FOR, true));
        assert!(p.deleting());
        assert!(p.seen(None), "looked at again: no longer deleted");
    }

    #[test]
    fn an_incomplete_listing_counts_no_manifest_gone() {
        let t0 = Instant::now();
        let mut p = Presence::Unusable("bad".into());
        assert!(!p.not_seen(t0, false));
        assert_eq!(p, Presence::Unusable("bad".into()));
        assert!(p.not_seen(t0, true));
        assert_eq!(p.unusable(), Some("bad"), "still reported while missing");
        assert!(!p.not_seen(t0 + 5 * GONE_FOR, false));
        assert_eq!(p, Presence::Unusable("bad".into()), "no longer counted gone");
        // an unusable host whose manifest stays gone is deleted all the same
        p.not_seen(t0, true);
        assert!(p.expire(t0 + GONE_FOR, GONE_FOR));
        assert_eq!(p.unusable(), None);
    }

    #[test]
    fn a_manifest_made_usable_is_looked_at_again() {
        let mut p = Presence::Unusable("bad".into());
        assert!(p.seen(None));
        assert!(!p.seen(None));
        assert!(!p.seen(Some("worse".into())));
        assert_eq!(p.unusable(), Some("worse"));
    }
}
