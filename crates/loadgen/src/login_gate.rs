//! The gate the phases that log many sessions in ramp them through: at most so many logins in
//! flight at once, and each one's result told to the phase as soon as it is known, so the
//! phase counts them while the other sessions go on.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// How a login went, as told to its phase: `Err` holds the error's text.
pub type LoginResult = Result<(), String>;

/// At most a given number of logins at once; its clones share the places.
#[derive(Clone)]
pub struct LoginGate {
    places: Arc<Semaphore>,
}

/// A login's place in the gate, held until it is done.
pub struct Turn {
    // `None` only were the gate closed, which it never is: the login then goes ahead.
    _place: Option<OwnedSemaphorePermit>,
}

impl LoginGate {
    /// At most `concurrent` logins at once (at least one).
    pub fn new(concurrent: usize) -> Self {
        LoginGate {
            places: Arc::new(Semaphore::new(concurrent.max(1))),
        }
    }

    /// Waits for a place, in the order asked.
    pub async fn turn(&self) -> Turn {
        Turn {
            _place: self.places.clone().acquire_owned().await.ok(),
        }
    }
}

impl Turn {
    /// Runs `login` in this turn, which ends with it (the session it opened goes on outside
    /// the gate), tells `results` how it went, and returns what it gave.
    pub async fn login<T, E: Display>(
        self,
        login: impl Future<Output = Result<T, E>>,
        results: &mpsc::UnboundedSender<LoginResult>,
    ) -> Result<T, E> {
        let login = login.await;
        drop(self);
        let _ = results.send(login.as_ref().map(|_| ()).map_err(ToString::to_string));
        login
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test]
    async fn a_login_waits_for_a_place_that_a_finished_login_frees() {
        let gate = LoginGate::new(2);
        let (results, _seen) = mpsc::unbounded_channel();
        let first = gate.turn().await;
        let _second = gate.turn().await;
        assert!(gate.turn().now_or_never().is_none(), "a third login waits");
        assert_eq!(
            first.login(async { Ok::<_, String>(7) }, &results).await,
            Ok(7)
        );
        assert!(gate.turn().now_or_never().is_some(), "its place is free");
    }

    #[tokio::test]
    async fn a_gate_of_zero_places_still_lets_one_login_through() {
        let gate = LoginGate::new(0);
        let _only = tokio::time::timeout(std::time::Duration::from_secs(5), gate.turn())
            .await
            .expect("one login goes through");
        assert!(gate.turn().now_or_never().is_none());
    }

    #[tokio::test]
    async fn each_login_tells_the_phase_how_it_went() {
        let gate = LoginGate::new(1);
        let (results, mut seen) = mpsc::unbounded_channel();
        let failed = gate
            .turn()
            .await
            .login(async { Err::<(), _>("refused: bad UserSig") }, &results)
            .await;
        assert_eq!(failed, Err("refused: bad UserSig"));
        let _ = gate
            .turn()
            .await
            .login(async { Ok::<_, &str>(()) }, &results)
            .await;
        assert_eq!(seen.try_recv(), Ok(Err("refused: bad UserSig".to_string())));
        assert_eq!(seen.try_recv(), Ok(Ok(())));
    }
}
