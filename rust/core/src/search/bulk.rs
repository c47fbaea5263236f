//! `_bulk` writes: NDJSON bodies encoded straight from the value model, cut at a byte budget
//! and a document count, several requests in flight, and one outcome per item, in input
//! order. A request that fails as a whole (no answer, a non-2xx status, an answer that does not
//! account for every item) fails each of its items: nothing is ever taken for a success that
//! the server did not report as one. Items the server rejected with 429 (its write queue
//! full) are sent again, with backoff, up to the client's attempt count.

use futures_util::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::Value as J;

use super::client::{backoff, SharedClient};
use super::doc;
use super::errors::{error_text, http_err};
use crate::codec;
use crate::error::{Error, Result};
use crate::row::Row;

/// One bulk item.
pub(crate) enum Action<'a> {
    /// Fails with 409 when the id exists.
    Create {
        row: &'a Row,
        now: &'a str,
    },
    /// Insert or replace.
    Index {
        row: &'a Row,
        created_at: &'a str,
        now: &'a str,
    },
    /// Replace only the version a read saw (409 when it changed or went away).
    Replace {
        row: &'a Row,
        created_at: &'a str,
        now: &'a str,
        seq_no: i64,
        primary_term: i64,
    },
    Delete {
        id: &'a str,
    },
}

/// How one item ended: the server's status, or why it failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// 2xx, or 404/409 with the server's reason (the callers decide what those mean).
    Status(u16),
    Failed(Error),
}

impl Action<'_> {
    /// Appends this item's lines to `out`.
    fn encode(&self, out: &mut String, terms: bool) {
        let (op, id) = match self {
            Action::Create { row, .. } => ("create", row.id.as_str()),
            Action::Index { row, .. } | Action::Replace { row, .. } => ("index", row.id.as_str()),
            Action::Delete { id } => ("delete", *id),
        };
        out.push_str("{\"");
        out.push_str(op);
        out.push_str("\":{\"_id\":");
        codec::push_json_str(out, id);
        if let Action::Replace {
            seq_no,
            primary_term,
            ..
        } = self
        {
            out.push_str(&format!(
                ",\"if_seq_no\":{seq_no},\"if_primary_term\":{primary_term}"
            ));
        }
        out.push_str("}}\n");
        match self {
            Action::Create { row, now } => doc::push_source(out, row, now, now, terms),
            Action::Index {
                row,
                created_at,
                now,
            }
            | Action::Replace {
                row,
                created_at,
                now,
                ..
            } => doc::push_source(out, row, created_at, now, terms),
            Action::Delete { .. } => return,
        }
        out.push('\n');
    }
}

/// Where one request's items sit in the batch, and its body.
struct Chunk {
    start: usize,
    len: usize,
    body: String,
}

/// Cuts the batch into bodies of at most `max_bytes` (a lone item larger than that goes alone)
/// and `max_docs` items.
fn chunks(actions: &[&Action<'_>], max_bytes: usize, max_docs: usize, terms: bool) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut body = String::new();
    let mut start = 0;
    let mut item = String::new();
    for (i, a) in actions.iter().enumerate() {
        item.clear();
        a.encode(&mut item, terms);
        let n = i - start;
        if n > 0 && (body.len() + item.len() > max_bytes || n >= max_docs) {
            out.push(Chunk {
                start,
                len: n,
                body: std::mem::take(&mut body),
            });
            start = i;
        }
        body.push_str(&item);
    }
    if actions.len() > start {
        out.push(Chunk {
            start,
            len: actions.len() - start,
            body,
        });
    }
    out
}

/// Sends every action and returns one outcome per action, in order. Never fails as a whole:
/// a failure is each affected item's outcome.
pub(crate) async fn run(
    c: &SharedClient,
    index: &str,
    actions: &[Action<'_>],
    max_bytes: usize,
    max_docs: usize,
    concurrency: usize,
    terms: bool,
) -> Vec<Item> {
    let path = format!("/{index}/_bulk");
    let mut outcomes: Vec<Option<Item>> = vec![None; actions.len()];
    // Indexes (into `actions`) still to send; after a round, those rejected with 429.
    let mut pending: Vec<usize> = (0..actions.len()).collect();
    let mut round = 0u32;
    while !pending.is_empty() {
        round += 1;
        let batch: Vec<&Action<'_>> = pending.iter().map(|&i| &actions[i]).collect();
        let cut = chunks(&batch, max_bytes, max_docs, terms);
        let results: Vec<(usize, usize, Vec<Item>)> = stream::iter(cut)
            .map(|chunk| {
                let path = &path;
                async move {
                    let items = send_chunk(c, path, index, chunk.body, chunk.len).await;
                    (chunk.start, chunk.len, items)
                }
            })
            .buffered(concurrency.max(1))
            .collect()
            .await;
        let mut again = Vec::new();
        for (start, len, items) in results {
            for (k, item) in items.into_iter().enumerate().take(len) {
                let at = pending[start + k];
                if item == Item::Status(429) && round < c.max_attempts() {
                    again.push(at);
                } else {
                    outcomes[at] = Some(item);
                }
            }
        }
        if !again.is_empty() {
            tokio::time::sleep(backoff(round)).await;
        }
        pending = again;
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Item::Failed(Error::Other("bulk item not sent".into()))))
        .collect()
}

/// One `_bulk` request: exactly `len` outcomes.
async fn send_chunk(
    c: &SharedClient,
    path: &str,
    index: &str,
    body: String,
    len: usize,
) -> Vec<Item> {
    let fail_all = |e: Error| vec![Item::Failed(e); len];
    let answer = match c
        .send(
            Method::POST,
            path,
            Some((bytes::Bytes::from(body), "application/x-ndjson")),
        )
        .await
    {
        Ok(a) => a,
        Err(e) => return fail_all(e),
    };
    if !answer.ok() {
        return fail_all(http_err("bulk", index, answer.status, &answer.body));
    }
    match parse_items(&answer.body, len) {
        Ok(items) => items,
        Err(e) => fail_all(e),
    }
}

/// The outcome of each item of a `_bulk` answer, which must list exactly `len` items.
pub(crate) fn parse_items(body: &[u8], len: usize) -> Result<Vec<Item>> {
    let bad = |m: String| Error::operation("bulk", format!("unreadable answer: {m}"));
    let j: J = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let items = j
        .get("items")
        .and_then(J::as_array)
        .ok_or_else(|| bad("no \"items\"".into()))?;
    if items.len() != len {
        return Err(bad(format!("{} items for {len} sent", items.len())));
    }
    items
        .iter()
        .map(|wrapped| {
            let item = wrapped
                .as_object()
                .and_then(|o| o.values().next())
                .ok_or_else(|| bad(format!("item {wrapped}")))?;
            let status = item
                .get("status")
                .and_then(J::as_u64)
                .ok_or_else(|| bad(format!("item without status: {item}")))?
                as u16;
            Ok(match (status, item.get("error")) {
                (200..=299, _) | (404 | 409 | 429, _) => Item::Status(status),
                (_, Some(e)) => Item::Failed(Error::operation(
                    "bulk",
                    format!(
                        "document {}: HTTP {status}: {}",
                        item.get("_id").map(J::to_string).unwrap_or_default(),
                        error_text(e)
                    ),
                )),
                (_, None) => Item::Failed(Error::operation("bulk", format!("item HTTP {status}"))),
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) fn encode_for_test(
    actions: &[Action<'_>],
    max_bytes: usize,
    max_docs: usize,
) -> Vec<(usize, usize, String)> {
    let refs: Vec<&Action<'_>> = actions.iter().collect();
    chunks(&refs, max_bytes, max_docs, false)
        .into_iter()
        .map(|c| (c.start, c.len, c.body))
        .collect()
}
