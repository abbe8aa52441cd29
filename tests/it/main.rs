//! Integration tests: the real binary, real clients, real peers.

mod alerts;
mod bench_chart;
mod cli;
mod conformance;
mod corpus;
mod dns;
mod doc_examples;
mod ecs;
mod events;
mod file_source;
mod fronts;
mod harness;
mod hickory_client;
mod hostile;
mod hostile_ops;
mod knot;
mod lifecycle;
mod moto;
mod ops;
mod reverse;
mod rrl;
mod sources;
mod spread;
mod status_page;
mod xfr;
