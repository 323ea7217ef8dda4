//! Serving while the sources are read: the state exists from the start, tool calls wait until
//! reading is done (with progress notifications when the client asked for them), and a failure
//! to read is every tool's error.

use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Loading,
    Ready,
    Failed(String),
}

pub struct Loading {
    tx: watch::Sender<Phase>,
}

impl Loading {
    pub fn new() -> Loading {
        Loading {
            tx: watch::channel(Phase::Loading).0,
        }
    }

    pub fn finish(&self, r: Result<(), String>) {
        self.tx.send_replace(match r {
            Ok(()) => Phase::Ready,
            Err(e) => Phase::Failed(e),
        });
    }

    pub fn phase(&self) -> Phase {
        self.tx.borrow().clone()
    }

    pub fn is_ready(&self) -> bool {
        *self.tx.borrow() == Phase::Ready
    }

    /// Waits until the sources are read; the error says why they could not be.
    pub async fn wait(&self) -> Result<(), String> {
        let mut rx = self.tx.subscribe();
        let phase = rx
            .wait_for(|p| *p != Phase::Loading)
            .await
            .map(|p| p.clone())
            .unwrap_or(Phase::Failed("the loader stopped".into()));
        match phase {
            Phase::Failed(e) => Err(e),
            _ => Ok(()),
        }
    }
}

impl Default for Loading {
    fn default() -> Self {
        Loading::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_see_the_outcome() {
        let l = std::sync::Arc::new(Loading::new());
        assert_eq!(l.phase(), Phase::Loading);
        let w = {
            let l = l.clone();
            tokio::spawn(async move { l.wait().await })
        };
        tokio::task::yield_now().await;
        l.finish(Err("bad file".into()));
        assert_eq!(w.await.unwrap(), Err("bad file".into()));
        assert_eq!(l.wait().await, Err("bad file".into()));
        let ok = Loading::new();
        ok.finish(Ok(()));
        assert!(ok.is_ready());
        assert_eq!(ok.wait().await, Ok(()));
    }
}
