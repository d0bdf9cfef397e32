//! The `add-checkpoint` request body of c2sp.org/tlog-witness:
//!
//! ```text
//! old <decimal size, no leading zeros>\n
//! <base64 hash>\n            (zero to 63 consistency proof lines)
//! \n
//! <signed checkpoint note>
//! ```

use cortex_core::{Error, Hash, Result};

/// Most consistency proof lines a request may carry.
pub const MAX_PROOF_LINES: usize = 63;
/// Content type of a `409 Conflict` body: the witness's latest cosigned size and a newline.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// One `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size the client believes the witness last cosigned (0 if none).
    pub old_size: u64,
    /// RFC 6962 consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, exactly as the log signed it.
    pub note: String,
}

fn bad(why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("malformed add-checkpoint request: {why}"))
}

impl AddCheckpoint {
    /// The request body bytes.
    pub fn to_body(&self) -> String {
        let mut s = format!("old {}\n", self.old_size);
        for h in &self.proof {
            s.push_str(&h.to_base64());
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.note);
        s
    }

    /// Parses a request body. The note is returned unparsed (the caller checks it).
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint> {
        let body = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
        let (head, note) = body
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old_line = lines.next().unwrap_or_default();
        let old_size = parse_old_line(old_line)?;
        let proof = lines
            .map(|l| {
                Hash::from_base64(l)
                    .map_err(|e| bad(format!("proof line {l:?} is not a base64 hash: {e}")))
            })
            .collect::<Result<Vec<Hash>>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(bad(format!(
                "{} proof lines, more than {MAX_PROOF_LINES}",
                proof.len()
            )));
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            note: note.to_owned(),
        })
    }
}

fn parse_old_line(line: &str) -> Result<u64> {
    let digits = line
        .strip_prefix("old ")
        .ok_or_else(|| bad(format!("first line {line:?} is not `old <size>`")))?;
    parse_size(digits).map_err(|why| bad(format!("old size {digits:?} {why}")))
}

/// Parses a decimal tree size with no leading zeros (`0` itself allowed).
pub fn parse_size(digits: &str) -> std::result::Result<u64, &'static str> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is not a decimal number");
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err("has a leading zero");
    }
    digits.parse().map_err(|_| "overflows 64 bits")
}

/// Parses a `409 Conflict` body (`<size>\n`): the size the witness last cosigned.
pub fn parse_conflict_body(body: &str) -> Result<u64> {
    let digits = body.strip_suffix('\n').unwrap_or(body);
    parse_size(digits).map_err(|why| {
        Error::invalid(format!(
            "the witness's 409 body {body:?} is not a tree size: it {why}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c2sp_example_round_trips() {
        let body = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
                "../../../shared/vectors/c2sp-format-examples/tlog-witness-v1.0.0-add-checkpoint-request.txt",
            ),
        )
        .unwrap();
        let req = AddCheckpoint::parse(body.as_bytes()).unwrap();
        assert_eq!(req.old_size, 20852014);
        assert_eq!(req.proof.len(), 4);
        assert!(
            req.note
                .starts_with("example.com/behind-the-sofa\n20852163\n")
        );
        assert_eq!(req.to_body(), body);
    }

    #[test]
    fn malformed_bodies_are_refused_with_the_reason() {
        for (body, why) in [
            ("old 1\n", "no blank line"),
            ("new 1\n\nx\n", "is not `old <size>`"),
            ("old 01\n\nx\n", "leading zero"),
            ("old -1\n\nx\n", "not a decimal"),
            ("old 1\nnot-base64\n\nx\n", "not a base64 hash"),
            ("old 1\nAAAA\n\nx\n", "not a base64 hash"),
        ] {
            let e = AddCheckpoint::parse(body.as_bytes()).unwrap_err();
            assert!(e.to_string().contains(why), "{body:?}: {e}");
        }
        let many = format!(
            "old 1\n{}\nx\n",
            "KgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".repeat(64)
        );
        assert!(
            AddCheckpoint::parse(many.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("more than 63")
        );
    }
}
