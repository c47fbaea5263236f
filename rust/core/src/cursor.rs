//! A stream of pages fed by a producer through a bounded channel: a slow consumer slows the
//! producer, and dropping the cursor stops it.

use crate::error::Result;
use crate::row::Row;

pub type Page = Result<Vec<Row>>;

pub struct Cursor {
    rx: tokio::sync::mpsc::Receiver<Page>,
}

impl Cursor {
    /// A cursor and the sender its producer writes to; `capacity` is the number of pages that
    /// may wait ahead of the consumer (at least 1).
    pub fn channel(capacity: usize) -> (tokio::sync::mpsc::Sender<Page>, Cursor) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        (tx, Cursor { rx })
    }

    /// The next page, or None when the producer has finished.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Row>>> {
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
