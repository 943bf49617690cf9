"""Corpus of the nano suite: real redistributable text from Debian plus
synthetic personal records, with realistic (Zipf-like) duplication.

Sources (all ship with Debian and may be redistributed):
  * /usr/share/common-licenses/*           license texts (boilerplate)
  * /usr/lib/python3.11/*.py                Python standard library (PSF license)
  * /usr/share/doc/python3.11/NEWS.gz       Python change log (PSF license)
Everything is filtered to printable ASCII so the byte-level BPE pre-tokenizer
behaves identically in Python and in JavaScript.
"""

import glob
import gzip
import hashlib
import os
import random
import re

LICENSES = "/usr/share/common-licenses"
PYLIB = "/usr/lib/python3.11"
NEWS = "/usr/share/doc/python3.11/NEWS.gz"

FIRST = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William
Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel
Nancy Matthew Betty Anthony Sandra Mark Margaret Donald Ashley Steven Kimberly Andrew
Emily Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah
Timothy Stephanie Ronald Rebecca Jason Sharon Edward Laura Jeffrey Cynthia Ryan Amy
Jacob Kathleen Gary Angela Nicholas Shirley Eric Brenda Jonathan Emma Stephen Anna Larry
Pamela Justin Nicole Scott Samantha Brandon Katherine Benjamin Christine Samuel Helen
Gregory Debra Alexander Rachel Patrick Carolyn Frank Janet Raymond Maria Jack Olivia
Dennis Heather Jerry Diane Tyler Julie Aaron Joyce Jose Victoria Adam Ruth Nathan
Virginia Henry Lauren Zachary Kelly Douglas Christina Peter Joan Kyle Evelyn Noah Judith
Ingrid Tomasz Priya Kenji Amara Luca Sofia Mateo Yara Oskar Leila Hugo Ines Rafael""".split()

LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez
Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White
Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres
Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts
Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales
Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos
Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes
Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Kowalski Tanaka Okafor
Rossi Lindqvist Haddad Moreau Schneider Novak Fischer Dubois Costa Berg""".split()

STREETS = """Elm Oak Maple Cedar Pine Birch Walnut Willow Chestnut Spruce Hawthorn Juniper
Magnolia Poplar Sycamore Laurel Aspen Cypress Hickory Linden""".split()
KINDS = ["Street", "Avenue", "Road", "Lane", "Drive", "Court", "Way", "Place"]
CITIES = """Springfield Riverton Fairview Franklin Greenville Bristol Clinton Madison Georgetown
Salem Ashland Milford Oakdale Lakewood Newport Dover Hudson Kingston Marion Burlington""".split()
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "corp.example.org"]
EMPLOYERS = ["Acme Tools", "Northwind Traders", "Globex", "Initech", "Umbrella Supply",
             "Stark Logistics", "Wayne Analytics", "Tyrell Bakery", "Hooli Clinic", "Vandelay Imports"]


def ascii_only(text):
    """Keep printable ASCII, newlines and tabs; drop everything else."""
    text = text.replace("\r\n", "\n")
    return "".join(c for c in text if c == "\n" or c == "\t" or " " <= c <= "~")


def chunk_paragraphs(text, lo, hi):
    """Split text at blank lines into chunks of roughly lo..hi characters."""
    parts = re.split(r"\n\s*\n", text)
    out, cur = [], ""
    for p in parts:
        p = p.strip("\n")
        if not p.strip():
            continue
        cand = cur + ("\n\n" if cur else "") + p
        if len(cand) > hi and len(cur) >= lo:
            out.append(cur)
            cur = p
        else:
            cur = cand
        while len(cur) > 2 * hi:  # very long paragraph: hard split at a line
            cut = cur.rfind("\n", 0, hi)
            cut = cut if cut > lo else hi
            out.append(cur[:cut])
            cur = cur[cut:].lstrip("\n")
    if len(cur) >= lo // 2:
        out.append(cur)
    return out


def chunk_python(text, lo, hi):
    """Split Python source at top-level def/class boundaries into lo..hi chunks."""
    pieces = re.split(r"\n(?=(?:def |class |@|if __name__))", text)
    out, cur = [], ""
    for p in pieces:
        cand = cur + ("\n" if cur else "") + p
        if len(cand) > hi and len(cur) >= lo:
            out.append(cur)
            cur = p
        else:
            cur = cand
        while len(cur) > 2 * hi:
            cut = cur.rfind("\n", 0, hi)
            cut = cut if cut > lo else hi
            out.append(cur[:cut])
            cur = cur[cut:].lstrip("\n")
    if len(cur) >= lo // 2:
        out.append(cur)
    return out


def source_files(rng, n_python):
    """The fixed list of source files used (sorted, then a seeded subset of the stdlib)."""
    lic = sorted({os.path.realpath(p) for p in glob.glob(LICENSES + "/*") if os.path.isfile(p)})
    py = sorted(glob.glob(PYLIB + "/*.py"))
    py = [p for p in py if os.path.getsize(p) < 200_000]
    rng.shuffle(py)
    return lic, sorted(py[:n_python])


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def real_documents(rng, n_python=40, news_chars=250_000):
    """Real documents: license sections, stdlib chunks, change-log sections."""
    lic, py = source_files(rng, n_python)
    docs, manifest = [], []
    for path in lic:
        text = ascii_only(open(path, encoding="utf-8", errors="replace").read())
        manifest.append({"path": path, "sha256": sha256(path)})
        for c in chunk_paragraphs(text, 250, 900):
            docs.append({"kind": "license", "source": path, "text": c})
    for path in py:
        text = ascii_only(open(path, encoding="utf-8", errors="replace").read())
        manifest.append({"path": path, "sha256": sha256(path)})
        for c in chunk_python(text, 250, 1000):
            docs.append({"kind": "code", "source": path, "text": c})
    if os.path.exists(NEWS):
        manifest.append({"path": NEWS, "sha256": sha256(NEWS)})
        text = ascii_only(gzip.open(NEWS, "rt", encoding="utf-8", errors="replace").read())
        text = text[:news_chars]
        for c in chunk_paragraphs(text, 250, 900):
            docs.append({"kind": "docs", "source": NEWS, "text": c})
    return docs, manifest


def person(rng):
    """One synthetic person (fictional: example.* domains, 555-01xx phone numbers)."""
    f, l = rng.choice(FIRST), rng.choice(LAST)
    sep = rng.choice([".", "_", ""])
    user = (f + sep + l).lower() if rng.random() < 0.7 else (f[0] + l).lower() + str(rng.randint(1, 99))
    return {
        "name": f"{f} {l}",
        "email": f"{user}@{rng.choice(DOMAINS)}",
        "phone": f"+1-555-01{rng.randint(0, 99):02d}-{rng.randint(0, 9999):04d}"
        if rng.random() < 0.5 else f"(555) 01{rng.randint(0, 9)}-{rng.randint(0, 9999):04d}",
        "address": f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {rng.choice(KINDS)}, "
                   f"{rng.choice(CITIES)}",
        "dob": f"{rng.randint(1940, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "employer": rng.choice(EMPLOYERS),
    }


def record_text(p, style):
    if style == 0:
        return (f"Name: {p['name']}\nEmail: {p['email']}\nPhone: {p['phone']}\n"
                f"Address: {p['address']}\nDate of birth: {p['dob']}\n")
    if style == 1:
        return f"{p['name']} <{p['email']}>, tel. {p['phone']}, {p['address']}\n"
    return (f"- name: {p['name']}\n  email: {p['email']}\n  phone: \"{p['phone']}\"\n"
            f"  employer: {p['employer']}\n")


def personal_documents(rng, n_docs):
    """Contact lists / customer records of 3-7 synthetic people each."""
    titles = ["Customer records", "Contact list", "Staff directory", "Emergency contacts",
              "Newsletter subscribers", "Patient intake (sample)", "Members"]
    docs = []
    for _ in range(n_docs):
        style = rng.randrange(3)
        head = f"{rng.choice(titles)} -- exported {rng.randint(2001, 2023)}-{rng.randint(1, 12):02d}\n\n"
        body = "\n".join(record_text(person(rng), style) for _ in range(rng.randint(2, 5)))
        docs.append({"kind": "personal", "source": "synthetic", "text": head + body})
    return docs


HEADER = """# Copyright (C) {year} {holder}
#
# This program is free software: you can redistribute it and/or modify
# it under the terms of the GNU General Public License as published by
# the Free Software Foundation, either version 3 of the License, or
# (at your option) any later version.
#
# This program is distributed in the hope that it will be useful,
# but WITHOUT ANY WARRANTY; without even the implied warranty of
# MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
# GNU General Public License for more details.
"""


def near_duplicate(rng, text):
    """A near-duplicate: a few words swapped, dropped or re-cased."""
    words = text.split(" ")
    for _ in range(max(1, len(words) // 40)):
        i = rng.randrange(len(words))
        r = rng.random()
        if r < 0.4 and len(words) > 2:
            del words[i]
        elif r < 0.7:
            j = rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        else:
            words[i] = words[i].upper()
    return " ".join(words)


def boilerplate(rng, code_docs, n):
    """Code chunks prefixed with a GPL header whose year/holder vary (boilerplate)."""
    out = []
    for _ in range(n):
        p = person(rng)
        h = HEADER.format(year=rng.randint(1995, 2023), holder=p["name"] + " <" + p["email"] + ">")
        base = rng.choice(code_docs)
        out.append({"kind": "boilerplate", "source": base["source"], "text": h + "\n" + base["text"]})
    return out


def low_entropy_documents(rng, n):
    """Low-entropy text that real corpora are full of: zero-initialised C tables,
    comment banners, table rules, repeated log lines (memorizable without duplication)."""
    docs = []
    for _ in range(n):
        kind = rng.randrange(4)
        if kind == 0:
            name = rng.choice(["table", "lookup", "crc_init", "state", "buf", "weights"])
            per = rng.choice([8, 12, 16])
            body = ("    " + "0, " * per).rstrip() + "\n"
            text = f"static const unsigned char {name}[{per * 12}] = {{\n" + body * 12 + "};\n"
        elif kind == 1:
            ch = rng.choice("#=-*")
            w = rng.choice([60, 72, 79])
            line = "#" + ch * (w - 1) + "\n" if ch != "#" else "#" * w + "\n"
            parts = []
            for t in rng.sample(["Imports", "Constants", "Helpers", "Public API", "Tests", "Main",
                                 "Utilities", "Errors", "Types", "Configuration"], 4):
                parts.append(line + line + f"# {t}\n" + line + line)
            text = "\n".join(parts)
        elif kind == 2:
            cols = rng.randint(3, 6)
            rule = "+" + "+".join("-" * rng.choice([6, 8, 10]) for _ in range(cols)) + "+\n"
            row = "|" + "|".join(" N/A ".center(len(c)) for c in rule.strip("+\n").split("+")) + "|\n"
            text = (rule + row) * rng.randint(8, 12) + rule
        else:
            msg = rng.choice(["INFO  heartbeat ok", "DEBUG poll: no new events", "WARN  retrying in 5s",
                              "INFO  health check passed"])
            text = (msg + "\n") * rng.randint(25, 40)
        docs.append({"kind": "low-entropy", "source": "synthetic", "text": text})
    return docs
