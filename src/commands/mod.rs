//! One module per command group.

pub mod bench;
pub mod config;
pub mod demo;
pub mod keys;
pub mod ledger;
pub mod mcp;
pub mod memory;
pub mod models;
pub mod serve;
pub mod tiles;
pub mod witness;

/// Reads JSON Lines from stdin: `parse(line_number, line)` for every non-blank line, in order.
/// `nothing` is the error message when no line was given.
pub fn read_stdin_lines<T>(
    nothing: &str,
    mut parse: impl FnMut(usize, &str) -> cortex_core::Result<T>,
) -> cortex_core::Result<Vec<T>> {
    use std::io::BufRead;
    let mut out = Vec::new();
    for (k, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.map_err(|e| {
            cortex_core::Error::invalid(format!("stdin line {} is not UTF-8 text", k + 1))
                .with_source(e)
        })?;
        if !line.trim().is_empty() {
            out.push(parse(k + 1, &line)?);
        }
    }
    if out.is_empty() {
        return Err(cortex_core::Error::invalid(nothing));
    }
    Ok(out)
}
