//! INTERNALDATE as storage holds it ([`InternalDate`]) and hands it out ([`InternalDates`]).
//!
//! A backend may leave a message's date unread in its picture: the Maildir backend's first look
//! at 100,000 files takes sizes from the file names and stats none (the stats were most of a
//! cold SELECT), and reads a date (the file's mtime) only when a command needs it. So a date in
//! a [`super::MessageMeta`] is opaque outside storage: the protocol layers get dates from
//! [`super::View::internal_dates`], which reads the unknown ones first. Showing or comparing a
//! date that was never read cannot be written.

/// The INTERNALDATE of a message in a picture: known, or not read yet. Only storage reads the
/// value; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InternalDate(i64);

impl InternalDate {
    /// A date the backend has not read yet ([`super::MailboxHandle::resolve_dates`] reads it).
    pub const NOT_READ: InternalDate = InternalDate(i64::MIN);

    /// A known date, Unix seconds.
    pub const fn at(secs: i64) -> InternalDate {
        // i64::MIN stands for "not read"; a date 292 billion years ago is one second later.
        if secs == i64::MIN {
            InternalDate(i64::MIN + 1)
        } else {
            InternalDate(secs)
        }
    }

    /// True once the date has been read (tests check that a first look reads none).
    pub fn is_read(self) -> bool {
        self != Self::NOT_READ
    }

    /// The date in Unix seconds, `None` while not read. Storage only: everyone else asks
    /// [`super::View::internal_dates`].
    pub(in crate::storage) fn get(self) -> Option<i64> {
        self.is_read().then_some(self.0)
    }
}

impl From<i64> for InternalDate {
    fn from(secs: i64) -> Self {
        InternalDate::at(secs)
    }
}

/// INTERNALDATEs as [`super::View::internal_dates`] read them: the date of each message asked
/// about that is still in the mailbox, as Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InternalDates {
    /// Ascending UIDs.
    dates: Vec<(u32, i64)>,
}

impl InternalDates {
    /// From `(uid, date)` pairs in ascending UID order.
    pub(in crate::storage) fn from_sorted(dates: Vec<(u32, i64)>) -> InternalDates {
        InternalDates { dates }
    }

    /// The date of `uid`; `None` when it was not asked about or is gone (expunged, or its
    /// file vanished before the date could be read).
    pub fn get(&self, uid: u32) -> Option<i64> {
        self.dates
            .binary_search_by_key(&uid, |d| d.0)
            .ok()
            .and_then(|i| self.dates.get(i))
            .map(|d| d.1)
    }

    /// Number of messages with a date.
    pub fn len(&self) -> usize {
        self.dates.len()
    }

    /// True when no message has a date here.
    pub fn is_empty(&self) -> bool {
        self.dates.is_empty()
    }

    /// `(uid, date)` in ascending UID order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.dates.iter().copied()
    }
}

impl FromIterator<(u32, i64)> for InternalDates {
    /// From `(uid, date)` pairs in any order (the first of a repeated UID wins).
    fn from_iter<I: IntoIterator<Item = (u32, i64)>>(iter: I) -> Self {
        let mut dates: Vec<(u32, i64)> = iter.into_iter().collect();
        dates.sort_by_key(|d| d.0);
        dates.dedup_by_key(|d| d.0);
        InternalDates { dates }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_read_or_not_and_lookups_find_it() {
        assert!(!InternalDate::NOT_READ.is_read());
        assert_eq!(InternalDate::NOT_READ.get(), None);
        assert_eq!(InternalDate::at(0).get(), Some(0));
        assert_eq!(InternalDate::at(-5).get(), Some(-5));
        assert!(InternalDate::at(i64::MIN).is_read());
        let d = InternalDates::from_sorted(vec![(2, 20), (5, 50), (9, -1)]);
        assert_eq!((d.get(5), d.get(9), d.get(3)), (Some(50), Some(-1), None));
        assert_eq!(d.len(), 3);
        assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), vec![2, 5, 9]);
        let e: InternalDates = [(9, -1), (2, 20), (5, 50), (2, 7)].into_iter().collect();
        assert_eq!(e, d);
    }
}
