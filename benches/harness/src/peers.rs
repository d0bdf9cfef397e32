//! Local stand-ins for the anchors' services, so the anchors suite measures CORTEX's side of
//! anchoring without the internet: an RFC 3161 time-stamping authority answered by the real
//! `openssl ts -reply` with a CA and TSA certificate made at start, and a Rekor v2 log that
//! logs each `hashedrekord` request in a growing RFC 6962 tree and signs its checkpoint (it does
//! not check the request's signature, as a real Rekor does; the client checks the receipt).
//!
//! Both speak HTTP/1.1 on 127.0.0.1 from a thread of their own (one connection per request,
//! `Connection: close`) and record how long each answer took to make, so the suite can tell
//! the peer's share of a round trip from the client's. The threads live as long as the process.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cortex_core::ledger::merkle::{LeafSlice, inclusion_proof, root_from_leaves};
use cortex_core::ledger::note::NoteSignature;
use cortex_core::{Checkpoint, Error, Hash, Hasher, Result, Sha256Hasher, SignedNote, Signer};
use cortex_ed25519::Ed25519Signer;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest request body a peer reads.
const MAX_BODY: usize = 1 << 20;

/// A peer listening on loopback.
#[derive(Debug, Clone)]
pub struct Peer {
    /// `http://127.0.0.1:<port>/`.
    pub url: String,
    /// Milliseconds each answer took to make, in arrival order.
    timings: Arc<Mutex<Vec<f64>>>,
}

impl Peer {
    /// The answer times recorded so far (milliseconds), which it forgets.
    pub fn take_timings(&self) -> Vec<f64> {
        self.timings
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }
}

/// What a peer answers one POST body with: HTTP status, content type, body.
type Answer = dyn Fn(&[u8]) -> (u16, &'static str, Vec<u8>) + Send + Sync;

/// Serves `answer` on 127.0.0.1 (a free port) from a thread of its own.
fn serve(answer: Box<Answer>) -> Result<Peer> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::backend("cannot listen on 127.0.0.1").with_source(e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::backend("no local address").with_source(e))?;
    let timings = Arc::new(Mutex::new(Vec::new()));
    let peer = Peer {
        url: format!("http://{addr}/"),
        timings: timings.clone(),
    };
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = handle(stream, &*answer, &timings);
        }
    });
    Ok(peer)
}

/// Reads one request, answers it, closes the connection.
fn handle(stream: TcpStream, answer: &Answer, timings: &Mutex<Vec<f64>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(usize::MAX);
        }
    }
    let mut stream = stream;
    if length > MAX_BODY {
        return stream.write_all(
            b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let t = Instant::now();
    let (status, ctype, reply) = answer(&body);
    if let Ok(mut v) = timings.lock() {
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // One write: a head and a body sent apart can wait on the client's delayed ACK.
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.len()
    )
    .into_bytes();
    out.extend_from_slice(&reply);
    stream.set_nodelay(true)?;
    stream.write_all(&out)
}

/// Runs `openssl` with `args` in `dir`; an error names the command and its stderr.
fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| {
            Error::config(
                "the `openssl` binary is needed to make test certificates and RFC 3161 \
                 timestamps (apt-get install openssl)",
            )
            .with_source(e)
        })?;
    if !out.status.success() {
        return Err(Error::backend(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A P-256 certificate authority made with the `openssl` tool in a directory (`ca.key`,
/// `ca.pem`), and the certificates it issues there: the anchors suite's TSA, and the HTTPS
/// tests' TLS servers.
#[derive(Debug)]
pub struct TestCa {
    dir: PathBuf,
}

const P256: [&str; 4] = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];

impl TestCa {
    /// Makes the CA's key and self-signed certificate for `subject` (`/O=…/CN=…`), valid for
    /// `days`, in `dir`.
    pub fn create(dir: &Path, subject: &str, days: u32) -> Result<TestCa> {
        std::fs::create_dir_all(dir)?;
        openssl(
            dir,
            &[&["genpkey"][..], &P256, &["-out", "ca.key"]].concat(),
        )?;
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                &days.to_string(),
                "-subj",
                subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?;
        Ok(TestCa {
            dir: dir.to_owned(),
        })
    }

    /// Issues `NAME.key` and `NAME.pem` in the CA's directory for `subject`, valid for `days`,
    /// with the X.509 extensions of section `section` of `extensions` (OpenSSL configuration
    /// text, written to `NAME.ext`).
    pub fn issue(
        &self,
        name: &str,
        subject: &str,
        extensions: &str,
        section: &str,
        days: u32,
    ) -> Result<()> {
        let dir = &self.dir;
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        openssl(dir, &[&["genpkey"][..], &P256, &["-out", &key]].concat())?;
        openssl(
            dir,
            &["req", "-new", "-key", &key, "-out", &csr, "-subj", subject],
        )?;
        std::fs::write(dir.join(&ext), extensions)?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                &days.to_string(),
                "-extfile",
                &ext,
                "-extensions",
                section,
            ],
        )
    }
}

/// A time-stamping authority made with `openssl`: a P-256 root CA and a TSA certificate it
/// issued (critical timeStamping EKU), answering with `openssl ts -reply` (SHA-256,
/// ESSCertIDv2, the TSA certificate and the root in the reply).
#[derive(Debug)]
pub struct Tsa {
    dir: PathBuf,
    /// One reply at a time: they share the serial file.
    lock: Mutex<u64>,
}

const TSA_EXTENSIONS: &str = "[tsa_cert]\nbasicConstraints = critical,CA:FALSE\n\
keyUsage = critical,digitalSignature,nonRepudiation\nextendedKeyUsage = critical,timeStamping\n\
subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n";

const TSA_CONFIG: &str = "[tsa]\ndefault_tsa = granting\n\n[granting]\nserial = tsa.serial\n\
crypto_device = builtin\nsigner_digest = sha256\ndefault_policy = 1.3.6.1.4.1.55555.1\n\
digests = sha256, sha384, sha512\naccuracy = secs:1\nordering = no\ntsa_name = yes\n\
ess_cert_id_chain = no\ness_cert_id_alg = sha256\n";

impl Tsa {
    /// Makes the CA, the TSA certificate and the `openssl ts` configuration in `dir`.
    pub fn create(dir: &Path) -> Result<Tsa> {
        let ca = TestCa::create(dir, "/O=CORTEX benchmark/CN=bench root", 30)?;
        ca.issue(
            "tsa",
            "/O=CORTEX benchmark/CN=bench tsa",
            TSA_EXTENSIONS,
            "tsa_cert",
            30,
        )?;
        std::fs::write(dir.join("tsa.serial"), "01\n")?;
        std::fs::write(dir.join("tsa.cnf"), TSA_CONFIG)?;
        Ok(Tsa {
            dir: dir.to_owned(),
            lock: Mutex::new(0),
        })
    }

    /// The root CA certificate (PEM): the trust an `rfc3161` anchor is configured with.
    pub fn ca_pem(&self) -> Result<String> {
        Ok(std::fs::read_to_string(self.dir.join("ca.pem"))?)
    }

    /// Answers one DER `TimeStampReq` with `openssl ts -reply`.
    pub fn reply(&self, query: &[u8]) -> Result<Vec<u8>> {
        let mut n = self
            .lock
            .lock()
            .map_err(|_| Error::backend("lock poisoned"))?;
        *n += 1;
        let (q, r) = (format!("query-{n}.tsq"), format!("reply-{n}.tsr"));
        std::fs::write(self.dir.join(&q), query)?;
        openssl(
            &self.dir,
            &[
                "ts",
                "-reply",
                "-queryfile",
                &q,
                "-config",
                "tsa.cnf",
                "-section",
                "granting",
                "-inkey",
                "tsa.key",
                "-signer",
                "tsa.pem",
                "-chain",
                "ca.pem",
                "-out",
                &r,
            ],
        )?;
        let reply = std::fs::read(self.dir.join(&r))?;
        let _ = std::fs::remove_file(self.dir.join(q));
        let _ = std::fs::remove_file(self.dir.join(r));
        Ok(reply)
    }

    /// Serves this authority over HTTP (`POST /` with a `TimeStampReq`).
    pub fn serve(self) -> Result<Peer> {
        serve(Box::new(move |query| match self.reply(query) {
            Ok(reply) => (200, "application/timestamp-reply", reply),
            Err(e) => (500, "text/plain", e.to_string().into_bytes()),
        }))
    }
}

/// A Rekor v2 stand-in: `POST /api/v2/log/entries` logs the request's hashedrekord entry as
/// the next leaf of its tree and answers with a `TransparencyLogEntry` (inclusion proof,
/// checkpoint signed by its log key).
#[derive(Debug)]
pub struct RekorStandIn {
    log: Ed25519Signer,
    leaves: Mutex<Vec<Hash>>,
}

impl RekorStandIn {
    /// A log named `origin` with a fresh Ed25519 key.
    pub fn new(origin: &str) -> Result<RekorStandIn> {
        Ok(RekorStandIn {
            log: Ed25519Signer::generate(origin)?,
            leaves: Mutex::new(Vec::new()),
        })
    }

    /// The log's verifier key: the trust a `rekor` anchor is configured with.
    pub fn vkey(&self) -> String {
        self.log.to_vkey()
    }

    /// Logs one `hashedRekordRequestV002` and returns the entry.
    pub fn create_entry(&self, request: &[u8]) -> Result<Value> {
        let req: Value = serde_json::from_slice(request)
            .map_err(|e| Error::invalid(format!("not JSON: {e}")))?;
        let hr = &req["hashedRekordRequestV002"];
        let algorithm = match hr["signature"]["verifier"]["keyDetails"].as_str() {
            Some("PKIX_ECDSA_P256_SHA_256") => "SHA2_256",
            Some("PKIX_ED25519_PH") => "SHA2_512",
            other => return Err(Error::invalid(format!("unsupported keyDetails {other:?}"))),
        };
        let body = serde_json::to_vec(&json!({
            "apiVersion": "0.0.2", "kind": "hashedrekord",
            "spec": { "hashedRekordV002": {
                "data": { "algorithm": algorithm, "digest": hr["digest"] },
                "signature": hr["signature"],
            }}
        }))
        .map_err(|e| Error::backend(e.to_string()))?;
        let h = Sha256Hasher;
        let mut leaves = self
            .leaves
            .lock()
            .map_err(|_| Error::backend("lock poisoned"))?;
        leaves.push(h.leaf(&body));
        let (index, size) = (leaves.len() as u64 - 1, leaves.len() as u64);
        let root = root_from_leaves(&h, &leaves);
        let slice = LeafSlice {
            hasher: &h,
            leaves: &leaves,
        };
        let proof = inclusion_proof(&slice, &h, index, size)?;
        drop(leaves);
        let text = Checkpoint {
            origin: self.log.key_name().to_owned(),
            size,
            root,
            extensions: vec![],
        }
        .to_text();
        let mut note = SignedNote::new(text.clone())?;
        note.signatures.push(NoteSignature {
            name: self.log.key_name().to_owned(),
            key_id: self
                .log
                .note_key_id()
                .ok_or_else(|| Error::backend("the log key has no note key ID"))?,
            signature: self.log.sign(text.as_bytes())?,
        });
        Ok(json!({
            "logIndex": index.to_string(),
            "kindVersion": { "kind": "hashedrekord", "version": "0.0.2" },
            "integratedTime": "0",
            "inclusionProof": {
                "logIndex": index.to_string(),
                "rootHash": root.to_base64(),
                "treeSize": size.to_string(),
                "hashes": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
                "checkpoint": { "envelope": note.to_text() },
            },
            "canonicalizedBody": B64.encode(&body),
        }))
    }

    /// Serves this log over HTTP.
    pub fn serve(self) -> Result<Peer> {
        serve(Box::new(move |request| match self.create_entry(request) {
            Ok(entry) => (201, "application/json", entry.to_string().into_bytes()),
            Err(e) => (400, "text/plain", e.to_string().into_bytes()),
        }))
    }
}
