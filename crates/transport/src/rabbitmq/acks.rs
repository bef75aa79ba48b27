//! Consumer acks of one AMQP channel, coalesced.
//!
//! A plain consumer sends one `basic.ack` per message, and each one costs a
//! frame, a wake-up of lapin's I/O thread and the broker's processing of that
//! frame. Here settling a delivery only marks it in the channel's [`Ledger`];
//! one task per channel (the acker, [`AckBook::run`]) then acks the longest
//! run of settled deliveries at the front with a single `basic.ack
//! multiple=true`.
//!
//! Expected flow: the consumer records every delivery when it arrives
//! ([`AckBook::received`]); a slot marks it done or to be requeued
//! ([`AckBook::mark`]) once its results are confirmed; the acker wakes,
//! gathers marks for [`ACK_WINDOW`], and sends what [`Ledger::plan`] says.
//!
//! Guarantees:
//! - a delivery is acked only after it was marked done: a multiple ack never
//!   covers a delivery that is still being worked on, was never handed to a
//!   slot, or is to be requeued;
//! - a requeue (`basic.nack requeue=true`) is sent before any multiple ack
//!   whose range covers it;
//! - a done delivery waits behind an unfinished one for at most
//!   [`HOLD_FOR`], and only while fewer than the hold limit wait; then each is
//!   acked on its own, so a slow message at the front neither starves the
//!   prefetch window nor leaves finished messages open to redelivery;
//! - [`AckBook::close`] settles everything marked before it returns.
//!
//! Caveats: as with every AMQP ack, "sent" is all the broker tells us; if the
//! channel dies before an ack leaves, the broker redelivers those messages
//! (at-least-once, as before). A book whose channel died refuses marks, so
//! the caller learns that its delivery will come back.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use tokio::sync::Notify;

/// Longest a done delivery waits for the unfinished ones before it.
pub(crate) const HOLD_FOR: Duration = Duration::from_millis(20);

/// How long the acker gathers marks after the first one wakes it. A yield
/// instead (acking what the same batch of confirms settled) cost the sidecar
/// 6-13 % more CPU per message at concurrency 64 (BENCHMARKS.md); acks
/// are off the results' path, so the millisecond delays nothing a user sees.
const ACK_WINDOW: Duration = Duration::from_millis(1);

/// Where one delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// Received; its slot has not settled it.
    Working,
    /// Processed; to be acked.
    Done,
    /// To be given back to the queue.
    Requeue,
    /// Its frame was planned (an ack on its own, or a requeue).
    Sent,
}

/// One frame the acker sends, in the order planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Ack { tag: u64, multiple: bool },
    Requeue(u64),
}

/// The deliveries of one channel not yet covered by an ack, in tag order.
/// Pure bookkeeping: no I/O, no clock of its own.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    entries: VecDeque<(u64, Mark)>,
    done: usize,
    requeues: usize,
    held_since: Option<Instant>,
    /// Closed (the channel stops or failed): a later mark would never be sent.
    closed: bool,
}

impl Ledger {
    /// Records a delivery as it arrives (tags only grow on a channel).
    pub(crate) fn received(&mut self, tag: u64) {
        self.entries.push_back((tag, Mark::Working));
    }

    /// Marks a delivery done (`true`) or to be requeued (`false`).
    pub(crate) fn mark(&mut self, tag: u64, done: bool) -> Result<(), Refused> {
        if self.closed {
            return Err(Refused::ChannelGone);
        }
        let Ok(i) = self.entries.binary_search_by_key(&tag, |e| e.0) else {
            return Err(Refused::AlreadySettled);
        };
        let mark = &mut self.entries[i].1;
        if *mark != Mark::Working {
            return Err(Refused::AlreadySettled);
        }
        if done {
            *mark = Mark::Done;
            self.done += 1;
        } else {
            *mark = Mark::Requeue;
            self.requeues += 1;
        }
        Ok(())
    }

    /// Refuses every later mark (the acker's last pass is near).
    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    /// Appends the frames to send now to `out` and returns when to plan again
    /// if done deliveries are left waiting. `hold_limit` 0 or `hold_for` zero
    /// sends everything marked.
    pub(crate) fn plan(
        &mut self,
        now: Instant,
        hold_limit: usize,
        hold_for: Duration,
        out: &mut Vec<Step>,
    ) -> Option<Instant> {
        // Requeues first: a multiple ack planned below may cover them.
        if self.requeues > 0 {
            for (tag, mark) in self.entries.iter_mut() {
                if *mark == Mark::Requeue {
                    *mark = Mark::Sent;
                    out.push(Step::Requeue(*tag));
                }
            }
            self.requeues = 0;
        }
        let mut last_done = None;
        while let Some(&(tag, mark)) = self.entries.front() {
            match mark {
                Mark::Done => {
                    last_done = Some(tag);
                    self.done -= 1;
                }
                Mark::Sent => {}
                Mark::Working | Mark::Requeue => break,
            }
            self.entries.pop_front();
        }
        if let Some(tag) = last_done {
            out.push(Step::Ack {
                tag,
                multiple: true,
            });
        }
        if self.done == 0 {
            self.held_since = None;
            return None;
        }
        let since = *self.held_since.get_or_insert(now);
        if self.done < hold_limit && now < since + hold_for {
            return Some(since + hold_for);
        }
        for (tag, mark) in self.entries.iter_mut() {
            if *mark == Mark::Done {
                *mark = Mark::Sent;
                out.push(Step::Ack {
                    tag: *tag,
                    multiple: false,
                });
            }
        }
        self.done = 0;
        self.held_since = None;
        None
    }
}

/// Why a mark was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The channel died (or closed): the broker redelivers the message.
    ChannelGone,
    /// The delivery was acked or requeued before, or is not from this channel.
    AlreadySettled,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::ChannelGone => {
                "the channel closed before the ack; the broker redelivers the message"
            }
            Refused::AlreadySettled => "this delivery was settled already",
        })
    }
}

/// The ledger of one consumer channel, shared by the consumer, the slots and
/// the acker.
#[derive(Debug)]
pub(crate) struct AckBook {
    ledger: Mutex<Ledger>,
    wake: Notify,
    hold_limit: usize,
}

impl AckBook {
    /// A book holding at most `hold_limit` done deliveries behind an
    /// unfinished one.
    pub(crate) fn new(hold_limit: usize) -> Self {
        Self {
            ledger: Mutex::new(Ledger::default()),
            wake: Notify::new(),
            hold_limit,
        }
    }

    pub(crate) fn received(&self, tag: u64) {
        if let Ok(mut l) = self.ledger.lock() {
            l.received(tag);
        }
    }

    /// Marks a delivery done or to be requeued and wakes the acker. Under the
    /// ledger's lock, so a mark either reaches a pass of the acker or is
    /// refused (book closed), never silently dropped.
    pub(crate) fn mark(&self, tag: u64, done: bool) -> Result<(), Refused> {
        match self.ledger.lock() {
            Ok(mut l) => l.mark(tag, done)?,
            Err(_) => return Err(Refused::ChannelGone),
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Refuses later marks.
    fn shut(&self) {
        if let Ok(mut l) = self.ledger.lock() {
            l.close();
        }
    }

    fn is_closed(&self) -> bool {
        self.ledger.lock().map_or(true, |l| l.closed)
    }

    /// Stops taking marks, sends everything marked, and waits for the acker
    /// (`acker`, the task running [`AckBook::run`]) to finish.
    pub(crate) async fn close(&self, acker: tokio::task::JoinHandle<()>) {
        self.shut();
        self.wake.notify_one();
        let _ = acker.await;
    }

    /// The acker: sends what the ledger plans, until the book is closed or
    /// the channel fails.
    pub(crate) async fn run(self: std::sync::Arc<Self>, channel: Channel) {
        let mut steps = Vec::new();
        let mut again: Option<Instant> = None;
        loop {
            if !self.is_closed() {
                match again {
                    Some(at) => {
                        tokio::select! {
                            _ = self.wake.notified() => {}
                            _ = tokio::time::sleep_until(at.into()) => {}
                        }
                    }
                    None => self.wake.notified().await,
                }
                // The slots finishing meanwhile mark their deliveries before
                // this pass plans, so one frame acks them all.
                tokio::time::sleep(ACK_WINDOW).await;
            }
            let mut closed = true;
            again = match self.ledger.lock() {
                Ok(mut l) => {
                    closed = l.closed;
                    // Closed: the last pass sends everything marked.
                    let (limit, hold) = if closed {
                        (0, Duration::ZERO)
                    } else {
                        (self.hold_limit, HOLD_FOR)
                    };
                    l.plan(Instant::now(), limit, hold, &mut steps)
                }
                Err(_) => None,
            };
            for step in steps.drain(..) {
                let sent = match step {
                    Step::Ack { tag, multiple } => {
                        channel.basic_ack(tag, BasicAckOptions { multiple }).await
                    }
                    Step::Requeue(tag) => {
                        let opts = BasicNackOptions {
                            multiple: false,
                            requeue: true,
                        };
                        channel.basic_nack(tag, opts).await
                    }
                };
                if let Err(e) = sent {
                    // The broker redelivers every unacked message of a dead channel.
                    tracing::warn!(error = %e, ?step, "settling on the consumer channel failed; the broker redelivers what was not acked");
                    self.shut();
                    return;
                }
            }
            if closed {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(tags: std::ops::RangeInclusive<u64>) -> Ledger {
        let mut l = Ledger::default();
        for t in tags {
            l.received(t);
        }
        l
    }

    fn plan(l: &mut Ledger, now: Instant, limit: usize) -> (Vec<Step>, Option<Instant>) {
        let mut out = Vec::new();
        let again = l.plan(now, limit, HOLD_FOR, &mut out);
        (out, again)
    }

    fn ack(tag: u64, multiple: bool) -> Step {
        Step::Ack { tag, multiple }
    }

    #[test]
    fn the_done_run_at_the_front_is_one_multiple_ack() {
        let mut l = ledger(1..=5);
        let now = Instant::now();
        for t in [2, 1, 3] {
            assert_eq!(l.mark(t, true), Ok(()));
        }
        assert_eq!(plan(&mut l, now, 8), (vec![ack(3, true)], None));
        // Nothing new: nothing to send.
        assert_eq!(plan(&mut l, now, 8), (vec![], None));
        assert_eq!(l.mark(4, true), Ok(()));
        assert_eq!(l.mark(5, true), Ok(()));
        assert_eq!(plan(&mut l, now, 8).0, vec![ack(5, true)]);
        assert!(l.entries.is_empty());
    }

    #[test]
    fn a_done_delivery_behind_an_unfinished_one_waits_then_goes_alone() {
        let mut l = ledger(1..=4);
        let t0 = Instant::now();
        assert_eq!(l.mark(3, true), Ok(()));
        // Held: delivery 1 is still being worked on.
        assert_eq!(plan(&mut l, t0, 8), (vec![], Some(t0 + HOLD_FOR)));
        assert_eq!(l.mark(2, true), Ok(()));
        // Still inside the hold, measured from the first held one.
        let t1 = t0 + HOLD_FOR / 2;
        assert_eq!(plan(&mut l, t1, 8), (vec![], Some(t0 + HOLD_FOR)));
        // Time is up: each goes on its own, 1 and 4 stay open.
        assert_eq!(
            plan(&mut l, t0 + HOLD_FOR, 8).0,
            vec![ack(2, false), ack(3, false)]
        );
        // When 1 finishes, the multiple ack names 1 only (2 and 3 are sent).
        assert_eq!(l.mark(1, true), Ok(()));
        assert_eq!(plan(&mut l, t1, 8), (vec![ack(1, true)], None));
        assert_eq!(l.entries.iter().map(|e| e.0).collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn the_hold_limit_sends_held_deliveries_at_once() {
        let mut l = ledger(1..=4);
        let now = Instant::now();
        for t in [2, 3] {
            assert_eq!(l.mark(t, true), Ok(()));
        }
        assert_eq!(plan(&mut l, now, 3).0, vec![]);
        assert_eq!(l.mark(4, true), Ok(()));
        assert_eq!(
            plan(&mut l, now, 3).0,
            vec![ack(2, false), ack(3, false), ack(4, false)]
        );
        // Closing (limit 0) sends whatever is done.
        let mut l = ledger(1..=2);
        assert_eq!(l.mark(2, true), Ok(()));
        assert_eq!(plan(&mut l, now, 0).0, vec![ack(2, false)]);
    }

    #[test]
    fn a_requeue_is_sent_before_the_multiple_ack_that_covers_it() {
        let mut l = ledger(1..=4);
        let now = Instant::now();
        assert_eq!(l.mark(1, true), Ok(()));
        assert_eq!(l.mark(2, false), Ok(()));
        assert_eq!(l.mark(3, true), Ok(()));
        assert_eq!(plan(&mut l, now, 8).0, vec![Step::Requeue(2), ack(3, true)]);
        // A requeue behind an unfinished delivery goes out at once.
        assert_eq!(l.mark(4, false), Ok(()));
        assert_eq!(plan(&mut l, now, 8), (vec![Step::Requeue(4)], None));
        assert!(l.entries.is_empty());
    }

    #[test]
    fn a_delivery_is_settled_once_and_only_if_this_channel_delivered_it() {
        let mut l = ledger(1..=2);
        assert_eq!(l.mark(1, true), Ok(()));
        assert_eq!(l.mark(1, true), Err(Refused::AlreadySettled), "done twice");
        assert_eq!(
            l.mark(1, false),
            Err(Refused::AlreadySettled),
            "requeued after done"
        );
        assert_eq!(l.mark(7, true), Err(Refused::AlreadySettled), "unknown tag");
        assert_eq!(plan(&mut l, Instant::now(), 8).0, vec![ack(1, true)]);
        assert_eq!(
            l.mark(1, true),
            Err(Refused::AlreadySettled),
            "acked already"
        );
        // After the acker's last pass, a mark is refused, not dropped.
        l.close();
        assert_eq!(l.mark(2, true), Err(Refused::ChannelGone));
    }

    #[test]
    fn an_unmarked_delivery_is_never_covered() {
        // 1,000 deliveries marked in a scrambled order, one left unmarked:
        // no plan ever acks it or anything after it with `multiple`.
        let mut l = ledger(1..=1000);
        let now = Instant::now();
        let mut order: Vec<u64> = (1..=1000).filter(|t| *t != 500).collect();
        order.sort_by_key(|t| (t * 7919) % 1009);
        let mut sent = Vec::new();
        for chunk in order.chunks(13) {
            for &t in chunk {
                assert_eq!(l.mark(t, true), Ok(()));
            }
            let mut out = Vec::new();
            l.plan(now, usize::MAX, HOLD_FOR, &mut out);
            sent.extend(out);
        }
        for s in &sent {
            if let Step::Ack {
                tag,
                multiple: true,
            } = s
            {
                assert!(*tag < 500, "{s:?} covers the unmarked 500");
            }
        }
        assert_eq!(l.entries.front().map(|e| e.0), Some(500));
        assert_eq!(l.entries.len(), 501);
    }

    /// The hold timer against the real broker: two deliveries finished behind
    /// a stuck one are acked on their own once the hold is over, so when the
    /// connection dies without a flush only the stuck one comes back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deliveries_held_behind_a_stuck_one_are_acked_when_the_hold_ends() {
        use futures::StreamExt;
        use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
        use lapin::types::FieldTable;
        use lapin::{BasicProperties, Connection, ConnectionProperties};

        let Ok(url) = std::env::var("ASYA_TEST_RABBITMQ_URL") else {
            eprintln!(
                "SKIPPED: ASYA_TEST_RABBITMQ_URL unset; run `eval \"$(bash tests/servers/up.sh)\"`"
            );
            return;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let queue = format!("asya-tt{}-{nanos}-acks-hold", std::process::id());
        let props = ConnectionProperties::default;
        let conn = Connection::connect(&url, props()).await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        for i in 1..=3u8 {
            ch.basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &[b'0' + i],
                BasicProperties::default(),
            )
            .await
            .unwrap();
        }
        let mut consumer = ch
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let book = std::sync::Arc::new(AckBook::new(8));
        let _acker = tokio::spawn(book.clone().run(ch.clone()));
        let mut tags = Vec::new();
        for _ in 0..3 {
            let d = consumer.next().await.unwrap().unwrap();
            book.received(d.delivery_tag);
            tags.push((d.delivery_tag, d.data));
        }
        assert_eq!(tags[0].1, b"1");
        book.mark(tags[1].0, true).unwrap();
        book.mark(tags[2].0, true).unwrap();
        tokio::time::sleep(HOLD_FOR * 5).await;
        // A crash: the connection goes without the acker's flush.
        conn.close(200, "test".into()).await.unwrap();

        let conn = Connection::connect(&url, props()).await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        let mut consumer = ch
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(d.data, b"1");
        let more = tokio::time::timeout(Duration::from_millis(500), consumer.next()).await;
        assert!(more.is_err(), "a held delivery was never acked: {more:?}");
        ch.queue_delete(queue.as_str().into(), Default::default())
            .await
            .unwrap();
        let _ = conn.close(200, "done".into()).await;
    }
}
