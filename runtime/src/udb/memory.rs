//! A UDB in memory: for tests and for coordinators whose rollouts need not
//! survive a restart. It can be told to refuse writes, as a full disk would.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Batch, Content, Udb, UdbError};
use crate::sync::lock;

/// A UDB in memory. Clones share the content and the failure switch, so a
/// test can keep one and give the coordinator the other.
#[derive(Debug, Clone, Default)]
pub struct MemoryUdb {
    content: Arc<Mutex<Content>>,
    refuse: Arc<AtomicBool>,
}

impl MemoryUdb {
    /// An empty UDB.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, refuse every write (`true`) or accept them again.
    pub fn refuse_writes(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    /// What is stored now.
    pub fn content(&self) -> Content {
        lock(&self.content).clone()
    }
}

impl Udb for MemoryUdb {
    fn read_all(&self) -> Result<Content, UdbError> {
        Ok(self.content())
    }

    fn write(&self, batches: &[Batch]) -> Result<(), UdbError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(UdbError {
                path: PathBuf::from("memory"),
                detail: "write refused (the test's switch is on)".into(),
            });
        }
        let mut content = lock(&self.content);
        for batch in batches {
            for n in &batch.nodes {
                content.nodes.insert(n.info.id.clone(), n.clone());
            }
            for u in &batch.upgrades {
                content.upgrades.insert(u.id, u.clone());
            }
            content.events.extend(batch.events.iter().cloned());
            for id in &batch.forget {
                content.nodes.remove(id);
            }
            for (id, gates) in &batch.gates {
                content.gates.insert(*id, gates.clone());
            }
        }
        Ok(())
    }
}
