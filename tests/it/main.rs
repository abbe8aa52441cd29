//! Integration tests: the real binary, real clients, real peers.

mod cli;
mod dns;
mod file_source;
mod harness;
mod hickory_client;
