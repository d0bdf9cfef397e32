#!/usr/bin/env python3
"""Independent verifier for CORTEX ledger exports and tlog-proof files.

Written from docs/FORMATS.md alone (not from the Rust sources), to show that the document is
enough to re-implement verification. Section numbers in comments refer to that document.

Usage:
    python3 cortex_verify.py FILE --vkey VKEY [--vkey VKEY ...] [--full] [--json]

FILE is a CORTEX export (JSON, JSON Lines or CSV) or a c2sp.org/tlog-proof@v1 file. VKEY is a
verifier key in text form (<name>+<key id>+<base64 key>) or the path of a file holding one.
--full requires an export of the whole tree of its checkpoint (9.7). --json prints one JSON object
{"valid": ..., "violations": [{"kind", "index"?, "message"}], "error"?} instead of text.

Exit status: 0 valid, 1 invalid (the reasons are printed), 2 usage error (bad arguments, unreadable
file, malformed verifier key).

Dependencies: the Python standard library, `cryptography` (Ed25519) and `blake3`.
"""

import base64
import csv
import hashlib
import io
import json
import os
import re
import struct
import sys

USAGE = "usage: cortex_verify.py FILE --vkey VKEY [--vkey VKEY ...] [--full] [--json]"

U64_MAX = (1 << 64) - 1
EXPORT_FORMAT = "cortex-ledger-export/v1"
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
SIG_PREFIX = "\u2014 "  # em dash and a space (6.4)
MAX_SIGNATURES = 100
MAX_ENTRY_BYTES = 65535
ALG_ED25519 = 0x01
ZERO32 = bytes(32)
CSV_COLUMNS = ["type", "index", "timestamp", "project", "action", "detail", "prev_hash", "hash"]
HEADER_FIELDS = {"format", "hasher", "origin", "from", "to", "tree_size", "checkpoint", "subtrees"}
ENTRY_FIELDS = {"index", "timestamp", "project", "action", "detail", "prev_hash", "hash"}
SUBTREE_FIELDS = {"level", "index", "hash"}


class UsageError(Exception):
    """Exit 2."""


class Invalid(Exception):
    """The file is malformed or fails verification (exit 1)."""


# --------------------------------------------------------------------------------------------
# Dependencies
# --------------------------------------------------------------------------------------------


def _load_deps():
    missing = []
    try:
        import blake3 as _b3  # noqa: F401
    except ImportError:
        missing.append("blake3")
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519 as _ed  # noqa: F401
    except ImportError:
        missing.append("cryptography")
    if missing:
        raise UsageError(
            "missing Python packages: %s (pip install %s)" % (", ".join(missing), " ".join(missing))
        )


# --------------------------------------------------------------------------------------------
# Section 1: strict decoders
# --------------------------------------------------------------------------------------------

_B64_RE = re.compile(r"\A[A-Za-z0-9+/]*={0,2}\Z")
_DEC_RE = re.compile(r"\A(0|[1-9][0-9]*)\Z")
_HEX_RE = re.compile(r"\A[0-9a-fA-F]*\Z")


def b64_strict(s):
    """Standard base64 with padding; rejects anything that does not re-encode identically."""
    if not isinstance(s, str) or not _B64_RE.match(s) or len(s) % 4 != 0:
        raise ValueError("not canonical base64: %r" % (s[:80] if isinstance(s, str) else s))
    try:
        raw = base64.b64decode(s, validate=True)
    except Exception:
        raise ValueError("not canonical base64: %r" % s[:80])
    if base64.b64encode(raw).decode("ascii") != s:
        raise ValueError("not canonical base64: %r" % s[:80])
    return raw


def b64_hash(s):
    raw = b64_strict(s)
    if len(raw) != 32:
        raise ValueError("base64 %r is not 32 bytes" % s[:80])
    return raw


def hex_hash(s):
    """Exactly 64 hex digits, either case (section 1)."""
    if not isinstance(s, str) or len(s) != 64 or not _HEX_RE.match(s):
        raise ValueError("%r is not 64 hex digits" % (s[:80] if isinstance(s, str) else s))
    return bytes.fromhex(s)


def decimal_u64(s):
    if not _DEC_RE.match(s):
        raise ValueError("%r is not a decimal number" % s[:40])
    v = int(s)
    if v > U64_MAX:
        raise ValueError("%r does not fit in 64 bits" % s[:40])
    return v


def is_u64(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= U64_MAX


# --------------------------------------------------------------------------------------------
# Section 2: hashes
# --------------------------------------------------------------------------------------------


class Hasher:
    def __init__(self, name):
        self.name = name
        if name == "sha256":
            self._h = lambda b: hashlib.sha256(b).digest()
        elif name == "blake3":
            import blake3

            self._h = lambda b: blake3.blake3(b).digest()
        else:
            raise ValueError(name)

    def h(self, data):
        return self._h(data)

    def leaf(self, entry_bytes):
        return self._h(b"\x00" + entry_bytes)

    def node(self, left, right):
        return self._h(b"\x01" + left + right)

    def chain(self, prev, leaf):
        return self._h(b"\x02" + prev + leaf)


def algorithm_of_origin(origin):
    """Section 2: an origin ending in "/blake3" means BLAKE3, anything else SHA-256."""
    return "blake3" if origin.endswith("/blake3") else "sha256"


# --------------------------------------------------------------------------------------------
# Section 3: canonical entry bytes
# --------------------------------------------------------------------------------------------


def _utf8(s):
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("a string field is not valid Unicode (lone surrogate)")


def canonical(index, timestamp, project, action, detail):
    out = bytearray(b"\x01")
    out += index.to_bytes(8, "big")
    for f in (timestamp, project, action, detail):
        b = _utf8(f)
        if len(b) > 0xFFFFFFFF:
            raise Invalid("field too long")
        out += len(b).to_bytes(4, "big")
        out += b
    return bytes(out)


def decode_entry(data):
    """Strict decoder of section 3.2."""
    if len(data) > MAX_ENTRY_BYTES:
        raise Invalid("entry bytes are longer than 65535 bytes")
    if len(data) == 0:
        raise Invalid("entry bytes are empty")
    if data[0] != 0x01:
        raise Invalid("entry bytes have unknown version tag 0x%02x" % data[0])
    pos = 1
    if len(data) - pos < 8:
        raise Invalid("entry bytes: truncated index")
    index = int.from_bytes(data[pos : pos + 8], "big")
    pos += 8
    fields = []
    for name in ("timestamp", "project", "action", "detail"):
        if len(data) - pos < 4:
            raise Invalid("entry bytes: truncated %s length" % name)
        n = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
        if len(data) - pos < n:
            raise Invalid("entry bytes: truncated %s" % name)
        try:
            fields.append(data[pos : pos + n].decode("utf-8"))
        except UnicodeDecodeError:
            raise Invalid("entry bytes: %s is not UTF-8" % name)
        pos += n
    if pos != len(data):
        raise Invalid("entry bytes: trailing bytes")
    return {
        "index": index,
        "timestamp": fields[0],
        "project": fields[1],
        "action": fields[2],
        "detail": fields[3],
    }


# --------------------------------------------------------------------------------------------
# Section 5: Merkle tree
# --------------------------------------------------------------------------------------------


def is_pow2(n):
    return n > 0 and (n & (n - 1)) == 0


def split_point(n):
    """Largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_root(hs, hashes):
    level = list(hashes)
    while len(level) > 1:
        level = [hs.node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def verify_inclusion(hs, index, size, leaf, proof, root):
    """5.2, RFC 9162 §2.1.3.2."""
    if index >= size:
        raise Invalid("index %d is not below tree size %d" % (index, size))
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise Invalid("inclusion proof is longer than the tree is deep")
        if (fn & 1) == 1 or fn == sn:
            r = hs.node(p, r)
            if (fn & 1) == 0:
                while (fn & 1) == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hs.node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Invalid("inclusion proof is shorter than the tree is deep")
    if r != root:
        raise Invalid("inclusion proof does not lead to the signed root")


def verify_consistency(hs, old, new, old_root, new_root, proof):
    """5.3, RFC 9162 §2.1.4.2 (not needed by any file format; kept for completeness)."""
    if new < old:
        raise Invalid("new size is smaller than old size")
    if old == new:
        if proof:
            raise Invalid("sizes are equal but the proof is not empty")
        if old_root != new_root:
            raise Invalid("sizes are equal but the roots differ")
        return
    if old == 0:
        raise Invalid("a consistency proof from the empty tree is meaningless")
    if not proof:
        raise Invalid("consistency proof is empty")
    path = ([old_root] if is_pow2(old) else []) + list(proof)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Invalid("consistency proof is too long")
        if (fn & 1) == 1 or fn == sn:
            fr = hs.node(c, fr)
            sr = hs.node(c, sr)
            if (fn & 1) == 0:
                while (fn & 1) == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hs.node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Invalid("consistency proof is too short")
    if fr != old_root or sr != new_root:
        raise Invalid("consistency proof does not lead to the roots")


def covering_subtrees(size, frm, end):
    """5.4."""
    out = []

    def walk(a, b):
        n = b - a
        disjoint = b <= frm or a >= end
        if disjoint and is_pow2(n):
            lvl = n.bit_length() - 1
            out.append((lvl, a >> lvl))
            return
        if n == 1 or (a >= frm and b <= end):
            return
        k = split_point(n)
        walk(a, a + k)
        walk(a + k, b)

    if size > 0 and frm < end:
        walk(0, size)
    return out


def root_with_range(hs, size, frm, leaves, subtrees):
    """5.4."""
    end = frm + len(leaves)
    if end > size or not leaves:
        raise Invalid("entries %d..%d do not lie inside a tree of %d entries" % (frm, end, size))

    def walk(a, b):
        n = b - a
        if (b <= frm or a >= end) and is_pow2(n):
            lvl = n.bit_length() - 1
            key = (lvl, a >> lvl)
            if key not in subtrees:
                raise Invalid("subtree (level %d, index %d) is missing" % key)
            return subtrees[key]
        if a >= frm and b <= end and is_pow2(n):
            return perfect_root(hs, leaves[a - frm : b - frm])
        k = split_point(n)
        return hs.node(walk(a, a + k), walk(a + k, b))

    return walk(0, size)


# --------------------------------------------------------------------------------------------
# Section 6: keys and signed notes
# --------------------------------------------------------------------------------------------

# Ed25519 point decoding (RFC 8032 §5.1.3), to reject verifier keys that are not valid points.
_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_L = 2**252 + 27742317777372353535851937790883648493


def _ed25519_point_decodes(key):
    y = int.from_bytes(key, "little") & ((1 << 255) - 1)
    sign = key[31] >> 7
    if y >= _P:
        return False
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = (u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P)) % _P
    vx2 = (v * x * x) % _P
    if vx2 == u:
        pass
    elif vx2 == (-u) % _P:
        x = (x * pow(2, (_P - 1) // 4, _P)) % _P
    else:
        return False
    if x == 0 and sign == 1:
        return False
    return True


def valid_key_name(name):
    if not name:
        return False
    for c in name:
        if c.isspace() or c == "+" or _is_control(c):
            return False
    return True


def _is_control(c):
    o = ord(c)
    return o < 0x20 or 0x7F <= o <= 0x9F


def key_id(name, alg, key):
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + key).digest()[:4]


class VerifierKey:
    def __init__(self, text):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        text = text.strip()
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise UsageError("verifier key %r must be <name>+<key id>+<base64 key>" % text)
        name, id_hex, b64 = parts
        if not valid_key_name(name):
            raise UsageError("verifier key name %r is not a valid key name" % name)
        if len(id_hex) != 8 or not _HEX_RE.match(id_hex):
            raise UsageError("verifier key ID %r is not 8 hex digits" % id_hex)
        try:
            raw = b64_strict(b64)
        except ValueError:
            raise UsageError("verifier key %s: invalid base64" % name)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise UsageError("verifier key %s is not an Ed25519 key (0x01 + 32 bytes)" % name)
        pub = raw[1:]
        if not _ed25519_point_decodes(pub):
            raise UsageError("verifier key %s: not a valid Ed25519 point" % name)
        kid = bytes.fromhex(id_hex)
        if key_id(name, ALG_ED25519, pub) != kid:
            raise UsageError("verifier key %s: key ID %s does not match the key" % (name, id_hex))
        self.name = name
        self.key_id = kid
        self.public = pub
        self._key = Ed25519PublicKey.from_public_bytes(pub)

    def verify(self, message, sig):
        from cryptography.exceptions import InvalidSignature

        if len(sig) != 64:
            return False
        if int.from_bytes(sig[32:], "little") >= _L:
            return False
        try:
            self._key.verify(sig, message)
            return True
        except InvalidSignature:
            return False


def parse_note(note):
    """6.4. Returns (text, [(name, key_id, sig)])."""
    for c in note:
        if c < "\u0020" and c != "\n":
            raise Invalid("malformed note: contains a control character other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise Invalid("malformed note: no blank line before signatures")
    text = note[: split + 1]
    sigs = note[split + 2 :]
    if not sigs or not sigs.endswith("\n"):
        raise Invalid("malformed note: signature block is empty or lacks a final newline")
    out = []
    for line in sigs[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise Invalid("malformed note: signature line %r does not start with '\u2014 '" % line)
        rest = line[len(SIG_PREFIX) :]
        if " " not in rest:
            raise Invalid("malformed note: signature line %r has no space after the name" % line)
        name, b64 = rest.split(" ", 1)
        if not valid_key_name(name):
            raise Invalid("malformed note: invalid key name %r" % name)
        try:
            raw = b64_strict(b64)
        except ValueError:
            raise Invalid("malformed note: signature of %s is not base64" % name)
        if len(raw) < 5:
            raise Invalid("malformed note: signature of %s is too short" % name)
        out.append((name, raw[:4], raw[4:]))
        if len(out) > MAX_SIGNATURES:
            raise Invalid("malformed note: more than %d signatures" % MAX_SIGNATURES)
    if not text.endswith("\n"):
        raise Invalid("malformed note: text does not end in a newline")
    return text, out


def verify_note(text, sigs, keys):
    """6.5. Returns the names of the trusted keys whose signatures verified."""
    verified = []
    message = _utf8(text)
    for name, kid, sig in sigs:
        k = next((k for k in keys if k.name == name and k.key_id == kid), None)
        if k is None:
            continue
        if not k.verify(message, sig):
            raise Invalid("invalid signature for key %s+%s" % (name, kid.hex()))
        verified.append(name)
    if not verified:
        raise Invalid(
            "note has no signature from a trusted key (trusted: %s)"
            % ", ".join(k.name for k in keys)
        )
    return verified


# --------------------------------------------------------------------------------------------
# Section 7: checkpoints
# --------------------------------------------------------------------------------------------


def parse_checkpoint_body(text):
    """7.1. Returns (origin, size, root, extensions)."""
    if not text.endswith("\n"):
        raise Invalid("malformed checkpoint: no final newline")
    lines = text[:-1].split("\n")
    origin = lines[0]
    if not origin:
        raise Invalid("malformed checkpoint: empty origin")
    if len(lines) < 2:
        raise Invalid("malformed checkpoint: missing tree size")
    try:
        size = decimal_u64(lines[1])
    except ValueError as e:
        raise Invalid("malformed checkpoint: tree size: %s" % e)
    if len(lines) < 3:
        raise Invalid("malformed checkpoint: missing root hash")
    try:
        root = b64_hash(lines[2])
    except ValueError as e:
        raise Invalid("malformed checkpoint: root: %s" % e)
    ext = lines[3:]
    if any(e == "" for e in ext):
        raise Invalid("malformed checkpoint: empty extension line")
    return origin, size, root, ext


def check_log_key(origin, ext, names):
    """7.3: signed by the log's own key (named as the origin), and no extension lines."""
    if origin not in names:
        raise Invalid("the checkpoint is not signed by a trusted key named %r (the origin)" % origin)
    if ext:
        raise Invalid("the checkpoint has extension lines")


def verify_checkpoint(note, keys):
    """7.3. The algorithm comes from the verified origin (section 2)."""
    text, sigs = parse_note(note)
    names = verify_note(text, sigs, keys)
    origin, size, root, ext = parse_checkpoint_body(text)
    check_log_key(origin, ext, names)
    return origin, size, root, algorithm_of_origin(origin)


# --------------------------------------------------------------------------------------------
# Section 8: tlog-proof files
# --------------------------------------------------------------------------------------------


def verify_tlog_proof(data, keys):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the proof file is not UTF-8")
    if "\n\n" not in text:
        raise Invalid("malformed tlog-proof: no blank line before the checkpoint")
    head, note = text.split("\n\n", 1)
    # 8.1 step 2: line ends after the note's final one are not part of it.
    if note.endswith("\n"):
        note = note.rstrip("\n") + "\n"
    lines = head.split("\n")
    if lines[0] != PROOF_HEADER:
        raise Invalid("malformed tlog-proof: first line is not %r" % PROOF_HEADER)
    pos = 1
    extra = None
    if pos < len(lines) and lines[pos].startswith("extra "):
        try:
            extra = b64_strict(lines[pos][len("extra ") :])
        except ValueError:
            raise Invalid("malformed tlog-proof: extra data is not base64")
        pos += 1
    if pos >= len(lines) or not lines[pos].startswith("index "):
        raise Invalid("malformed tlog-proof: missing index line")
    try:
        index = decimal_u64(lines[pos][len("index ") :])
    except ValueError as e:
        raise Invalid("malformed tlog-proof: index: %s" % e)
    pos += 1
    proof = []
    for line in lines[pos:]:
        try:
            proof.append(b64_hash(line))
        except ValueError:
            raise Invalid("malformed tlog-proof: proof hash %r is not base64 of 32 bytes" % line)

    origin, size, root, alg = verify_checkpoint(note, keys)
    if extra is None:
        raise Invalid("the proof has no extra line, so the entry cannot be recomputed")
    entry = decode_entry(extra)
    if entry["index"] != index:
        raise Invalid(
            "the entry in the extra line is index %d, but the proof is for index %d"
            % (entry["index"], index)
        )
    hs = Hasher(alg)
    verify_inclusion(hs, index, size, hs.leaf(extra), proof, root)
    return "entry %d is in checkpoint %d of %s (%s)" % (index, size, origin, alg)


# --------------------------------------------------------------------------------------------
# Section 9: exports
# --------------------------------------------------------------------------------------------


def _no_dup_object(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise Invalid("duplicate JSON member %r" % k)
        d[k] = v
    return d


def _bad_constant(name):
    raise Invalid("invalid JSON number %s" % name)


def json_strict(text):
    try:
        return json.loads(text, object_pairs_hook=_no_dup_object, parse_constant=_bad_constant)
    except Invalid:
        raise
    except ValueError as e:
        raise Invalid("not valid JSON: %s" % e)


def check_header(h):
    """9.1: exactly the eight members with the right types. Returns h or raises Invalid."""
    if not isinstance(h, dict) or set(h) != HEADER_FIELDS:
        raise Invalid("the header object does not have exactly the members %s" % sorted(HEADER_FIELDS))
    for k in ("format", "hasher", "origin", "checkpoint"):
        if not isinstance(h[k], str):
            raise Invalid("header member %r is not a string" % k)
    for k in ("from", "to", "tree_size"):
        if not is_u64(h[k]):
            raise Invalid("header member %r is not an unsigned 64-bit integer" % k)
    if not isinstance(h["subtrees"], list):
        raise Invalid("header member 'subtrees' is not an array")
    for s in h["subtrees"]:
        if not isinstance(s, dict) or set(s) != SUBTREE_FIELDS:
            raise Invalid("a subtree is not an object with exactly level, index, hash")
        if not (is_u64(s["level"]) and s["level"] <= 255) or not is_u64(s["index"]):
            raise Invalid("a subtree level or index is out of range")
        if not isinstance(s["hash"], str):
            raise Invalid("a subtree hash is not a string")
    return h


OPENING_FIELDS = {"salt", "content", "tags", "source"}


def check_opening(o):
    """15.3: exactly salt, content, tags and source, with the right types."""
    if not isinstance(o, dict) or set(o) != OPENING_FIELDS:
        raise Invalid("an opening does not have exactly the members %s" % sorted(OPENING_FIELDS))
    if not isinstance(o["salt"], str) or not isinstance(o["content"], str):
        raise Invalid("an opening's salt or content is not a string")
    if not isinstance(o["tags"], list) or not all(isinstance(t, str) for t in o["tags"]):
        raise Invalid("an opening's tags are not an array of strings")
    if o["source"] is not None and not isinstance(o["source"], str):
        raise Invalid("an opening's source is not a string or null")
    return o


def check_entry(e):
    """9.2: exactly the seven members with the right types (15.3: and optionally `opening`)."""
    if not isinstance(e, dict) or set(e) - {"opening"} != ENTRY_FIELDS:
        raise Invalid("an entry object does not have exactly the members %s" % sorted(ENTRY_FIELDS))
    if not is_u64(e["index"]):
        raise Invalid("entry member 'index' is not an unsigned 64-bit integer")
    for k in ENTRY_FIELDS - {"index"}:
        if not isinstance(e[k], str):
            raise Invalid("entry member %r is not a string" % k)
    if "opening" in e:
        check_opening(e["opening"])
    return e


def _lp(s):
    b = s.encode("utf-8")
    return struct.pack(">I", len(b)) + b


def commitment_of(hs, salt, content, tags, source):
    """15.2: H(0x03 || salt || LP(content) || u32be(#tags) || LP(tag)... || source)."""
    data = b"\x03" + salt + _lp(content) + struct.pack(">I", len(tags))
    for t in tags:
        data += _lp(t)
    data += b"\x00" if source is None else b"\x01" + _lp(source)
    return hs.h(data)


def opening_finding(hs, e):
    """15.3: None if the opening beside entry e opens its commitment, else the reason."""
    o = e["opening"]
    try:
        detail = json.loads(e["detail"])
    except ValueError:
        detail = None
    c = detail.get("commitment") if isinstance(detail, dict) else None
    if e["action"] != "fact.store" or not isinstance(c, str):
        return "entry %d carries an opening but holds no commitment" % e["index"]
    try:
        salt = bytes.fromhex(o["salt"])
        want = bytes.fromhex(c)
    except ValueError:
        return "entry %d: the opening's salt or the commitment is not hex" % e["index"]
    if len(salt) != 32 or len(want) != 32:
        return "entry %d: the salt or the commitment is not 32 bytes" % e["index"]
    if commitment_of(hs, salt, o["content"], o["tags"], o["source"]) != want:
        return "entry %d: the content beside it does not open its commitment" % e["index"]
    return None


JSON_SPACE = " \t\n\r"  # 9.4, 9.6: JSON whitespace


_CSV_STOP = re.compile(r'[,\r\n"]')


def csv_rows(text):
    """9.5 reading rules: RFC 4180 fields; LF and CR each end a line outside quotes; empty lines
    skipped; nothing else accepted. Returns the rows (lists of field strings)."""
    rows = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos] in "\r\n":  # empty lines (and the end of the previous row)
            pos += 1
        if pos >= n:
            return rows
        row = []
        while True:
            if pos < n and text[pos] == '"':  # quoted field
                pos += 1
                buf = []
                while True:
                    q = text.find('"', pos)
                    if q < 0:
                        raise Invalid("CSV row %d: a quoted field is not closed" % (len(rows) + 1))
                    buf.append(text[pos:q])
                    pos = q + 1
                    if pos < n and text[pos] == '"':
                        buf.append('"')
                        pos += 1
                    else:
                        break
                if pos < n and text[pos] not in ",\r\n":
                    raise Invalid("CSV row %d: text after a closing quote" % (len(rows) + 1))
                row.append("".join(buf))
            else:  # unquoted field
                m = _CSV_STOP.search(text, pos)
                end = n if m is None else m.start()
                if m is not None and text[end] == '"':
                    raise Invalid("CSV row %d: a quote inside an unquoted field" % (len(rows) + 1))
                row.append(text[pos:end])
                pos = end
            if pos < n and text[pos] == ",":
                pos += 1
                continue
            break  # a line end or the end of the text
        rows.append(row)


def parse_export(data):
    """9.3-9.6. Returns (format name, header, entries)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the file is not UTF-8")
    text = text.lstrip(JSON_SPACE)  # 9.6: leading JSON whitespace, blank lines included
    lead = text[:1]
    if lead == "{":
        nl = text.find("\n")
        first = text if nl < 0 else text[: nl + 1]
        header = None
        try:
            header = check_header(json_strict(first))
        except Invalid:
            header = None
        if header is not None:
            entries = []
            for n, line in enumerate(text[len(first) :].split("\n"), start=2):
                if line.strip(" \t\r") == "":  # 9.4: blank lines are skipped anywhere
                    continue
                try:
                    entries.append(check_entry(json_strict(line)))
                except Invalid as e:
                    raise Invalid("line %d: not an export entry: %s" % (n, e))
            return "jsonl", header, entries
        doc = json_strict(text)
        if not isinstance(doc, dict) or set(doc) != HEADER_FIELDS | {"entries"}:
            raise Invalid("not a CORTEX JSON export: wrong set of members")
        entries = doc.pop("entries")
        header = check_header(doc)
        if not isinstance(entries, list):
            raise Invalid("'entries' is not an array")
        return "json", header, [check_entry(e) for e in entries]
    if lead in ("t", '"'):
        rows = csv_rows(text)
        if not rows or rows[0] != CSV_COLUMNS:
            raise Invalid("CSV columns are not %s" % CSV_COLUMNS)
        for k, r in enumerate(rows):
            if len(r) != 8:
                raise Invalid("CSV row %d has %d fields, not 8" % (k + 1, len(r)))
        if len(rows) < 2 or rows[1][0] != "header":
            raise Invalid("the first CSV row after the columns must be the header row")
        header = check_header(json_strict(rows[1][5]))
        entries = []
        for k, r in enumerate(rows[2:], start=3):
            if r[0] == "opening":  # 15.3: directly after its entry's row, once
                prev = entries[-1] if entries else None
                if prev is None or "opening" in prev or r[1] != str(prev["index"]):
                    raise Invalid("CSV row %d: an opening row must follow its entry's row" % k)
                prev["opening"] = check_opening(json_strict(r[5]))
                continue
            if r[0] != "entry":
                raise Invalid("CSV row %d: type is not 'entry'" % k)
            try:
                index = decimal_u64(r[1])
            except ValueError:
                raise Invalid("CSV row %d: index %r is not a decimal number" % (k, r[1][:40]))
            entries.append(
                {
                    "index": index,
                    "timestamp": r[2],
                    "project": r[3],
                    "action": r[4],
                    "detail": r[5],
                    "prev_hash": r[6],
                    "hash": r[7],
                }
            )
        return "csv", header, entries
    raise Invalid("not a CORTEX export: expected JSON, JSON Lines or CSV")


def verify_export(data, keys, full=False):
    """9.7. Returns (summary, findings), each finding (kind, index or None, message)."""
    fmt, header, entries = parse_export(data)
    if header["format"] != EXPORT_FORMAT:
        raise Invalid("unknown export format %r" % header["format"])
    findings = []

    def finding(kind, index, msg):
        findings.append((kind, index, msg))

    frm, to = header["from"], header["to"]

    # Header: the checkpoint, and the algorithm from what it signs (section 2).
    cp = None
    alg = None
    try:
        text, sigs = parse_note(header["checkpoint"])
    except Invalid as e:
        finding("bad_signature", None, "checkpoint: %s" % e)
    else:
        names = None
        try:
            names = verify_note(text, sigs, keys)
        except Invalid as e:
            finding("bad_signature", None, "checkpoint: %s" % e)
        body = None
        try:
            body = parse_checkpoint_body(text)
        except Invalid as e:
            finding("bad_signature", None, "checkpoint: %s" % e)
        if names is not None and body is not None:
            cp = body
            alg = algorithm_of_origin(cp[0])
            try:
                check_log_key(cp[0], cp[3], names)
            except Invalid as e:
                finding("bad_signature", None, "checkpoint: %s" % e)
    if cp:
        if cp[0] != header["origin"]:
            finding("bad_signature", None, "header origin %r differs from the signed origin %r"
                    % (header["origin"], cp[0]))
        if cp[1] != header["tree_size"]:
            finding("bad_root", None, "header tree_size %d differs from the signed size %d"
                    % (header["tree_size"], cp[1]))
        if header["hasher"] != alg:
            finding("bad_signature", None, "header hasher %r differs from the %s the signed "
                    "origin commits to" % (header["hasher"], alg))
    if frm > to:
        finding("missing_entry", None, "header range %d..=%d is empty" % (frm, to))
    if full:
        if frm > 0:
            finding("missing_entry", 0, "--full: entries 0 to %d are not in the export" % (frm - 1))
        if cp and to + 1 < cp[1]:
            finding("truncated", to + 1, "--full: entries %d to %d are not in the export"
                    % (to + 1, cp[1] - 1))

    # Placing the entries: the first entry of each index inside the range is kept.
    kept = []
    if frm <= to:
        have = set()
        for e in entries:
            i = e["index"]
            if i < frm or i > to:
                finding("inserted_entry", i, "entry %d is outside the range %d..=%d" % (i, frm, to))
            elif i in have:
                finding("inserted_entry", i, "a second entry with index %d" % i)
            else:
                have.add(i)
                kept.append(e)

    # Chain, by index; nothing is hashed without a verified checkpoint.
    leaf_of = {}
    if alg:
        hs = Hasher(alg)
        good = {}
        for e in kept:
            i = e["index"]
            leaf = hs.leaf(canonical(i, e["timestamp"], e["project"], e["action"], e["detail"]))
            leaf_of[i] = leaf
            if "opening" in e:
                why = opening_finding(hs, e)
                if why:
                    finding("commitment_mismatch", i, why)
            try:
                p = hex_hash(e["prev_hash"])
                h = hex_hash(e["hash"])
            except ValueError:
                finding("altered_entry", i, "entry %d: prev_hash or hash is not 64 hex digits" % i)
                continue
            if hs.chain(p, leaf) != h:
                finding("altered_entry", i, "entry %d does not hash to its chain hash" % i)
                continue
            good[i] = (p, h)
        for i, (p, h) in good.items():
            if i == 0:
                if p != ZERO32:
                    finding("broken_chain", 0, "entry 0: prev_hash is not all zeros")
            elif i > frm and (i - 1) in good and good[i - 1][1] != p:
                finding("broken_chain", i, "entry %d: prev_hash is not the hash of entry %d"
                        % (i, i - 1))

    # Order and completeness, from the indices alone.
    got = [e["index"] for e in kept]
    want = sorted(got)
    for g, w in zip(got, want):
        if g != w:
            finding("reordered_entry", g, "entry %d stands where entry %d belongs" % (g, w))
    if frm <= to:
        nxt = frm
        for i in want + [to + 1]:
            if i > nxt:
                if i - 1 == to:
                    finding("truncated", nxt, "entries %d to %d are missing at the end" % (nxt, to))
                elif nxt == i - 1:
                    finding("missing_entry", nxt, "entry %d is missing" % nxt)
                else:
                    finding("missing_entry", nxt, "entries %d to %d are missing" % (nxt, i - 1))
            nxt = i + 1
    complete = frm <= to and len(kept) == to - frm + 1

    # Root.
    if cp and complete:
        size, root = cp[1], cp[2]
        want_st = covering_subtrees(size, frm, to + 1)
        got_st = [(s["level"], s["index"]) for s in header["subtrees"]]
        if got_st != want_st:
            finding("bad_root", frm, "the subtree list is not the one the range needs")
        else:
            try:
                sub = {(s["level"], s["index"]): hex_hash(s["hash"]) for s in header["subtrees"]}
            except ValueError as e:
                finding("bad_root", frm, "a subtree hash is malformed: %s" % e)
            else:
                leaves = [leaf_of[i] for i in range(frm, to + 1)]
                try:
                    r = root_with_range(hs, size, frm, leaves, sub)
                except Invalid as e:
                    finding("bad_root", frm, "the root cannot be recomputed: %s" % e)
                else:
                    if r != root:
                        finding("bad_root", frm, "the entries give root %s but the checkpoint "
                                "signed %s" % (base64.b64encode(r).decode(),
                                               base64.b64encode(root).decode()))
    findings.sort(key=lambda f: (f[1] is not None, f[1] or 0))  # header findings, then by index
    summary = "%s export of entries %d..=%d (%d read) matches checkpoint %d of %s (%s)" % (
        fmt, frm, to, len(entries), header["tree_size"], header["origin"], alg)
    if not (frm == 0 and cp and to + 1 == cp[1]):
        summary += "; a partial export (its range is not signed: --full requires the whole tree)"
    return summary, findings


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def load_vkey(arg):
    if os.path.isfile(arg):
        try:
            with open(arg, "r", encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError("cannot read verifier key %s: %s" % (arg, e))
    elif "+" in arg:
        text = arg
    else:
        raise UsageError("verifier key %r is neither a file nor <name>+<id>+<key>" % arg)
    return VerifierKey(text)


def parse_args(argv):
    path = None
    vkeys = []
    flags = set()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            print(USAGE)
            sys.exit(0)
        if a == "--vkey":
            if i + 1 >= len(argv):
                raise UsageError("--vkey needs a value")
            vkeys.append(argv[i + 1])
            i += 2
            continue
        if a.startswith("--vkey="):
            vkeys.append(a[len("--vkey="):])
            i += 1
            continue
        if a in ("--full", "--json"):
            flags.add(a)
            i += 1
            continue
        if a.startswith("-") and a != "-":
            raise UsageError("unknown option %s" % a)
        if path is not None:
            raise UsageError("more than one FILE given")
        path = a
        i += 1
    if path is None:
        raise UsageError("no FILE given")
    if not vkeys:
        raise UsageError("at least one --vkey is required")
    return path, vkeys, flags


def main(argv):
    try:
        path, vkey_args, flags = parse_args(argv)
        _load_deps()
        keys = [load_vkey(v) for v in vkey_args]
        try:
            if path == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as f:
                    data = f.read()
        except OSError as e:
            raise UsageError("cannot read %s: %s" % (path, e))
    except UsageError as e:
        print("error: %s" % e, file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2

    as_json = "--json" in flags
    findings = []
    try:
        if data.startswith(PROOF_HEADER.encode("ascii")):
            if "--full" in flags:
                print("error: --full applies to exports, not tlog-proof files", file=sys.stderr)
                return 2
            summary = verify_tlog_proof(data, keys)
        else:
            summary, findings = verify_export(data, keys, full="--full" in flags)
    except (Invalid, RecursionError) as e:
        why = str(e) if isinstance(e, Invalid) else "the file is nested too deeply"
        if as_json:
            print(json.dumps({"valid": False, "violations": [], "error": why}))
        else:
            print("INVALID: %s" % why)
        return 1
    if as_json:
        out = []
        for kind, index, msg in findings:
            v = {"kind": kind, "message": msg}
            if index is not None:
                v["index"] = index
            out.append(v)
        print(json.dumps({"valid": not findings, "violations": out, "summary": summary}))
        return 1 if findings else 0
    if findings:
        print("INVALID: %d violation(s)" % len(findings))
        for kind, index, msg in findings[:50]:
            at = "" if index is None else " at index %d" % index
            print("  %s%s: %s" % (kind, at, msg))
        return 1
    print("VALID: %s" % summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
