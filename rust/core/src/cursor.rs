//! A stream of pages fed by a producer through a bounded channel: a slow consumer slows the
//! producer, and dropping the cursor stops it.

use crate::error::Result;
use crate::row::Row;

pub type Page<T = Row> = Result<Vec<T>>;

/// Pages of rows: decoded [`Row`]s, or [`crate::row::TextRow`]s for the consumer to decode.
pub struct Cursor<T = Row> {
    rx: tokio::sync::mpsc::Receiver<Page<T>>,
}

impl<T> Cursor<T> {
    /// A cursor and the sender its producer writes to; `capacity` is the number of pages that
    /// may wait ahead of the consumer (at least 1).
    pub fn channel(capacity: usize) -> (tokio::sync::mpsc::Sender<Page<T>>, Cursor<T>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        (tx, Cursor { rx })
    }

    /// The next page, or None when the producer has finished.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>> {
        match self.rx.recv().await {
            Some(Ok(page)) => Ok(Some(page)),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    /// Stops the producer: later pages are never read.
    pub fn close(&mut self) {
        self.rx.close();
    }
}

/// The window and the page cutting of an unsorted stream, for producers that read rows in
/// storage order: skips the first `offset` matches, stops after `limit`, and hands back each
/// full page of `batch_size` rows to send.
pub(crate) struct Pager<T = Row> {
    skip: usize,
    remaining: usize,
    batch_size: usize,
    page: Vec<T>,
}

impl<T> Pager<T> {
    pub(crate) fn new(offset: usize, limit: Option<usize>, batch_size: usize) -> Pager<T> {
        let batch_size = batch_size.max(1);
        Pager {
            skip: offset,
            remaining: limit.unwrap_or(usize::MAX),
            batch_size,
            page: Vec::with_capacity(batch_size.min(4096)),
        }
    }

    /// Whether the window still takes rows.
    pub(crate) fn wants_more(&self) -> bool {
        self.remaining > 0
    }

    /// Offers a row that matched (already projected): a full page comes back when it is cut.
    pub(crate) fn push(&mut self, row: T) -> Option<Vec<T>> {
        if self.remaining == 0 {
            return None;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        self.page.push(row);
        self.remaining -= 1;
        (self.page.len() == self.batch_size).then(|| {
            std::mem::replace(
                &mut self.page,
                Vec::with_capacity(self.batch_size.min(4096)),
            )
        })
    }

    /// The last, partial page (None when empty).
    pub(crate) fn finish(self) -> Option<Vec<T>> {
        (!self.page.is_empty()).then_some(self.page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize) -> Row {
        Row {
            id: format!("r{i}"),
            data: Default::default(),
            metadata: Default::default(),
        }
    }

    #[test]
    fn pager_skips_limits_and_cuts_pages() {
        let mut p: Pager = Pager::new(2, Some(5), 2);
        let pages: Vec<Vec<String>> = (0..10)
            .filter_map(|i| p.push(row(i)))
            .map(|page| page.into_iter().map(|r| r.id).collect())
            .collect();
        assert_eq!(pages, vec![vec!["r2", "r3"], vec!["r4", "r5"]]);
        assert!(!p.wants_more());
        let last: Vec<String> = p.finish().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(last, vec!["r6"]);
        assert!(Pager::<Row>::new(0, None, 3).finish().is_none());
    }
}
