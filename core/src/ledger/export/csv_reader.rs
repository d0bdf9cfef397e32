//! The CSV reading rules of docs/FORMATS.md 9.5, and nothing looser: RFC 4180 fields (quoted
//! or not; inside quotes `""` is one `"`, and CR and LF are data), rows ended by LF, CRLF or a
//! lone CR, empty lines skipped. Input outside these rules is a malformed file: it is never read
//! some other way (a general CSV library accepts text after a closing quote, or a quote inside
//! an unquoted field, as data, which would turn a malformed file into "altered" values).

use crate::error::{Error, Result};
use std::io::BufRead;

/// Reads rows of fields from CSV text.
pub(super) struct CsvReader<R> {
    input: R,
    /// Rows returned so far (empty lines are not rows), for error messages.
    rows: u64,
}

impl<R: BufRead> CsvReader<R> {
    pub(super) fn new(input: R) -> Self {
        CsvReader { input, rows: 0 }
    }

    fn peek(&mut self) -> Result<Option<u8>> {
        Ok(self.input.fill_buf().map_err(Error::from)?.first().copied())
    }

    fn malformed(&self, why: &str) -> Error {
        Error::invalid(format!("CSV row {}: {why}", self.rows + 1))
    }

    /// The next row's fields, or `None` at the end of the input.
    pub(super) fn next_row(&mut self) -> Result<Option<Vec<String>>> {
        // Empty lines (a line end right after a line end, or at the start) are not rows; since
        // CR and LF each end a line, this also reads CRLF as one line end.
        loop {
            match self.peek()? {
                None => return Ok(None),
                Some(b'\n' | b'\r') => self.input.consume(1),
                Some(_) => break,
            }
        }
        let mut fields = Vec::with_capacity(8);
        loop {
            fields.push(self.field()?);
            match self.peek()? {
                Some(b',') => self.input.consume(1),
                // The line end is consumed by the skip at the start of the next row.
                None | Some(b'\n' | b'\r') => break,
                Some(_) => unreachable!("a field ends at a comma, a line end or the end"),
            }
        }
        self.rows += 1;
        Ok(Some(fields))
    }

    /// One field, up to (not including) the comma, line end or end of input after it.
    fn field(&mut self) -> Result<String> {
        let mut bytes = Vec::new();
        if self.peek()? == Some(b'"') {
            self.input.consume(1);
            loop {
                let buf = self.input.fill_buf().map_err(Error::from)?;
                if buf.is_empty() {
                    return Err(
                        self.malformed("a quoted field is not closed before the end of the file")
                    );
                }
                match buf.iter().position(|&b| b == b'"') {
                    None => {
                        let n = buf.len();
                        bytes.extend_from_slice(buf);
                        self.input.consume(n);
                    }
                    Some(k) => {
                        bytes.extend_from_slice(&buf[..k]);
                        self.input.consume(k + 1);
                        if self.peek()? == Some(b'"') {
                            bytes.push(b'"');
                            self.input.consume(1);
                        } else {
                            break;
                        }
                    }
                }
            }
            if !matches!(self.peek()?, None | Some(b',' | b'\n' | b'\r')) {
                return Err(self.malformed(
                    "a character follows the closing quote of a field (RFC 4180 allows only a comma or a line end)",
                ));
            }
        } else {
            loop {
                let buf = self.input.fill_buf().map_err(Error::from)?;
                if buf.is_empty() {
                    break;
                }
                match buf
                    .iter()
                    .position(|&b| matches!(b, b',' | b'\n' | b'\r' | b'"'))
                {
                    None => {
                        let n = buf.len();
                        bytes.extend_from_slice(buf);
                        self.input.consume(n);
                    }
                    Some(k) => {
                        let quote = buf[k] == b'"';
                        bytes.extend_from_slice(&buf[..k]);
                        self.input.consume(k);
                        if quote {
                            return Err(self.malformed(
                                "a quote inside a field that does not start with one (RFC 4180 requires the whole field quoted)",
                            ));
                        }
                        break;
                    }
                }
            }
        }
        String::from_utf8(bytes).map_err(|_| self.malformed("a field is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Result<Vec<Vec<String>>> {
        let mut r = CsvReader::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(row) = r.next_row()? {
            out.push(row);
        }
        Ok(out)
    }

    fn owned(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|f| f.to_string()).collect())
            .collect()
    }

    #[test]
    fn rfc_4180_fields_and_every_line_end() {
        let want = owned(&[&["a", "b,c", "d\"e"], &["", "x\r\ny\rz\n", ""]]);
        for eol in ["\n", "\r\n", "\r"] {
            let text = format!("a,\"b,c\",\"d\"\"e\"{eol},\"x\r\ny\rz\n\",{eol}");
            assert_eq!(rows(&text).unwrap(), want, "{eol:?}");
            // No final line end, extra and leading empty lines.
            let bare = text.strip_suffix(eol).unwrap();
            assert_eq!(rows(bare).unwrap(), want, "{eol:?}");
            let padded = format!(
                "{eol}{eol}{}{eol}{eol}{eol}",
                text.replacen(eol, "\n\r\n\r", 1)
            );
            assert_eq!(rows(&padded).unwrap(), want, "{eol:?}");
        }
        assert_eq!(rows("").unwrap(), owned(&[]));
        assert_eq!(rows("\"\"").unwrap(), owned(&[&[""]]));
        assert_eq!(rows("é,\"日本\"").unwrap(), owned(&[&["é", "日本"]]));
    }

    #[test]
    fn anything_else_is_malformed() {
        for (text, why) in [
            ("a,\"b\"c\n", "follows the closing quote"),
            ("a,\"b\" \n", "follows the closing quote"),
            ("ok\na,b\"c\n", "CSV row 2: a quote inside a field"),
            ("a,\"b\n", "not closed"),
            ("a,\"b\"\"\n", "not closed"),
        ] {
            let e = rows(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        let mut r = CsvReader::new(&b"a,\xff\n"[..]);
        assert!(r.next_row().unwrap_err().to_string().contains("not UTF-8"));
    }
}
