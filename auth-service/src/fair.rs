//! A semaphore that is fair between clients instead of between calls.
//!
//! Password hashing is the one scarce resource of auth-service (a core for tens of
//! milliseconds per call). A FIFO semaphore serves calls in arrival order, so one address that
//! sends 100 logins at once makes everybody else wait behind all 100. This gate keeps one queue
//! per client and hands a freed permit to the next client in round-robin order: a caller from a
//! quiet address waits for at most one hash per busy client ahead of it, however deep their
//! queues are.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

/// Permits shared fairly between client keys. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FairGate {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    /// Permits not held by anyone.
    free: usize,
    /// Waiters per client key, oldest first.
    queues: HashMap<String, VecDeque<oneshot::Sender<Permit>>>,
    /// Client keys with waiters, in the order they get the next permits.
    turns: VecDeque<String>,
}

/// The right to run one hash; released (to the next client in turn) when dropped.
#[derive(Debug)]
pub struct Permit {
    gate: Option<FairGate>,
}

impl FairGate {
    /// A gate with `permits` permits.
    pub fn new(permits: usize) -> Self {
        FairGate {
            state: Arc::new(Mutex::new(State {
                free: permits,
                queues: HashMap::new(),
                turns: VecDeque::new(),
            })),
        }
    }

    /// Waits for a permit on behalf of `client`. Cancel-safe: a waiter that gives up passes its
    /// permit on (or never receives one).
    pub async fn acquire(&self, client: &str) -> Permit {
        let receiver = {
            let mut state = self.lock();
            if state.free > 0 && state.turns.is_empty() {
                state.free -= 1;
                return Permit {
                    gate: Some(self.clone()),
                };
            }
            let (sender, receiver) = oneshot::channel();
            let queue = state.queues.entry(client.to_string()).or_default();
            let first = queue.is_empty();
            queue.push_back(sender);
            if first {
                state.turns.push_back(client.to_string());
            }
            receiver
        };
        // The gate never drops a sender without sending, so this cannot fail while the gate
        // lives; and the gate lives as long as a clone of it (this one) does.
        receiver.await.unwrap_or(Permit { gate: None })
    }

    /// Hands a released permit to the next waiting client in turn, or frees it.
    fn release(&self) {
        let mut state = self.lock();
        while let Some(client) = state.turns.pop_front() {
            let Some(queue) = state.queues.get_mut(&client) else {
                continue;
            };
            let Some(sender) = queue.pop_front() else {
                state.queues.remove(&client);
                continue;
            };
            if queue.is_empty() {
                state.queues.remove(&client);
            } else {
                state.turns.push_back(client);
            }
            let permit = Permit {
                gate: Some(self.clone()),
            };
            match sender.send(permit) {
                Ok(()) => return,
                // The waiter gave up: its permit comes back through `Drop` with no gate, so try
                // the next one.
                Err(mut unsent) => unsent.gate = None,
            }
        }
        state.free += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_quiet_client_is_served_before_a_busy_clients_backlog() {
        let gate = FairGate::new(1);
        let held = gate.acquire("flood").await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..5 {
            let (gate, order) = (gate.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let _permit = gate.acquire("flood").await;
                order.lock().expect("lock").push(format!("flood{i}"));
            }));
            tokio::task::yield_now().await;
        }
        let quiet = {
            let (gate, order) = (gate.clone(), order.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire("quiet").await;
                order.lock().expect("lock").push("quiet".to_string());
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        quiet.await.expect("quiet");
        for w in waiters {
            w.await.expect("flood");
        }
        let order = order.lock().expect("lock").clone();
        let quiet_at = order.iter().position(|o| o == "quiet").expect("served");
        assert!(quiet_at <= 1, "quiet waited behind the backlog: {order:?}");
    }

    #[tokio::test]
    async fn a_cancelled_waiter_does_not_leak_its_permit() {
        let gate = FairGate::new(1);
        let held = gate.acquire("a").await;
        let cancelled = {
            let gate = gate.clone();
            tokio::spawn(async move {
                let _ = gate.acquire("b").await;
            })
        };
        tokio::task::yield_now().await;
        cancelled.abort();
        let _ = cancelled.await;
        drop(held);
        tokio::time::timeout(Duration::from_secs(1), gate.acquire("c"))
            .await
            .expect("the permit came back");
    }
}
