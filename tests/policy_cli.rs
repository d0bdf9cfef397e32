//! Ledger policies through the binary: several signers per checkpoint (the ledger's Ed25519 note
//! key and an SSH key), a quorum, and key rotation, checked by `ledger verify` and by
//! `verify-external` on an export, with real keys (the SSH key made by the real `ssh-keygen`).

mod common;

use common::Sandbox;
use serde_json::Value;
use std::process::Command;

impl Sandbox {
    fn append(&self, n: usize) {
        let lines: String = (0..n)
            .map(|i| format!("{{\"project\":\"p\",\"action\":\"a\",\"detail\":{{\"i\":{i}}}}}\n"))
            .collect();
        self.run_with_stdin(&["ledger", "append"], &lines).ok();
    }
    fn write(&self, rel: &str, text: &str) -> String {
        let p = self.path(rel);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
    /// An SSH Ed25519 key made by the real ssh-keygen; its private key path.
    fn ssh_keygen(&self, rel: &str) -> String {
        let key = self.path(rel);
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen (Debian package openssh-client) must be installed");
        assert!(st.success());
        key.display().to_string()
    }
    fn violations(&self, args: &[&str]) -> Vec<Value> {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let run = self.run(&a).code(1);
        run.json()["violations"].as_array().unwrap().clone()
    }
}

/// One violation message per finding, prefixed with its kind and checkpoint size.
fn summary(vs: &[Value]) -> Vec<String> {
    vs.iter()
        .map(|v| {
            format!(
                "{} @{}: {}",
                v["kind"].as_str().unwrap(),
                v["checkpoint"],
                v["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_quorum_of_an_ed25519_and_an_ssh_signer_is_checked_on_every_checkpoint() {
    let sb = Sandbox::new();
    let ssh = sb.ssh_keygen("ops_key");
    let signer = format!("ssh:{ssh}");
    sb.append(3);
    sb.run(&["--signer", &signer, "ledger", "checkpoint"]).ok();
    sb.append(2);
    // This checkpoint is made without the SSH signer.
    sb.run(&["ledger", "checkpoint"]).ok();
    let policy = sb.write(
        "policy.txt",
        &format!(
            "# both must sign\nsigner ed25519 {}\nsigner ssh {ssh}.pub\nquorum 2\n",
            sb.vkey()
        ),
    );
    let found = summary(&sb.violations(&["--policy", &policy, "ledger", "verify"]));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("bad_signature @5: checkpoint 5 (entries 3..5): 1 valid signature(s) of the 2 the policy requires; missing: ssh key SHA256:"),
        "{found:#?}"
    );
    // With a quorum of one, both checkpoints pass; the SSH signature on the first is still
    // checked: altering it in the database is caught.
    let one = sb.write(
        "one.txt",
        &format!(
            "signer ed25519 {}\nsigner ssh {ssh}.pub\nquorum 1\n",
            sb.vkey()
        ),
    );
    sb.run(&["--policy", &one, "ledger", "verify"])
        .ok()
        .out_has("Chain valid");
    let conn = sb.conn();
    let extras: String = conn
        .query_row(
            "SELECT extra_signatures FROM checkpoints WHERE tree_size = 3",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut v: Value = serde_json::from_str(&extras).unwrap();
    let sig = v[0]["signature"].as_str().unwrap().to_owned();
    // Replace the signature with one over other text by the same key (made by ssh-keygen).
    let other = sb.write("other.txt", "example.com/other\n3\nAAAA\n");
    let st = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "cortex-checkpoint", "-f", &ssh, &other])
        .output()
        .unwrap();
    assert!(st.status.success(), "{st:?}");
    let forged = std::fs::read_to_string(format!("{other}.sig")).unwrap();
    assert_ne!(forged, sig);
    v[0]["signature"] = Value::String(forged);
    conn.execute(
        "UPDATE checkpoints SET extra_signatures = ?1 WHERE tree_size = 3",
        [v.to_string()],
    )
    .unwrap();
    let found = summary(&sb.violations(&["--policy", &one, "ledger", "verify"]));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].contains("@3")
            && found[0].contains("the signature by ssh key SHA256:")
            && found[0].contains("does not verify"),
        "{found:#?}"
    );
}

#[test]
fn a_rotated_note_key_keeps_verifying_what_it_signed_and_nothing_after() {
    let sb = Sandbox::new();
    sb.append(4);
    sb.run(&["ledger", "checkpoint"]).ok();
    let origin = sb.run(&["--json", "ledger", "status"]).ok().json()["origin"]
        .as_str()
        .unwrap()
        .to_owned();
    // The new key has the same name (the origin) and another key ID.
    let new_key = sb.path("new.skey").display().to_string();
    sb.run(&["keys", "generate", "--name", &origin, "--out", &new_key])
        .ok();
    let new_vkey = sb.path("new.vkey").display().to_string();
    sb.append(4);
    sb.run(&["--key", &new_key, "ledger", "checkpoint"]).ok();
    let policy = sb.write(
        "policy.txt",
        &format!(
            "signer ed25519 {} until 4\nsigner ed25519 {new_vkey} from 5\nquorum 1\n",
            sb.vkey()
        ),
    );
    sb.run(&["--policy", &policy, "ledger", "verify"])
        .ok()
        .out_has("✓ Chain valid (8 transactions, 2 checkpoints)");
    // The old key alone cannot vouch for checkpoint 8.
    let old_only = sb.write("old.txt", &format!("signer ed25519 {}\n", sb.vkey()));
    let found = summary(&sb.violations(&["--policy", &old_only, "ledger", "verify"]));
    assert!(found.iter().all(|f| f.contains("@8")), "{found:#?}");
    assert!(
        found.iter().any(|f| f.contains("missing: ed25519 key")),
        "{found:#?}"
    );
    // A checkpoint signed by the retired key after its last size is a finding.
    sb.append(2);
    sb.run(&["ledger", "checkpoint"]).ok();
    let found = summary(&sb.violations(&["--policy", &policy, "ledger", "verify"]));
    assert!(
        found.iter().any(|f| f.starts_with("bad_signature @10:")
            && f.contains("which the policy (line 1) accepts only for sizes 0 to 4")),
        "{found:#?}"
    );
    // Exports carry the same checks offline: the export of checkpoint 10 fails the policy, and
    // so does an export whose detached signatures were edited.
    let export = sb.path("audit.json").display().to_string();
    sb.run(&["ledger", "export", "--output", &export]).ok();
    let run = sb
        .run(&[
            "--json",
            "ledger",
            "verify-external",
            &export,
            "--policy",
            &policy,
        ])
        .code(1);
    let msgs = summary(run.json()["violations"].as_array().unwrap());
    assert!(
        msgs.iter()
            .any(|m| m.contains("accepts only for sizes 0 to 4")),
        "{msgs:#?}"
    );
}

#[test]
fn exports_carry_detached_signatures_and_verify_external_checks_them() {
    let sb = Sandbox::new();
    let ssh = sb.ssh_keygen("ops_key");
    let signer = format!("ssh:{ssh}");
    sb.append(5);
    sb.run(&["--signer", &signer, "ledger", "checkpoint"]).ok();
    let policy = sb.write(
        "policy.txt",
        &format!("signer ed25519 {}\nsigner ssh {ssh}.pub\n", sb.vkey()),
    );
    let export = sb.path("audit.json");
    let e = export.display().to_string();
    sb.run(&["ledger", "export", "--output", &e]).ok();
    sb.run(&[
        "ledger",
        "verify-external",
        &e,
        "--policy",
        &policy,
        "--full",
    ])
    .ok()
    .out_has("✓ Export valid: 5 entries");
    // Without the SSH signature the policy is not met.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(doc["signatures"][0]["scheme"], "sshsig");
    doc.as_object_mut().unwrap().remove("signatures");
    let stripped = sb.write("stripped.json", &doc.to_string());
    let run = sb
        .run(&[
            "--json",
            "ledger",
            "verify-external",
            &stripped,
            "--policy",
            &policy,
        ])
        .code(1);
    let msgs = summary(run.json()["violations"].as_array().unwrap());
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert!(msgs[0].contains("missing: ssh key SHA256:"), "{msgs:#?}");
    // --vkey alone still checks the note only, as before.
    sb.run(&["ledger", "verify-external", &stripped, "--vkey", &sb.vkey()])
        .ok();
}

#[test]
fn bad_policies_and_signer_specs_are_clear_errors() {
    let sb = Sandbox::new();
    sb.append(1);
    let bad = sb.write("bad.txt", "signer ed25519 nonsense\n");
    sb.run(&["--policy", &bad, "ledger", "verify"])
        .code(2)
        .err_has("bad.txt: line 1:");
    let missing = sb.path("nope.txt").display().to_string();
    sb.run(&["--policy", &missing, "ledger", "verify"])
        .code(2)
        .err_has("cannot read the policy file");
    sb.run(&["--signer", "ssh", "ledger", "checkpoint"])
        .code(2)
        .err_has("is not KIND:PATH");
    sb.run(&["--signer", "pgp:/x", "ledger", "checkpoint"])
        .code(2)
        .err_has("unknown signer kind \"pgp\"");
    let garbage = sb.write("garbage", "not a key");
    sb.run(&[
        "--signer",
        &format!("ssh:{garbage}"),
        "ledger",
        "checkpoint",
    ])
    .code(2);
    // Nothing was signed by the failed runs.
    assert_eq!(
        sb.run(&["--json", "ledger", "status"]).ok().json()["latest_checkpoint"],
        Value::Null
    );
}

#[test]
fn keys_generated_by_cortex_sign_checkpoints_that_the_policy_and_ssh_keygen_accept() {
    let sb = Sandbox::new();
    let ssh = sb.path("ops_ssh").display().to_string();
    let sig = sb.path("ops_sigstore.pem").display().to_string();
    sb.run(&["keys", "generate", "--type", "ssh", "--out", &ssh])
        .ok()
        .out_has("policy line: signer ssh");
    sb.run(&["keys", "generate", "--type", "sigstore", "--out", &sig])
        .ok()
        .out_has("Generated Sigstore ecdsa-p256");
    sb.run(&["keys", "generate", "--algorithm", "ed25519"])
        .code(2)
        .err_has("--algorithm applies to --type ssh");
    sb.run(&["keys", "generate", "--type", "pgp"])
        .code(2)
        .err_has("unknown key type \"pgp\"");
    sb.append(4);
    sb.run(&[
        "--signer",
        &format!("ssh:{ssh},sigstore:{sig}"),
        "ledger",
        "checkpoint",
    ])
    .ok();
    let policy = sb.write(
        "policy.txt",
        &format!(
            "signer ed25519 {}\nsigner ssh {ssh}.pub\nsigner sigstore {sig}.pub\n",
            sb.vkey()
        ),
    );
    sb.run(&["--policy", &policy, "ledger", "verify"])
        .ok()
        .out_has("✓ Chain valid (4 transactions, 1 checkpoints)");
    // The SSH signature is a real SSHSIG: ssh-keygen accepts it over the checkpoint body.
    let conn = sb.conn();
    let (note, extras): (String, String) = conn
        .query_row(
            "SELECT signed_note, extra_signatures FROM checkpoints WHERE tree_size = 4",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let extras: Value = serde_json::from_str(&extras).unwrap();
    let schemes: Vec<&str> = extras
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["scheme"].as_str().unwrap())
        .collect();
    assert_eq!(schemes, ["sshsig", "sigstore-bundle"]);
    let body = note.split("\n\n").next().unwrap().to_owned() + "\n";
    let sig_file = sb.write("cp.sig", extras[0]["signature"].as_str().unwrap());
    let public = std::fs::read_to_string(format!("{ssh}.pub")).unwrap();
    let allowed = sb.write("allowed", &format!("auditor {public}"));
    let mut child = Command::new("ssh-keygen")
        .args([
            "-Y",
            "verify",
            "-f",
            &allowed,
            "-I",
            "auditor",
            "-n",
            "cortex-checkpoint",
            "-s",
            &sig_file,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "ssh-keygen refused: {out:?}");
}
