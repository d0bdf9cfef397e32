//! A real PKI and a real time-stamping authority for the tests: certificates made by the
//! `openssl` binary, and a loopback HTTP server that answers each query with
//! `openssl ts -reply`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `openssl` with `args` in `dir`; panics with its stderr if it fails, and names the
/// binary if it is missing (the tests never skip).
pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    let out = try_openssl(dir, args);
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Like [`openssl`] but returns a failed run too.
pub fn try_openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the `openssl` binary is required for these tests: {e}"))
}

/// Key types the test PKI makes.
#[derive(Clone, Copy, Debug)]
pub enum KeyType {
    Rsa,
    P256,
    P384,
}

impl KeyType {
    fn genpkey_args(self) -> Vec<&'static str> {
        match self {
            KeyType::Rsa => vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            KeyType::P256 => vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyType::P384 => vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        }
    }
}

/// A CA: its certificate (`<name>.pem`) and key (`<name>.key`) in a directory.
pub struct Ca {
    pub dir: PathBuf,
    pub name: String,
}

impl Ca {
    /// A self-signed root CA.
    pub fn root(dir: &Path, name: &str, key: KeyType) -> Ca {
        gen_key(dir, name, key);
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &format!("{}.key", file(name)),
                "-out",
                &format!("{}.pem", file(name)),
                "-days",
                "3650",
                "-subj",
                &format!("/O=CORTEX tests/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Ca {
            dir: dir.to_owned(),
            name: name.to_owned(),
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", file(&self.name)))
    }

    pub fn cert_pem(&self) -> Vec<u8> {
        std::fs::read(self.cert_path()).unwrap()
    }

    /// Issues a certificate for `name` with the extensions of `section` in `ext.cnf`.
    pub fn issue(&self, name: &str, key: KeyType, section: &str) -> PathBuf {
        gen_key(&self.dir, name, key);
        std::fs::write(self.dir.join("ext.cnf"), EXTENSIONS).unwrap();
        openssl(
            &self.dir,
            &[
                "req",
                "-new",
                "-key",
                &format!("{}.key", file(name)),
                "-out",
                &format!("{}.csr", file(name)),
                "-subj",
                &format!("/O=CORTEX tests/CN={name}"),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{}.csr", file(name)),
                "-CA",
                &format!("{}.pem", file(&self.name)),
                "-CAkey",
                &format!("{}.key", file(&self.name)),
                "-CAcreateserial",
                "-out",
                &format!("{}.pem", file(name)),
                "-days",
                "365",
                "-extfile",
                "ext.cnf",
                "-extensions",
                section,
            ],
        );
        self.dir.join(format!("{}.pem", file(name)))
    }
}

const EXTENSIONS: &str = "\
[tsa_cert]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// File stem for a certificate name (names have spaces; file names don't).
fn file(name: &str) -> String {
    name.replace(' ', "_")
}

fn gen_key(dir: &Path, name: &str, key: KeyType) {
    let out = format!("{}.key", file(name));
    let mut args = vec!["genpkey"];
    args.extend(key.genpkey_args());
    args.extend(["-out", out.as_str()]);
    openssl(dir, &args);
}

/// How the TSA answers.
#[derive(Clone, Copy, Debug)]
pub enum EssCertId {
    /// `signingCertificate` (ESSCertID, SHA-1): OpenSSL's default.
    V1Sha1,
    /// `signingCertificateV2` (ESSCertIDv2, SHA-256).
    V2Sha256,
}

/// A TSA identity: a certificate issued by `ca` with a critical timeStamping EKU, and an
/// `openssl.cnf` with a `[tsa]` section for it.
pub struct TsaIdentity {
    pub dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub chain: PathBuf,
    pub config: PathBuf,
    /// `openssl ts -reply` rewrites the serial file: two at once (tests sharing an identity)
    /// fail with "Error during serial number generation", so replies take turns.
    serial_lock: std::sync::Mutex<()>,
}

impl TsaIdentity {
    pub fn new(ca: &Ca, name: &str, key: KeyType, ess: EssCertId) -> TsaIdentity {
        let cert = ca.issue(name, key, "tsa_cert");
        let dir = ca.dir.clone();
        let serial = dir.join(format!("{}.serial", file(name)));
        std::fs::write(&serial, "01\n").unwrap();
        let ess_alg = match ess {
            EssCertId::V1Sha1 => "sha1",
            EssCertId::V2Sha256 => "sha256",
        };
        let config = dir.join(format!("{}.cnf", file(name)));
        std::fs::write(
            &config,
            format!(
                "[tsa]\ndefault_tsa = granting\n\n\
                 [granting]\nserial = {serial}\ncrypto_device = builtin\nsigner_digest = sha256\n\
                 default_policy = 1.3.6.1.4.1.55555.1\ndigests = sha256, sha384, sha512\n\
                 accuracy = secs:1\nordering = no\ntsa_name = yes\ness_cert_id_chain = no\n\
                 ess_cert_id_alg = {ess_alg}\n\n\
                 [sha512_only]\nserial = {serial}\ncrypto_device = builtin\nsigner_digest = sha256\n\
                 default_policy = 1.3.6.1.4.1.55555.1\ndigests = sha512\n",
                serial = serial.display()
            ),
        )
        .unwrap();
        TsaIdentity {
            cert,
            key: dir.join(format!("{}.key", file(name))),
            chain: ca.cert_path(),
            config,
            dir,
            serial_lock: std::sync::Mutex::new(()),
        }
    }

    /// Answers one DER query with `openssl ts -reply` using `section` of the config.
    pub fn reply(&self, query: &[u8], section: &str) -> Vec<u8> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let query_path = self.dir.join(format!("query-{n}.tsq"));
        let reply_path = self.dir.join(format!("reply-{n}.tsr"));
        std::fs::write(&query_path, query).unwrap();
        let _turn = self.serial_lock.lock().unwrap_or_else(|e| e.into_inner());
        openssl(
            &self.dir,
            &[
                "ts",
                "-reply",
                "-queryfile",
                path(&query_path),
                "-config",
                path(&self.config),
                "-section",
                section,
                "-inkey",
                path(&self.key),
                "-signer",
                path(&self.cert),
                "-chain",
                path(&self.chain),
                "-out",
                path(&reply_path),
            ],
        );
        std::fs::read(&reply_path).unwrap()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A TSA served over HTTP on 127.0.0.1: every POST body goes to `answer`, whose bytes are
/// returned as `application/timestamp-reply`. The thread lives as long as the test process.
pub fn serve(answer: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = answer.clone();
            std::thread::spawn(move || handle(stream, &*answer));
        }
    });
    url
}

/// Serves the TSA `tsa` with its `[section]`.
pub fn serve_tsa(tsa: Arc<TsaIdentity>, section: &'static str) -> String {
    serve(move |query| tsa.reply(query, section))
}

fn handle(stream: TcpStream, answer: &dyn Fn(&[u8]) -> Vec<u8>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let reply = answer(&body);
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        reply.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&reply).unwrap();
}

/// The recorded vectors of /work/shared/vectors/rfc3161/rfc3161-client.
pub fn vectors() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/rfc3161/rfc3161-client");
    assert!(dir.is_dir(), "test vectors missing at {}", dir.display());
    dir
}
