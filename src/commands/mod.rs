//! One module per command group.

pub mod bench;
pub mod bench_mcp;
pub mod demo;
pub mod keys;
pub mod ledger;
pub mod mcp;
pub mod memory;
