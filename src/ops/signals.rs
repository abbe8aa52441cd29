//! Process signals: SIGTERM and SIGINT stop the server, SIGHUP reloads it.

use tokio::signal::unix::{SignalKind, signal};

/// What a signal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM, SIGINT: stop accepting, finish, save state, exit 0.
    Stop(&'static str),
    /// SIGHUP: re-read the configuration and the source.
    Reload,
}

/// The signal handlers, installed at once so that a signal arriving before
/// the first `next()` is not lost (nor kills the process).
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next signal.
    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Stop("SIGTERM"),
            _ = self.int.recv() => Request::Stop("SIGINT"),
            _ = self.hup.recv() => Request::Reload,
        }
    }
}
