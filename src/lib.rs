//! ecs-dns: authoritative DNS for AWS ECS tasks.
//!
//! The data flows one way,
//! `source → inventory → records → zone snapshot → dns answers → fronts, xfr, ops`,
//! and each module imports only modules of the layers below its own
//! (`scripts/check-layers` checks it; `docs/architecture.md` explains it):
//!
//! 0. [`files`], [`throttled_log`], [`inventory`], [`wire`]: bounded file
//!    reads, log lines throttled per reason, the facts about tasks, DNS
//!    wire-format helpers;
//! 1. [`config`]: the settings, as plain types (then the unit tests'
//!    fixtures, `testing`);
//! 2. [`records`] (the pure naming and serving rules, inventory → records),
//!    [`query_counters`] (the query path's atomics);
//! 3. [`zone`]: the immutable snapshot served, with its SOA serial;
//! 4. [`dns`] (the pure answer function and the pre-rendered answers),
//!    [`xfr`] (zone transfers, NOTIFY);
//! 5. [`publish`] (snapshot + answers swapped in together), [`front`] (the
//!    network fronts and their one dispatch);
//! 6. [`source`]: where tasks come from (a file, or ECS and EC2);
//! 7. [`ops`]: metrics, health, state file, reloads;
//! 8. [`cli`], then 9. [`app`]: the command line and the process wiring.

// The one module allowed unsafe code is the UDP front's batched I/O
// (`front::udp::batch`, Linux), which says so where it is declared.
#![deny(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod connection_slots;
pub mod dns;
pub mod files;
pub mod front;
pub mod inventory;
pub mod ops;
pub mod publish;
pub mod query_counters;
pub mod records;
pub mod source;
#[cfg(test)]
mod testing;
pub mod throttled_log;
pub mod wire;
pub mod xfr;
pub mod zone;
