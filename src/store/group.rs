//! Group commit for the short writes of a hot request path.
//!
//! A SAML AuthnRequest is remembered (so it cannot be replayed) before it is answered: a write
//! per response, whose transaction costs more than its statement (taking SQLite's write lock,
//! appending to its log; on PostgreSQL a round trip and a log flush each). Calls of one kind that
//! arrive together share one transaction instead: the first to arrive schedules a flush, which
//! lets the requests already in flight add theirs, then runs them all at once and hands each its
//! own answer. Nothing is answered before its transaction commits, so a replay is refused exactly
//! as it was without grouping.
//!
//! A flush is a task of its own, not the work of the request that scheduled it, so a request
//! whose client goes away cannot strand the others.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::{Conn, Store, StoreError};

/// The most calls one transaction takes: its statements stay well inside the databases' limits
/// on bound parameters (SQLite 32,766, PostgreSQL 65,535) and its lock is held briefly.
pub const MAX_BATCH: usize = 256;

/// How one batch is written: `items` in, one answer per item out, in the same order. Runs in a
/// single call of [`Store::run_quick`]; it makes itself a transaction where it needs one.
pub type Write<I, O> = fn(&mut Conn, &[I]) -> Result<Vec<O>, StoreError>;

/// Calls of one kind, grouped into shared transactions. Cheap to clone.
pub struct Group<I, O> {
    queue: Arc<Mutex<Queue<I, O>>>,
    write: Write<I, O>,
}

impl<I, O> Clone for Group<I, O> {
    fn clone(&self) -> Self {
        Group {
            queue: self.queue.clone(),
            write: self.write,
        }
    }
}

/// A call waiting for its batch, and where its answer goes.
type Waiting<I, O> = (I, oneshot::Sender<Result<O, StoreError>>);

struct Queue<I, O> {
    waiting: Vec<Waiting<I, O>>,
    /// A flush is scheduled or running: it will take what is waiting.
    flushing: bool,
}

impl<I, O> Group<I, O>
where
    I: Send + 'static,
    O: Send + 'static,
{
    pub fn new(write: Write<I, O>) -> Self {
        Group {
            queue: Arc::new(Mutex::new(Queue {
                waiting: Vec::new(),
                flushing: false,
            })),
            write,
        }
    }

    /// Writes `item` with whatever else is waiting, and answers once that has committed.
    pub async fn submit(&self, store: &Store, item: I) -> Result<O, StoreError> {
        let (tx, rx) = oneshot::channel();
        let schedule = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.waiting.push((item, tx));
            !std::mem::replace(&mut q.flushing, true)
        };
        if schedule {
            tokio::spawn(flush(store.clone(), self.clone()));
        }
        rx.await
            .map_err(|_| StoreError::Unavailable("the grouped write did not finish".into()))?
    }

    /// What is waiting now, at most [`MAX_BATCH`] of it, or `None` (and no flush scheduled any
    /// more) when nothing is.
    fn take(&self) -> Option<Vec<Waiting<I, O>>> {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.waiting.is_empty() {
            q.flushing = false;
            return None;
        }
        let cut = q.waiting.len().min(MAX_BATCH);
        let rest = q.waiting.split_off(cut);
        Some(std::mem::replace(&mut q.waiting, rest))
    }
}

/// Clears `flushing` if a flush ends before it has emptied the queue (its task panicked, or the
/// runtime is shutting down), so the next call schedules a new one.
struct Unstick<'a, I, O> {
    group: &'a Group<I, O>,
    armed: bool,
}

impl<I, O> Drop for Unstick<'_, I, O> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut q = self
            .group
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        q.flushing = false;
        // Whoever still waits is answered (with an error) by its sender being dropped.
        q.waiting.clear();
    }
}

async fn flush<I, O>(store: Store, group: Group<I, O>)
where
    I: Send + 'static,
    O: Send + 'static,
{
    // Spawned from a worker, this task would run next; yielding first lets the requests that are
    // already ready reach `submit` and join this batch.
    tokio::task::yield_now().await;
    let mut guard = Unstick {
        group: &group,
        armed: true,
    };
    while let Some(batch) = group.take() {
        let (items, senders): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
        let count = items.len();
        let write = group.write;
        let written = store.run_quick(move |c| write(c, &items)).await;
        match written {
            Ok(answers) if answers.len() == count => {
                for (tx, answer) in senders.into_iter().zip(answers) {
                    let _ = tx.send(Ok(answer));
                }
            }
            Ok(_) => {
                for tx in senders {
                    let _ = tx.send(Err(StoreError::Unavailable(
                        "a grouped write answered the wrong number of items".into(),
                    )));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for tx in senders {
                    let _ = tx.send(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
    }
    // `take` found the queue empty and cleared `flushing` itself; a call after it has scheduled
    // a flush of its own, which this one must not undo.
    guard.armed = false;
}
