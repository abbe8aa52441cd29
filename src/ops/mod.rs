//! Operating the server: the HTTP ops listener (metrics, health, the
//! records with their provenance, the status page), the state file for warm restarts,
//! signals and reloads, and the `healthcheck` client.

pub mod health;
pub mod healthcheck;
pub mod http;
pub mod inspect;
pub mod limits;
pub mod listener;
pub mod listing;
pub mod memory;
pub mod metrics;
pub mod reload;
pub mod signals;
pub mod state;
pub mod status;
