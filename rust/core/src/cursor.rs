//! A stream of pages fed by a producer through a bounded channel: a slow consumer slows the
//! producer, and dropping the cursor stops it.

use crate::error::Result;
use crate::row::Row;

pub type Page<T = Row> = Result<Vec<T>>;

/// What a producer sends: a page, its failure, or the end. The end is a message of its own, so
/// a producer that stops any other way (an error it dropped, a panic) is not taken for one.
enum Message<T> {
    Page(Vec<T>),
    Failed(crate::error::Error),
    End,
}

/// The producer's end of a [`Cursor`]. Each send reports whether the consumer still listens
/// (false: it closed or dropped the cursor, so stop producing).
pub struct PageSender<T = Row> {
    tx: tokio::sync::mpsc::Sender<Message<T>>,
}

impl<T> PageSender<T> {
    /// Sends a page, waiting while `capacity` pages wait ahead of the consumer.
    pub async fn send(&self, page: Vec<T>) -> bool {
        self.tx.send(Message::Page(page)).await.is_ok()
    }

    /// [`Self::send`] from a thread outside the runtime.
    pub fn blocking_send(&self, page: Vec<T>) -> bool {
        self.tx.blocking_send(Message::Page(page)).is_ok()
    }

    /// Sends a page's outcome: the page, or the error that ends the stream.
    pub async fn send_result(&self, page: Page<T>) -> bool {
        self.tx
            .send(page.map_or_else(Message::Failed, Message::Page))
            .await
            .is_ok()
    }

    /// [`Self::send_result`] from a thread outside the runtime.
    pub fn blocking_send_result(&self, page: Page<T>) -> bool {
        self.tx
            .blocking_send(page.map_or_else(Message::Failed, Message::Page))
            .is_ok()
    }

    /// Whether the consumer closed or dropped the cursor.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Says the stream is complete: the consumer sees its end only after this.
    pub async fn end(self) {
        let _ = self.tx.send(Message::End).await;
    }

    /// [`Self::end`] from a thread outside the runtime.
    pub fn blocking_end(self) {
        let _ = self.tx.blocking_send(Message::End);
    }
}

/// Pages of rows: decoded [`Row`]s, or [`crate::row::TextRow`]s for the consumer to decode.
pub struct Cursor<T = Row> {
    rx: tokio::sync::mpsc::Receiver<Message<T>>,
    /// The producer said it is done, or failed and said why: later reads give None.
    finished: bool,
}

impl<T> Cursor<T> {
    /// A cursor and the sender its producer writes to; `capacity` is the number of pages that
    /// may wait ahead of the consumer (at least 1).
    pub fn channel(capacity: usize) -> (PageSender<T>, Cursor<T>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        (
            PageSender { tx },
            Cursor {
                rx,
                finished: false,
            },
        )
    }

    /// The next page, or None when the producer has said the stream is complete. A producer
    /// that went away without saying so (it failed or panicked) is an error, never an end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>> {
        if self.finished {
            return Ok(None);
        }
        match self.rx.recv().await {
            Some(Message::Page(page)) => Ok(Some(page)),
            Some(Message::Failed(e)) => {
                self.finished = true;
                Err(e)
            }
            Some(Message::End) => {
                self.finished = true;
                Ok(None)
            }
            None => {
                self.finished = true;
                Err(crate::error::Error::Other(
                    "the stream's producer stopped before the end of the results (it failed \
                     or panicked); the pages read so far are not the whole result"
                        .to_string(),
                ))
            }
        }
    }

    /// Stops the producer: later pages are never read.
    pub fn close(&mut self) {
        self.finished = true;
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

    fn next(cursor: &mut Cursor) -> Result<Option<Vec<Row>>> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(cursor.next_page())
    }

    #[test]
    fn only_an_explicit_end_ends_the_stream() {
        let (tx, mut cursor) = Cursor::channel(4);
        assert!(tx.blocking_send(vec![row(1)]));
        tx.blocking_end();
        assert_eq!(next(&mut cursor).unwrap().unwrap().len(), 1);
        assert_eq!(next(&mut cursor).unwrap(), None);
        assert_eq!(next(&mut cursor).unwrap(), None);
    }

    #[test]
    fn a_producer_that_stops_without_an_end_is_an_error() {
        // Dropped sender: what a producer that panicked or returned early leaves behind.
        let (tx, mut cursor) = Cursor::channel(4);
        assert!(tx.blocking_send(vec![row(1)]));
        drop(tx);
        assert!(next(&mut cursor).unwrap().is_some());
        let err = next(&mut cursor).unwrap_err();
        assert!(err.to_string().contains("stopped before the end"), "{err}");

        let (tx, mut cursor) = Cursor::channel(4);
        let producer = std::thread::spawn(move || {
            assert!(tx.blocking_send(vec![row(1)]));
            panic!("injected producer failure");
        });
        assert!(producer.join().is_err());
        assert!(next(&mut cursor).unwrap().is_some());
        assert!(next(&mut cursor).is_err());
    }

    #[test]
    fn a_failure_is_delivered_then_the_stream_is_over() {
        let (tx, mut cursor) = Cursor::<Row>::channel(4);
        assert!(tx.blocking_send_result(Err(crate::error::Error::Other("boom".into()))));
        drop(tx);
        assert_eq!(next(&mut cursor).unwrap_err().to_string(), "boom");
        assert_eq!(next(&mut cursor).unwrap(), None);
    }
}
