//! ecs-dns: authoritative DNS for AWS ECS tasks.
//!
//! The pipeline runs one way:
//! `source → inventory → records → zone snapshot → DNS fronts`.
//!
//! - [`source`]: reads tasks (from an inventory file, or ECS and EC2) into an
//!   [`inventory::Inventory`] of facts;
//! - [`records`]: the pure naming and serving rules, inventory → records;
//! - [`zone`]: the immutable snapshot served, with its SOA serial;
//! - [`dns`]: the pure answer function and the network fronts;
//! - [`config`], [`cli`], [`app`]: settings and process wiring.

pub mod app;
pub mod cli;
pub mod config;
pub mod dns;
pub mod inventory;
pub mod ops;
pub mod records;
pub mod source;
#[cfg(test)]
mod testing;
pub mod xfr;
pub mod zone;
