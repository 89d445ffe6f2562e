//! Lock drivers: how lock nodes are named and sorted, and which node a contender waits on.
//!
//! As in Curator's `StandardLockInternalsDriver`: a contender's node is
//! `<dir>/_c_<uuid>-<kind>-<seq>`. The `_c_<uuid>-` part is the "protected" prefix: after a
//! connection loss during `create`, the contender finds its node again by the uuid instead of
//! creating a second one (<https://cwiki.apache.org/confluence/display/CURATOR/TN7>). Nodes are
//! ordered by the server-assigned sequence suffix alone, so prefixes never affect fairness.
//!
//! Kinds on one path: an exclusive lock (`lock`, also multiLock's and a 1-permit semaphore's
//! node) is a writer to readers, as Curator's read-write lock treats its write side, so
//! exclusive, `read` and `write` nodes share one queue and exclude each other. Semaphore leases
//! (`lease`) count permits instead of excluding, so they cannot share a queue with locks. Leader
//! election candidates (`latch`, Curator's `LeaderLatch` names) are a third family: a path is
//! either an election or a lock, never both.
//!
//! Which family a path belongs to is decided by its lowest node: the first kind on the path
//! wins. A contender whose listing shows a head of the other family is refused
//! ([`Decision::KindMismatch`]); one whose own family heads the queue never holds while a node
//! of the other family is ahead of it, but waits for that node to go instead of being refused
//! by it ([`other_family`]). Why this is sound:
//!
//! - *Never both in.* A contender holds only when no node of the other family is ahead of it
//!   in its listing. Of two nodes of different families, the later one's listing is sent after
//!   its own create, so it shows the earlier node while that node exists: the later one never
//!   holds while the earlier one does.
//! - *A refused node refuses nobody.* An intruder behind a node of the path's family is refused
//!   (that node heads its listing, or one of its family ahead of it does) and deleted a round trip
//!   later. Meanwhile a newcomer of the path's family sees the same head, so the intruder is not
//!   a reason to refuse it: it waits the round trip for the intruder's node to go. The first-come
//!   kind is never refused while one of its nodes heads the queue.
//! - *The one window left.* If every node of the path's family leaves within that round trip,
//!   the intruder's node is briefly the lowest: a newcomer then sees a path headed by the other
//!   kind and is refused, as it would be by a holder. Nothing of its own kind is on the path at
//!   that moment, and a retry a round trip later gets in.
//!
//! A listing can be stale (a contender's own listing may be answered after others moved), but
//! every rule above only ever reads nodes *ahead* of the contender, which existed when it was
//! created: staleness can turn a hold into a wait, never a wait into a hold.

/// A lock node seen in the lock directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contender {
    /// The node's name (not its full path).
    pub name: String,
    /// The node-kind tag (`lock`, `read`, `write`, `lease`, `latch`).
    pub kind: String,
    /// The server-assigned sequence number.
    pub sequence: i64,
}

impl Contender {
    /// Parses a child name; `None` for nodes that are not lock nodes (foreign or malformed).
    ///
    /// Only zktx's own shape, `_c_<id>-<kind>-<seq>`, is a contender: anything else in the
    /// directory (another client's `create(dir + "/", SEQUENTIAL)` makes names of digits only)
    /// is ignored, so it can neither break nor block the queue. Curator's protected names have
    /// this shape too, with a dashed UUID as the id (`_c_<8-4-4-4-12>-latch-<seq>`): the kind is
    /// the last dash-separated word before the sequence, so the dashes in the id do not matter.
    pub fn parse(name: &str) -> Option<Contender> {
        let rest = name.strip_prefix("_c_")?;
        let (head, digits) = rest.rsplit_once('-')?;
        if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (id, kind) = head.rsplit_once('-')?;
        if id.is_empty() || kind.is_empty() {
            return None;
        }
        Some(Contender { name: name.to_string(), kind: kind.to_string(), sequence: digits.parse().ok()? })
    }

    /// Whether this node was created with the given protected id.
    pub fn is_protected_by(&self, id: &str) -> bool {
        self.name.strip_prefix("_c_").and_then(|rest| rest.strip_prefix(id)).is_some_and(|rest| rest.starts_with('-'))
    }
}

/// Children sorted by sequence, lock nodes only.
pub fn sorted_contenders(children: &[String]) -> Vec<Contender> {
    let mut contenders: Vec<Contender> = children.iter().filter_map(|c| Contender::parse(c)).collect();
    contenders.sort_by_key(|c| c.sequence);
    contenders
}

/// The kind given to a child that is not a lock node (`Contender::parse` refuses it) in the
/// queue of a driver that counts such children ([`LatchDriver`]); its `sequence` is meaningless.
pub const FOREIGN: &str = "";

/// The sort key of a child of a latch path in Curator's `LeaderLatch` (5.x): the text after the
/// last `latch-` in its name, or the whole name when there is none
/// (`StandardLockInternalsDriver.standardFixForSorting(name, "latch-")`).
pub fn curator_latch_key(name: &str) -> &str {
    match name.rfind("latch-") {
        Some(at) => &name[at + "latch-".len()..],
        None => name,
    }
}

/// The participants of an election path, in the order Curator's `LeaderLatch` decides on
/// (`LockInternals.getSortedChildren(children, "latch-", sorter)`): every child, sorted by
/// [`curator_latch_key`] compared as Java's `String.compareTo` does (UTF-16 code units). So a
/// foreign child (a plain sequential `0000000000`, a `-early`) is a participant where Curator
/// puts it, and for ZooKeeper's 10-digit sequence suffixes `latch` nodes keep their sequence
/// order. Two differences, both on paths Curator would mishandle anyway: nodes of another
/// family (`_c_<id>-lock-<seq>`, …: the path is a lock's, and `lead()` refuses it) are left out,
/// and equal keys (only possible between non-sequential names) are ordered by name where
/// Curator keeps the server's listing order, which is unspecified.
pub fn latch_order(children: &[String]) -> Vec<String> {
    let mut out: Vec<&String> = children
        .iter()
        .filter(|name| Contender::parse(name).is_none_or(|c| family(&c.kind) == Family::Latch))
        .collect();
    out.sort_by(|a, b| curator_latch_key(a).encode_utf16().cmp(curator_latch_key(b).encode_utf16()).then_with(|| a.cmp(b)));
    out.into_iter().cloned().collect()
}

/// What a contender should do after looking at the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// It holds the lock.
    Acquired,
    /// Watch this node (by name) and look again when it changes.
    WaitFor(String),
    /// Watch the directory's children and look again when they change (semaphores: any of the
    /// holders ahead may leave first).
    WaitForChildren,
    /// Its own node is gone from the directory (deleted by someone else, or the session ended).
    NodeGone,
    /// A node of another family (lease, lock, latch) heads the queue: this kind is not allowed
    /// on a path used that way (the kind found is given).
    KindMismatch(String),
}

/// The families of node kinds: nodes of one family share a queue, nodes of different families
/// never hold together on one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// Semaphore leases: count permits.
    Lease,
    /// Leader election candidates (Curator's `LeaderLatch`).
    Latch,
    /// Exclusive, read and write locks (and any kind zktx does not know: they exclude).
    Lock,
}

fn family(kind: &str) -> Family {
    match kind {
        "lease" => Family::Lease,
        "latch" => Family::Latch,
        _ => Family::Lock,
    }
}

/// What the nodes of another family (lease, lock, latch) ahead of position `i` mean for a
/// contender of kind `mine`: `None` when there are none (the family's own rule decides),
/// [`Decision::KindMismatch`] when the queue's lowest node is of another family (the path is
/// in use that way), else [`Decision::WaitFor`] the nearest of them: an intruder behind a node of
/// `mine`'s family, refused by it and about to go, which must not refuse a legitimate contender
/// (but neither may it be ignored: its own listing may not have been answered yet).
fn other_family(queue: &[Contender], i: usize, mine: &str) -> Option<Decision> {
    let other = |c: &&Contender| family(&c.kind) != family(mine);
    let nearest = queue[..i].iter().rev().find(other)?;
    match queue.first() {
        Some(head) if other(&head) => Some(Decision::KindMismatch(head.kind.clone())),
        _ => Some(Decision::WaitFor(nearest.name.clone())),
    }
}

/// Decides, from the sorted queue, whether a contender holds the lock.
pub trait LockDriver: Send + Sync {
    /// The node-kind tag in the node name (`lock`, `read`, `write`).
    fn kind(&self) -> &str;

    /// Given the sorted queue and the contender's own node name, decide.
    fn decide(&self, queue: &[Contender], mine: &str) -> Decision;

    /// The queue [`LockDriver::decide`] is given for a directory listing: the lock nodes sorted
    /// by sequence ([`sorted_contenders`]), foreign children ignored.
    fn contenders(&self, children: &[String]) -> Vec<Contender> {
        sorted_contenders(children)
    }
}

/// Exclusive lock: the first node holds it; a waiter watches its predecessor only, so each
/// release wakes exactly one waiter (no herd effect).
#[derive(Clone, Copy, Debug)]
pub struct StandardDriver {
    /// How many contenders may hold at once (1 for a mutex).
    pub max_leases: usize,
}

impl LockDriver for StandardDriver {
    fn kind(&self) -> &str {
        if self.max_leases == 1 {
            "lock"
        } else {
            "lease"
        }
    }

    fn decide(&self, queue: &[Contender], mine: &str) -> Decision {
        let position = queue.iter().position(|c| c.name == mine);
        if let Some(decision) = position.and_then(|i| other_family(queue, i, self.kind())) {
            return decision;
        }
        match position {
            None => Decision::NodeGone,
            Some(i) if i < self.max_leases => Decision::Acquired,
            Some(i) if self.max_leases == 1 => Decision::WaitFor(queue[i - 1].name.clone()),
            // Semaphore: holders ahead leave in any order; watching one of them could miss a
            // free permit, so watch the directory.
            Some(_) => Decision::WaitForChildren,
        }
    }
}

/// Which side of a read-write lock (Curator's `InterProcessReadWriteLock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadWriteDriver {
    /// Shared: holds when no write or exclusive-lock node is ahead of it; watches the nearest
    /// such node ahead.
    Read,
    /// Exclusive: holds when first in the queue; watches its predecessor, whatever its kind.
    Write,
}

impl LockDriver for ReadWriteDriver {
    fn kind(&self) -> &str {
        match self {
            ReadWriteDriver::Read => "read",
            ReadWriteDriver::Write => "write",
        }
    }

    fn decide(&self, queue: &[Contender], mine: &str) -> Decision {
        let Some(i) = queue.iter().position(|c| c.name == mine) else { return Decision::NodeGone };
        if let Some(decision) = other_family(queue, i, self.kind()) {
            return decision;
        }
        match self {
            ReadWriteDriver::Write if i == 0 => Decision::Acquired,
            ReadWriteDriver::Write => Decision::WaitFor(queue[i - 1].name.clone()),
            // Queue order is arrival order: a writer ahead blocks later readers, so writers are
            // not starved by a stream of readers.
            // An exclusive lock (`lock`) on the same path is a writer too (Curator's answer):
            // otherwise `lock(P)` and `readWriteLock(P).readLock()` would hold together.
            ReadWriteDriver::Read => match queue[..i].iter().rev().find(|c| c.kind == "write" || c.kind == "lock") {
                None => Decision::Acquired,
                Some(w) => Decision::WaitFor(w.name.clone()),
            },
        }
    }
}

/// Leader election (Curator's `LeaderLatch`): the first participant in Curator's order
/// ([`latch_order`]) leads; every other candidate watches its predecessor in that order, so a
/// leader's departure wakes exactly its successor.
///
/// Curator counts *every* child of the path as a participant, sorted by the text after `latch-`
/// in its name (the whole name when there is none): for `latch` nodes' 10-digit sequence
/// suffixes that is the order of [`Contender::sequence`], and a foreign child (someone's plain
/// sequential `0000000000`) sorts where that text puts it. This driver decides the same way, so
/// a zktx candidate and a Curator one on the same path agree on the leader: a candidate behind a
/// foreign child waits for it to go, as Curator's does. Nodes of another family are refused or
/// waited for by sequence first ([`other_family`]), as for every driver.
#[derive(Clone, Copy, Debug)]
pub struct LatchDriver;

impl LockDriver for LatchDriver {
    fn kind(&self) -> &str {
        "latch"
    }

    fn decide(&self, queue: &[Contender], mine: &str) -> Decision {
        // Families are decided on the lock nodes by sequence, foreign children aside.
        let nodes: Vec<Contender> = queue.iter().filter(|c| c.kind != FOREIGN).cloned().collect();
        let Some(i) = nodes.iter().position(|c| c.name == mine) else { return Decision::NodeGone };
        if let Some(decision) = other_family(&nodes, i, self.kind()) {
            return decision;
        }
        let names: Vec<String> = queue.iter().map(|c| c.name.clone()).collect();
        let order = latch_order(&names);
        match order.iter().position(|n| n == mine) {
            None => Decision::NodeGone,
            Some(0) => Decision::Acquired,
            Some(at) => Decision::WaitFor(order[at - 1].clone()),
        }
    }

    /// Every child: the lock nodes by sequence, then the foreign children (kind [`FOREIGN`]).
    fn contenders(&self, children: &[String]) -> Vec<Contender> {
        let mut queue = sorted_contenders(children);
        queue.extend(children.iter().filter(|c| Contender::parse(c).is_none()).map(|c| Contender { name: c.clone(), kind: FOREIGN.to_string(), sequence: -1 }));
        queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sorts_by_sequence_not_by_prefix() {
        let q = sorted_contenders(&names(&["_c_b-lock-0000000002", "_c_a-lock-0000000003", "junk", "_c_z-lock-0000000001"]));
        let seqs: Vec<i64> = q.iter().map(|c| c.sequence).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn mutex_waits_on_its_predecessor_only() {
        let q = sorted_contenders(&names(&["_c_a-lock-0000000001", "_c_b-lock-0000000002", "_c_c-lock-0000000003"]));
        let d = StandardDriver { max_leases: 1 };
        assert_eq!(d.decide(&q, "_c_a-lock-0000000001"), Decision::Acquired);
        assert_eq!(d.decide(&q, "_c_c-lock-0000000003"), Decision::WaitFor("_c_b-lock-0000000002".into()));
        assert_eq!(d.decide(&q, "_c_x-lock-0000000009"), Decision::NodeGone);
        let q = sorted_contenders(&names(&["_c_a-lease-0000000001", "_c_b-lease-0000000002", "_c_c-lease-0000000003"]));
        let sem = StandardDriver { max_leases: 2 };
        assert_eq!(sem.decide(&q, "_c_b-lease-0000000002"), Decision::Acquired);
        assert_eq!(sem.decide(&q, "_c_c-lease-0000000003"), Decision::WaitForChildren);
    }

    #[test]
    fn readers_share_until_a_writer_queues_and_writers_wait_for_everyone_ahead() {
        let q = sorted_contenders(&names(&[
            "_c_a-read-0000000001",
            "_c_b-read-0000000002",
            "_c_c-write-0000000003",
            "_c_d-read-0000000004",
            "_c_e-write-0000000005",
        ]));
        assert_eq!(q[2].kind, "write");
        let (r, w) = (ReadWriteDriver::Read, ReadWriteDriver::Write);
        assert_eq!(r.decide(&q, "_c_a-read-0000000001"), Decision::Acquired);
        assert_eq!(r.decide(&q, "_c_b-read-0000000002"), Decision::Acquired);
        assert_eq!(w.decide(&q, "_c_c-write-0000000003"), Decision::WaitFor("_c_b-read-0000000002".into()));
        assert_eq!(r.decide(&q, "_c_d-read-0000000004"), Decision::WaitFor("_c_c-write-0000000003".into()));
        assert_eq!(w.decide(&q, "_c_e-write-0000000005"), Decision::WaitFor("_c_d-read-0000000004".into()));
    }

    #[test]
    fn an_exclusive_lock_is_a_writer_to_readers() {
        let q = sorted_contenders(&names(&["_c_a-lock-0000000001", "_c_b-read-0000000002", "_c_c-write-0000000003", "_c_d-read-0000000004"]));
        let (r, w, x) = (ReadWriteDriver::Read, ReadWriteDriver::Write, StandardDriver { max_leases: 1 });
        assert_eq!(x.decide(&q, "_c_a-lock-0000000001"), Decision::Acquired);
        assert_eq!(r.decide(&q, "_c_b-read-0000000002"), Decision::WaitFor("_c_a-lock-0000000001".into()));
        assert_eq!(w.decide(&q, "_c_c-write-0000000003"), Decision::WaitFor("_c_b-read-0000000002".into()));
        assert_eq!(r.decide(&q, "_c_d-read-0000000004"), Decision::WaitFor("_c_c-write-0000000003".into()));
        let q = sorted_contenders(&names(&["_c_a-read-0000000001", "_c_b-lock-0000000002"]));
        assert_eq!(x.decide(&q, "_c_b-lock-0000000002"), Decision::WaitFor("_c_a-read-0000000001".into()));
    }

    #[test]
    fn leases_and_locks_never_share_a_queue_and_only_the_later_one_is_refused() {
        let sem = StandardDriver { max_leases: 3 };
        let (r, w, x) = (ReadWriteDriver::Read, ReadWriteDriver::Write, StandardDriver { max_leases: 1 });
        let q = sorted_contenders(&names(&["_c_a-lease-0000000001", "_c_b-lock-0000000002", "_c_c-read-0000000003", "_c_d-write-0000000004"]));
        assert_eq!(sem.decide(&q, "_c_a-lease-0000000001"), Decision::Acquired);
        assert_eq!(x.decide(&q, "_c_b-lock-0000000002"), Decision::KindMismatch("lease".into()));
        assert_eq!(r.decide(&q, "_c_c-read-0000000003"), Decision::KindMismatch("lease".into()));
        assert_eq!(w.decide(&q, "_c_d-write-0000000004"), Decision::KindMismatch("lease".into()));
        let q = sorted_contenders(&names(&["_c_a-read-0000000001", "_c_b-lease-0000000002", "_c_c-lease-0000000003"]));
        assert_eq!(r.decide(&q, "_c_a-read-0000000001"), Decision::Acquired);
        assert_eq!(sem.decide(&q, "_c_b-lease-0000000002"), Decision::KindMismatch("read".into()));
        assert_eq!(sem.decide(&q, "_c_c-lease-0000000003"), Decision::KindMismatch("read".into()));
    }

    #[test]
    fn a_refused_intruder_makes_the_paths_own_kind_wait_never_refuses_it() {
        let (sem, r, x) = (StandardDriver { max_leases: 2 }, ReadWriteDriver::Read, StandardDriver { max_leases: 1 });
        // A semaphore path: the lock node is refused by the lease ahead; a lease behind it waits
        // the round trip the refused node takes to go, with a permit still free.
        let q = sorted_contenders(&names(&["_c_a-lease-0000000001", "_c_b-lock-0000000002", "_c_c-lease-0000000003", "_c_d-lock-0000000004"]));
        assert_eq!(x.decide(&q, "_c_b-lock-0000000002"), Decision::KindMismatch("lease".into()));
        assert_eq!(sem.decide(&q, "_c_c-lease-0000000003"), Decision::WaitFor("_c_b-lock-0000000002".into()));
        assert_eq!(x.decide(&q, "_c_d-lock-0000000004"), Decision::KindMismatch("lease".into()));
        // Once it is gone the lease holds.
        let q = sorted_contenders(&names(&["_c_a-lease-0000000001", "_c_c-lease-0000000003"]));
        assert_eq!(sem.decide(&q, "_c_c-lease-0000000003"), Decision::Acquired);
        // A lock path: the lease is refused; locks and readers behind it wait (for it, then for
        // the holder), they are not refused.
        let q = sorted_contenders(&names(&["_c_a-lock-0000000001", "_c_b-lease-0000000002", "_c_c-lock-0000000003", "_c_d-read-0000000004"]));
        assert_eq!(sem.decide(&q, "_c_b-lease-0000000002"), Decision::KindMismatch("lock".into()));
        assert_eq!(x.decide(&q, "_c_c-lock-0000000003"), Decision::WaitFor("_c_b-lease-0000000002".into()));
        assert_eq!(r.decide(&q, "_c_d-read-0000000004"), Decision::WaitFor("_c_b-lease-0000000002".into()));
        // The window the module doc names: every lease left before the refused lock node went;
        // that node heads the queue, and a newcomer lease is refused by it.
        let q = sorted_contenders(&names(&["_c_b-lock-0000000002", "_c_e-lease-0000000005"]));
        assert_eq!(sem.decide(&q, "_c_e-lease-0000000005"), Decision::KindMismatch("lock".into()));
    }

    #[test]
    fn no_listing_lets_two_families_hold_together() {
        // Every order of up to four nodes of every kind, every subset still present: a
        // contender that holds never has a node of another family ahead of it.
        let kinds = ["lease", "lock", "read", "write", "latch"];
        let drivers: Vec<(&str, Box<dyn LockDriver>)> = vec![
            ("lease", Box::new(StandardDriver { max_leases: 2 })),
            ("lock", Box::new(StandardDriver { max_leases: 1 })),
            ("read", Box::new(ReadWriteDriver::Read)),
            ("write", Box::new(ReadWriteDriver::Write)),
            ("latch", Box::new(LatchDriver)),
        ];
        let k = kinds.len();
        for n in 1..=4u32 {
            for combo in 0..k.pow(n) {
                let all: Vec<String> = (0..n as usize).map(|j| format!("_c_{j}-{}-{:010}", kinds[(combo / k.pow(j as u32)) % k], j + 1)).collect();
                let q = sorted_contenders(&all);
                for (i, me) in q.iter().enumerate() {
                    let (_, d) = drivers.iter().find(|(kind, _)| *kind == me.kind).expect("driver");
                    if d.decide(&q, &me.name) == Decision::Acquired {
                        assert!(q[..i].iter().all(|c| family(&c.kind) == family(&me.kind)), "{all:?}: {} holds", me.name);
                    }
                }
            }
        }
    }

    #[test]
    fn curators_leader_latch_names_parse_and_the_lowest_sequence_leads() {
        // As Curator 5's LeaderLatch names them: protected prefix with a dashed UUID.
        let curator = "_c_3f2b8c0e-5a1d-4c2e-9b7a-0d1e2f3a4b5c-latch-0000000002";
        let c = Contender::parse(curator).expect("a Curator latch node is a contender");
        assert_eq!((c.kind.as_str(), c.sequence), ("latch", 2));
        assert!(c.is_protected_by("3f2b8c0e-5a1d-4c2e-9b7a-0d1e2f3a4b5c"));
        let q = sorted_contenders(&names(&[curator, "_c_0123abcd-latch-0000000003", "_c_ffff-latch-0000000001"]));
        assert_eq!(LatchDriver.decide(&q, "_c_ffff-latch-0000000001"), Decision::Acquired);
        assert_eq!(LatchDriver.decide(&q, curator), Decision::WaitFor("_c_ffff-latch-0000000001".into()));
        assert_eq!(LatchDriver.decide(&q, "_c_0123abcd-latch-0000000003"), Decision::WaitFor(curator.into()));
        assert_eq!(LatchDriver.decide(&q, "_c_gone-latch-0000000009"), Decision::NodeGone);
    }

    #[test]
    fn the_latch_driver_orders_every_child_as_curator_does() {
        // Curator 5.4 sorts every child by the text after the last "latch-" (the whole name
        // when there is none): a plain sequential child made before the latch nodes leads, one
        // made between two latch nodes sits between them, "-early" sorts before digits and
        // "config" after them; a lock node of another family is left out.
        let children = names(&["_c_b-latch-0000000003", "config", "0000000001", "-early", "_c_a-latch-0000000002", "_c_c-latch-0000000005", "0000000004"]);
        assert_eq!(latch_order(&children), names(&["-early", "0000000001", "_c_a-latch-0000000002", "_c_b-latch-0000000003", "0000000004", "_c_c-latch-0000000005", "config"]));
        let q = LatchDriver.contenders(&children);
        assert_eq!(LatchDriver.decide(&q, "_c_a-latch-0000000002"), Decision::WaitFor("0000000001".into()));
        assert_eq!(LatchDriver.decide(&q, "_c_c-latch-0000000005"), Decision::WaitFor("0000000004".into()));
        assert_eq!(LatchDriver.decide(&q, "_c_gone-latch-0000000009"), Decision::NodeGone);
        // Foreign children that sort after every candidate block nobody.
        let q = LatchDriver.contenders(&names(&["config", "zz", "_c_a-latch-0000000002", "_c_b-latch-0000000003"]));
        assert_eq!(LatchDriver.decide(&q, "_c_a-latch-0000000002"), Decision::Acquired);
        assert_eq!(LatchDriver.decide(&q, "_c_b-latch-0000000003"), Decision::WaitFor("_c_a-latch-0000000002".into()));
        // Java's compareTo is on UTF-16 code units: U+FF61 sorts after U+1F600 there (not in UTF-8).
        assert_eq!(latch_order(&names(&["\u{FF61}", "\u{1F600}"])), names(&["\u{1F600}", "\u{FF61}"]));
        // Other lock recipes' rules are unchanged: foreign children are no contenders to them.
        assert_eq!(StandardDriver { max_leases: 1 }.contenders(&children).len(), 3);
        // A lock node ahead still refuses the path, foreign children or not.
        let q = LatchDriver.contenders(&names(&["0000000000", "_c_x-lock-0000000001", "_c_a-latch-0000000002"]));
        assert_eq!(LatchDriver.decide(&q, "_c_a-latch-0000000002"), Decision::KindMismatch("lock".into()));
        assert!(!latch_order(&names(&["0000000000", "_c_x-lock-0000000001"])).contains(&"_c_x-lock-0000000001".to_string()));
    }

    #[test]
    fn an_election_path_and_a_lock_path_refuse_each_other() {
        let x = StandardDriver { max_leases: 1 };
        let q = sorted_contenders(&names(&["_c_a-latch-0000000001", "_c_b-lock-0000000002", "_c_c-latch-0000000003"]));
        assert_eq!(x.decide(&q, "_c_b-lock-0000000002"), Decision::KindMismatch("latch".into()));
        // The latch behind the refused lock node waits for it to go, it is not refused.
        assert_eq!(LatchDriver.decide(&q, "_c_c-latch-0000000003"), Decision::WaitFor("_c_b-lock-0000000002".into()));
        let q = sorted_contenders(&names(&["_c_a-lock-0000000001", "_c_b-latch-0000000002"]));
        assert_eq!(LatchDriver.decide(&q, "_c_b-latch-0000000002"), Decision::KindMismatch("lock".into()));
    }

    #[test]
    fn foreign_names_are_not_contenders() {
        for name in ["0000000003", "-0000000003", "x-lock-0000000001", "_c_-lock-0000000001", "_c_a--0000000001", "_c_a-lock-12", "lock-0000000001"] {
            assert_eq!(Contender::parse(name), None, "{name}");
        }
        assert_eq!(Contender::parse("_c_a-lock-0000000001").map(|c| (c.kind, c.sequence)), Some(("lock".to_string(), 1)));
    }

    #[test]
    fn protected_prefix_matches_exactly() {
        let c = Contender::parse("_c_1234-lock-0000000007");
        assert!(c.as_ref().is_some_and(|c| c.is_protected_by("1234")));
        assert!(c.is_some_and(|c| !c.is_protected_by("123")));
    }
}
