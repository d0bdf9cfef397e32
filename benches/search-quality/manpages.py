#!/usr/bin/env python3
"""Build the man-page retrieval benchmark (corpus / queries / qrels) from Debian's man pages.

Usage:
    python3 benches/search-quality/manpages.py OUT_DIR [--debs DEB_DIR]

Runs end to end from nothing: `apt-get download manpages-dev=6.03-2 manpages=6.03-2` into a
temporary directory (without the version pin, saying so, when apt does not offer 6.03-2),
`dpkg -x` of both, then writes OUT_DIR/corpus.jsonl, queries.jsonl, qrels.tsv and stats.json.
With --debs, the two .deb files already in DEB_DIR (manpages-dev_*.deb, manpages_*.deb) are
used instead and nothing is downloaded. The temporary directory is removed at the end.

Standard library only (Python 3.11); needs apt-get and dpkg-deb (Debian or Ubuntu). The roff
source is parsed directly (no groff):

* Pages: every regular file in usr/share/man/man2 and man3 (*.gz). Pages that are
  redirects are skipped: a `.so` first request line, or (Debian turns most `.so`
  pages into symlinks at build time) a symlink.
* Query = NAME description: the text after the first `\\-` in the NAME section.
* Document = DESCRIPTION section (everything from `.SH DESCRIPTION` to the next
  `.SH`, .SS headings included as words), whitespace collapsed, truncated to the
  first 1,000 characters at a word boundary. Pages with an empty query, or fewer
  than 80 characters of description (before truncation), are skipped.
* Roff handling: comments (\\" and lines .\\" / '\\") are dropped; font escapes
  (\\fB \\fI \\fR \\fP \\f(XX \\f[..]) and size/motion escapes are stripped; \\- -> -,
  \\e -> \\, \\(em -> an em dash, other \\(xx / \\[xx] specials -> their character
  (or nothing if unknown); \\& \\| \\^ \\: -> nothing. Request lines are dropped,
  except .SH/.SS (start a section/subsection) and the font macros .B .I .SM .SB
  (words joined by spaces) and .BR .BI .IB .IR .RB .RI (arguments joined
  without spaces, as roff prints them). tbl format lines (from .TS up to the
  line that ends with '.') and T{ / T} markers are dropped; .de/.ig blocks skipped.
* ids: doc id "man<section>/<page>" (e.g. "man2/open.2"); query id "q:" + doc id.
  Pages that share the exact same query text give one query, id "q:" + the first
  of their doc ids in sorted order, with all of them as relevant documents.

Writes corpus.jsonl ({"id", "text"} per line), queries.jsonl ({"id", "text"}), qrels.tsv
(query_id TAB doc_id TAB 1, no header) and stats.json (counts, skips by reason, package
versions and hashes, licences: the Debian copyright files' summary and every document's
SPDX id). With 6.03-2: 866 documents, 820 queries, 866 qrels.

The output is derived from the man pages and carries their licences (mostly
Linux-man-pages-copyleft, also GPL and BSD variants; see README.md): build it locally, never
commit it.
"""
import argparse
import collections
import glob
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

MAX_DOC_CHARS = 1000
MIN_DESC_CHARS = 80

SPECIAL = {
    "em": "\u2014", "en": "\u2013", "hy": "-", "mi": "-", "aq": "'", "dq": '"',
    "lq": '"', "rq": '"', "oq": "'", "cq": "'", "bu": "\u2022", "co": "\u00a9",
    "rg": "\u00ae", "tm": "\u2122", "mu": "\u00d7", "di": "\u00f7", "+-": "\u00b1",
    ">=": "\u2265", "<=": "\u2264", "!=": "\u2260", "==": "\u2261", "->": "\u2192",
    "<-": "\u2190", "ti": "~", "ha": "^", "rs": "\\", "sl": "/", "ga": "`",
    "aa": "\u00b4", "de": "\u00b0", "ct": "\u00a2", "Fo": "\u00ab", "Fc": "\u00bb",
    "fo": "\u2039", "fc": "\u203a", "bv": "|", "ba": "|", "or": "|", "pl": "+",
    "eq": "=", "lh": "\u261c", "rh": "\u261e", "ua": "\u2191", "da": "\u2193",
    "*a": "\u03b1", "*b": "\u03b2", "*m": "\u03bc", "*p": "\u03c0", "sc": "\u00a7",
    "ps": "\u00b6", "dg": "\u2020", "tf": "\u2234", "if": "\u221e", "mc": "\u00b5",
    "12": "\u00bd", "14": "\u00bc", "34": "\u00be", "u": "", "br": "|",
    ":a": "\u00e4", ":o": "\u00f6", ":u": "\u00fc", "'e": "\u00e9", "`e": "\u00e8",
    "'a": "\u00e1", ",c": "\u00e7", "ss": "\u00df", "~n": "\u00f1",
}
STRINGS = {"lq": '"', "rq": '"', "R": "\u00ae", "Tm": "\u2122", "Aq": "'"}
# escapes that take a one-char / (xx / [xxx] name argument and print nothing
NAME_ARG = set("nmMFgkVYf*s")
# escapes that take a delimited 'argument' and print nothing
DELIM_ARG = set("hvwlLDoxXZRbAB")


def _read_name(s, i):
    """Read an escape name starting at s[i]: x, (xx or [xxx]. Return (name, next_i)."""
    if i >= len(s):
        return "", i
    if s[i] == "(":
        return s[i + 1:i + 3], i + 3
    if s[i] == "[":
        j = s.find("]", i)
        if j < 0:
            return s[i + 1:], len(s)
        return s[i + 1:j], j + 1
    return s[i], i + 1


def _special(name):
    if name in SPECIAL:
        return SPECIAL[name]
    m = re.fullmatch(r"u([0-9A-Fa-f]{4,6})(?:_.*)?", name)
    if m:
        try:
            return chr(int(m.group(1), 16))
        except ValueError:
            return ""
    if name.startswith("char") and name[4:].isdigit():
        return chr(int(name[4:]))
    return ""


def unescape(s):
    """Turn one line of roff text into plain text."""
    out = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            break
        e = s[i + 1]
        i += 2
        if e in '"#':  # comment to end of line
            break
        if e == "f":
            _, i = _read_name(s, i)
        elif e == "*":
            name, i = _read_name(s, i)
            out.append(STRINGS.get(name, ""))
        elif e == "(" or e == "[":
            name, i = _read_name(s, i - 1)
            out.append(_special(name))
        elif e == "C":  # \C'name'
            if i < n:
                d = s[i]
                j = s.find(d, i + 1)
                j = n if j < 0 else j
                out.append(_special(s[i + 1:j]))
                i = j + 1
        elif e == "N":  # \N'123'
            if i < n:
                d = s[i]
                j = s.find(d, i + 1)
                j = n if j < 0 else j
                num = s[i + 1:j]
                out.append(chr(int(num)) if num.isdigit() else "")
                i = j + 1
        elif e == "s":
            if i < n and s[i] in "+-":
                i += 1
            if i < n and s[i] in "([":
                _, i = _read_name(s, i)
            else:
                while i < n and s[i].isdigit():
                    i += 1
        elif e in NAME_ARG:
            _, i = _read_name(s, i)
        elif e in DELIM_ARG:
            if i < n:
                d = s[i]
                j = s.find(d, i + 1)
                i = n if j < 0 else j + 1
        elif e in ("e", "\\"):
            out.append("\\")
        elif e == "-":
            out.append("-")
        elif e in " ~0":
            out.append(" ")
        elif e in "&|^:)c,/%{}dupatrz":
            pass
        elif e == "'":
            out.append("'")
        elif e == "`":
            out.append("`")
        else:
            out.append(e)
    return "".join(out)


def split_args(s):
    """Split roff macro arguments (double quotes group; "" inside quotes = ")."""
    args, i, n = [], 0, len(s)
    while i < n:
        while i < n and s[i] in " \t":
            i += 1
        if i >= n:
            break
        if s[i] == '"':
            i += 1
            buf = []
            while i < n:
                if s[i] == '"':
                    if i + 1 < n and s[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                if s[i] == "\\" and i + 1 < n:
                    buf.append(s[i:i + 2])
                    i += 2
                    continue
                buf.append(s[i])
                i += 1
            args.append("".join(buf))
        else:
            buf = []
            while i < n and s[i] not in " \t":
                if s[i] == "\\" and i + 1 < n:
                    buf.append(s[i:i + 2])
                    i += 2
                    continue
                buf.append(s[i])
                i += 1
            args.append("".join(buf))
    return args


def join_continuations(lines):
    out, buf = [], ""
    for line in lines:
        m = re.search(r"(\\+)$", line)
        if m and len(m.group(1)) % 2 == 1:
            buf += line[:-1]
            continue
        out.append(buf + line)
        buf = ""
    if buf:
        out.append(buf)
    return out


FONT_SPACED = {"B", "I", "SM", "SB"}
FONT_ALT = {"BR", "BI", "IB", "IR", "RB", "RI"}


def parse_page(src):
    """Return (sections, name_raw, license) where sections maps upper-cased .SH
    heading -> list of plain-text pieces, name_raw is the raw roff NAME text."""
    lines = join_continuations(src.split("\n"))
    license_id = None
    sections = collections.OrderedDict()
    name_raw = []
    cur = None
    pending_heading = None  # .SH with no args: heading is on the next line
    in_tbl_format = False
    skip_until_dotdot = False
    for line in lines:
        if license_id is None:
            m = re.search(r"SPDX-License-Identifier:\s*(\S+)", line)
            if m:
                license_id = m.group(1)
            else:  # older pages: .\" %%%LICENSE_START(VERBATIM) etc.
                m = re.search(r"%%%LICENSE_START\(([^)]*)\)", line)
                if m:
                    license_id = "man-pages:" + m.group(1)
        if skip_until_dotdot:
            if line.startswith(".."):
                skip_until_dotdot = False
            continue
        if in_tbl_format:
            if line.rstrip().endswith("."):
                in_tbl_format = False
            continue
        if line.startswith(".\\\"") or line.startswith("'\\\"") or line.startswith("\\\""):
            continue
        if line.startswith(".") or line.startswith("'"):
            body = line[1:].lstrip(" \t")
            m = re.match(r"(\S*)\s*(.*)$", body)
            macro, rest = m.group(1), m.group(2)
            if macro in ("SH", "SS"):
                heading = " ".join(unescape(a) for a in split_args(rest)).strip()
                if macro == "SH":
                    if heading:
                        cur = heading.upper()
                        sections.setdefault(cur, [])
                    else:
                        pending_heading = "SH"
                else:
                    if heading and cur is not None:
                        sections[cur].append(heading)
                    elif not heading:
                        pending_heading = "SS"
                continue
            if macro == "TS":
                in_tbl_format = True
                continue
            if macro in ("de", "de1", "ig", "am"):
                skip_until_dotdot = True
                continue
            if macro in FONT_SPACED or macro in FONT_ALT:
                args = split_args(rest)
                raw = (" " if macro in FONT_SPACED else "").join(args)
                if cur == "NAME":
                    name_raw.append(raw)
                if cur is not None and args:
                    sections[cur].append(unescape(raw))
                continue
            continue  # any other request: dropped
        # text line
        if line.strip() in ("T{", "T}") or line.startswith("T}"):
            line = line.replace("T{", " ").replace("T}", " ")
        if pending_heading:
            heading = unescape(line).strip()
            if pending_heading == "SH":
                cur = heading.upper()
                sections.setdefault(cur, [])
            elif cur is not None:
                sections[cur].append(heading)
            pending_heading = None
            continue
        if cur == "NAME":
            name_raw.append(line)
        if cur is not None:
            sections[cur].append(unescape(line.replace("\t", " ")))
    return sections, " ".join(name_raw), license_id


def collapse(s):
    return re.sub(r"\s+", " ", s).strip()


def truncate_words(s, limit=MAX_DOC_CHARS):
    if len(s) <= limit:
        return s
    cut = s[:limit + 1]
    j = cut.rfind(" ")
    return (s[:j] if j > 0 else s[:limit]).rstrip()


def name_description(name_raw):
    i = name_raw.find("\\-")
    if i >= 0:
        return collapse(unescape(name_raw[i + 2:]))
    plain = collapse(unescape(name_raw))
    j = plain.find(" - ")
    return collapse(plain[j + 3:]) if j >= 0 else ""


def is_so_redirect(src):
    for line in src.split("\n"):
        if not line.strip() or line.startswith(".\\\"") or line.startswith("'\\\""):
            continue
        return line.startswith(".so ")
    return False


PACKAGES = ("manpages-dev", "manpages")
VERSION = "6.03-2"


def download(dest):
    """apt-get download the packages into dest; returns whether the version is the pinned one."""
    pinned = ["%s=%s" % (p, VERSION) for p in PACKAGES]
    r = subprocess.run(["apt-get", "download", *pinned], cwd=dest, capture_output=True, text=True)
    if r.returncode == 0:
        print("downloaded %s (pinned version)" % " ".join(pinned), file=sys.stderr)
        return True
    print("apt-get download %s failed:\n%s" % (" ".join(pinned), r.stderr.strip()), file=sys.stderr)
    for deb in glob.glob(os.path.join(dest, "*.deb")):
        os.remove(deb)
    r = subprocess.run(["apt-get", "download", *PACKAGES], cwd=dest, capture_output=True,
                       text=True)
    if r.returncode != 0:
        sys.exit("apt-get download %s failed too:\n%s\n(run apt-get update first? or pass "
                 "--debs DIR holding the two .deb files)" % (" ".join(PACKAGES), r.stderr.strip()))
    print("WARNING: version %s is not available; downloaded the candidate versions instead "
          "(apt-get download %s): the counts will differ from README.md's"
          % (VERSION, " ".join(PACKAGES)), file=sys.stderr)
    return False


def find_debs(deb_dir):
    """The one .deb of each package in deb_dir."""
    debs = []
    for p in PACKAGES:
        found = sorted(glob.glob(os.path.join(deb_dir, "%s_*.deb" % p)))
        if len(found) != 1:
            sys.exit("expected one %s_*.deb in %s, found %d" % (p, deb_dir, len(found)))
        debs.append(found[0])
    return debs


def deb_info(debs):
    info = []
    for deb in debs:
        def field(f):
            return subprocess.run(["dpkg-deb", "-f", deb, f], capture_output=True,
                                  text=True, check=True).stdout.strip()
        with open(deb, "rb") as fh:
            sha = hashlib.sha256(fh.read()).hexdigest()
        info.append({"file": os.path.basename(deb), "package": field("Package"),
                     "version": field("Version"), "source": field("Source") or None,
                     "sha256": sha})
    return info


def copyright_summary(root):
    out = {}
    for path in sorted(glob.glob(os.path.join(root, "usr/share/doc/*/copyright"))):
        pkg = path.split(os.sep)[-2]
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        head = {}
        for key in ("Upstream-Name", "Source"):
            m = re.search(r"^%s:\s*(.*)$" % key, text, re.M)
            head[key] = m.group(1) if m else None
        files_star = re.search(r"^Files: \*\n(?:[A-Z][^\n]*\n|\s+[^\n]*\n)*?License:\s*(.*)$",
                               text, re.M)
        licenses = sorted(set(re.findall(r"^License:\s*(.*)$", text, re.M)))
        sha = hashlib.sha256(text.encode()).hexdigest()
        out[pkg] = {"path": os.path.relpath(path, root), "upstream": head["Upstream-Name"],
                    "upstream_source": head["Source"],
                    "files_star_license": files_star.group(1) if files_star else None,
                    "licenses_named": licenses, "sha256": sha}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", metavar="OUT_DIR", help="where to write the four files")
    ap.add_argument("--debs", metavar="DEB_DIR",
                    help="use the .deb files in DEB_DIR instead of downloading them")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="manpages-") as work:
        if a.debs:
            debs = find_debs(a.debs)
        else:
            download(work)
            debs = find_debs(work)
        root = os.path.join(work, "root")
        os.makedirs(root)
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
        build(root, debs, a.out, "--debs " + a.debs if a.debs else "apt-get download")


def build(root, debs, out, origin):
    packages = deb_info(debs)
    for p in packages:
        if p["version"] != VERSION:
            print("WARNING: %s is version %s, not %s: the counts will differ from README.md's"
                  % (p["package"], p["version"], VERSION), file=sys.stderr)
    skips = collections.Counter()
    pages = []  # (doc_id, query, doc_text, license)
    seen_files = 0
    for sec in ("2", "3"):
        d = os.path.join(root, "usr/share/man/man" + sec)
        for fn in sorted(os.listdir(d)):
            if not fn.endswith(".gz"):
                continue
            seen_files += 1
            path = os.path.join(d, fn)
            page = fn[:-3]
            doc_id = "man%s/%s" % (sec, page)
            if os.path.islink(path):
                skips["symlink_redirect"] += 1
                continue
            with gzip.open(path, "rb") as fh:
                src = fh.read().decode("utf-8", errors="replace")
            if is_so_redirect(src):
                skips["so_redirect"] += 1
                continue
            sections, name_raw, lic = parse_page(src)
            query = name_description(name_raw)
            if not query:
                skips["empty_name_description"] += 1
                continue
            if "DESCRIPTION" not in sections:
                skips["no_description_section"] += 1
                continue
            desc = collapse(" ".join(sections["DESCRIPTION"]))
            if len(desc) < MIN_DESC_CHARS:
                skips["description_under_%d_chars" % MIN_DESC_CHARS] += 1
                continue
            pages.append((doc_id, query, truncate_words(desc), lic or "unknown", len(desc)))

    pages.sort()
    groups = collections.OrderedDict()
    for doc_id, query, *_ in pages:
        groups.setdefault(query, []).append(doc_id)

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "corpus.jsonl"), "w", encoding="utf-8") as fh:
        for doc_id, _, text, *_ in pages:
            fh.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
    queries = sorted(("q:" + docs[0], q, docs) for q, docs in groups.items())
    with open(os.path.join(out, "queries.jsonl"), "w", encoding="utf-8") as fh:
        for qid, q, _ in queries:
            fh.write(json.dumps({"id": qid, "text": q}, ensure_ascii=False) + "\n")
    n_qrels = 0
    with open(os.path.join(out, "qrels.tsv"), "w", encoding="utf-8") as fh:
        for qid, _, docs in queries:
            for d in docs:
                fh.write("%s\t%s\t1\n" % (qid, d))
                n_qrels += 1

    rel_sizes = collections.Counter(len(docs) for _, _, docs in queries)
    lic_counts = collections.Counter(p[3] for p in pages)
    stats = {
        "source": "Debian man pages (sections 2 and 3), parsed from roff source",
        "builder": "benches/search-quality/manpages.py",
        "packages": packages,
        "packages_from": origin,
        "pinned_version": VERSION,
        "version_is_pinned": all(p["version"] == VERSION for p in packages),
        "files_seen_man2_man3": seen_files,
        "skipped": dict(sorted(skips.items())),
        "documents": len(pages),
        "documents_by_section": dict(collections.Counter(p[0].split("/")[0] for p in pages)),
        "queries": len(queries),
        "qrels": n_qrels,
        "queries_by_relevant_count": {str(k): v for k, v in sorted(rel_sizes.items())},
        "avg_query_chars": round(sum(len(q) for _, q, _ in queries) / max(1, len(queries)), 1),
        "avg_doc_chars": round(sum(len(p[2]) for p in pages) / max(1, len(pages)), 1),
        "docs_truncated_to_1000_chars": sum(1 for p in pages if p[4] > MAX_DOC_CHARS),
        "licence": {
            "summary": ("man-pages (Linux man-pages project, upstream "
                        "https://www.kernel.org/pub/linux/docs/man-pages/). Debian copyright "
                        "file: 'Files: *' GPL-2+, with per-file licences; most pages are "
                        "Linux-man-pages-copyleft (verbatim copying and modified versions "
                        "permitted under the same notice; 'Formatted or processed versions "
                        "of this manual, if unaccompanied by the source, must acknowledge the "
                        "copyright and authors of this work'), others GPL-2.0-or-later, "
                        "GPL-1.0-or-later, GPL-2.0-only, BSD-2/3/4-Clause, Expat. Redistributing "
                        "this derived dataset should ship the copyright file and per-document "
                        "SPDX ids (doc_licenses below)."),
            "debian_copyright": copyright_summary(root),
            "doc_spdx_counts": dict(lic_counts.most_common()),
            "doc_licenses": {p[0]: p[3] for p in pages},
        },
    }
    with open(os.path.join(out, "stats.json"), "w", encoding="utf-8") as fh:
        json.dump(stats, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    print(json.dumps({k: stats[k] for k in ("files_seen_man2_man3", "skipped", "documents",
                                            "documents_by_section", "queries", "qrels",
                                            "queries_by_relevant_count", "avg_query_chars",
                                            "avg_doc_chars")}, indent=1))
    print("licences:", dict(lic_counts.most_common()))


if __name__ == "__main__":
    sys.exit(main())
