/**
 * Personal data in text: e-mail addresses, phone numbers, IPv4 and IPv6
 * addresses, payment card numbers (Luhn-checked, with a card network's
 * prefix), IBANs (ISO 13616 mod-97 checked, with the country's length) and
 * street addresses (house number, capitalized name, street type: the one
 * address shape a simple rule finds reliably). Each hit is `{ kind, start,
 * end }`, a span of UTF-16 code units of the text; {@link redact} masks a
 * value (`j***@example.org`) so that reports never show it raw.
 *
 * Rules are regular expressions plus checks (checksums, octet ranges, digit
 * counts, dates and version numbers excluded). Measured on the nano corpus
 * against the generator's record of which documents hold synthetic people:
 * tests/personal_test.ts and docs/analysis.md.
 *
 * @module
 */

/** A kind of personal data. */
export type PersonalKind = "email" | "phone" | "ipv4" | "ipv6" | "card" | "iban" | "address";

/** Every kind, in report order. */
export const PERSONAL_KINDS: readonly PersonalKind[] = [
  "email",
  "phone",
  "address",
  "ipv4",
  "ipv6",
  "card",
  "iban",
];

/** One piece of personal data found in a text: its kind and span [start, end). */
export interface PersonalHit {
  kind: PersonalKind;
  start: number;
  end: number;
}

const EMAIL =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![A-Za-z0-9-])/g;
const PHONE = new RegExp(
  [
    String.raw`\+\d{1,3}(?:[-. ]?\(\d{1,4}\))?(?:[-. ]\d{1,5}){2,5}`, // +1-555-0123-4567, +44 20 7946 0958
    String.raw`\(\d{3}\) ?\d{3}[-. ]\d{4}`, // (555) 012-3456
    String.raw`\d{3}[-.]\d{3}[-.]\d{4}`, // 555-012-3456
  ].map((p) => `(?<![\\w.+-])(?:${p})(?![\\w]|[-.]\\d)`).join("|"),
  "g",
);
const IPV4 = /(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)/g;
const VERSION_BEFORE = /(?:version|release|v)\s*$/i;
const IPV6 = /(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:.])/g;
const CARD = /(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w]|-\d)/g;
const IBAN = /(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![\w])/g;
const STREET_TYPES = "Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|" +
  "Boulevard|Blvd|Terrace|Square|Sq";
const ADDRESS = new RegExp(
  String.raw`(?<![\w.-])\d{1,5}[A-Za-z]? (?:[A-Z][a-z]+ ){1,3}(?:${STREET_TYPES})\b\.?`,
  "g",
);

/** IBAN lengths by country (ISO 13616 registry, the SEPA countries and a few others). */
const IBAN_LENGTH: Record<string, number> = {
  AD: 24,
  AT: 20,
  BE: 16,
  BG: 22,
  CH: 21,
  CY: 28,
  CZ: 24,
  DE: 22,
  DK: 18,
  EE: 20,
  ES: 24,
  FI: 18,
  FR: 27,
  GB: 22,
  GI: 23,
  GR: 27,
  HR: 21,
  HU: 28,
  IE: 22,
  IS: 26,
  IT: 27,
  LI: 21,
  LT: 20,
  LU: 20,
  LV: 21,
  MC: 27,
  MT: 31,
  NL: 18,
  NO: 15,
  PL: 28,
  PT: 25,
  RO: 24,
  SE: 24,
  SI: 19,
  SK: 24,
  SM: 27,
  TR: 26,
  VA: 22,
  AE: 23,
  BR: 29,
  IL: 23,
  SA: 24,
  UA: 29,
}; // deno-fmt-ignore-line

/** The Luhn checksum holds (digits only). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (d < 0 || d > 9) return false;
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** A card network's prefix and length (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay). */
function cardNetwork(d: string): boolean {
  const n = d.length, p2 = +d.slice(0, 2), p4 = +d.slice(0, 4), p6 = +d.slice(0, 6);
  if (d[0] === "4") return n === 13 || n === 16 || n === 19;
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16;
  if (p2 === 34 || p2 === 37) return n === 15;
  if (p4 === 6011 || p2 === 65 || (p6 >= 622126 && p6 <= 622925)) return n >= 16 && n <= 19;
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19;
  if (p2 === 36 || p2 === 38 || (p2 === 30 && +d[2] <= 5)) return n === 14;
  if (p2 === 62) return n >= 16 && n <= 19;
  return false;
}

/** The ISO 13616 check: country length and mod 97 of the rearranged number equals 1. */
export function ibanValid(iban: string): boolean {
  const s = iban.replace(/ /g, "").toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(s) || IBAN_LENGTH[s.slice(0, 2)] !== s.length) return false;
  const moved = s.slice(4) + s.slice(0, 4);
  let rem = 0;
  for (const ch of moved) {
    const v = ch >= "A" ? ch.charCodeAt(0) - 55 : ch.charCodeAt(0) - 48;
    rem = v > 9 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
  }
  return rem === 1;
}

function ipv6Valid(s: string): boolean {
  const parts = s.split("::");
  if (parts.length > 2) return false;
  const groups = parts.flatMap((p) => (p === "" ? [] : p.split(":")));
  if (groups.some((g) => !/^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  if (parts.length === 1) return groups.length === 8;
  // compressed: at least two groups written, one of them with a letter or of 3+ digits,
  // so that times (12::30), slices and label pairs are not taken for addresses
  return groups.length >= 2 && groups.length <= 7 &&
    groups.some((g) => g.length >= 3 || /[A-Fa-f]/.test(g));
}

function digitsOf(s: string): string {
  return s.replace(/\D/g, "");
}

/** Years, dates and version-like runs that phone patterns would otherwise take. */
function phoneValid(s: string): boolean {
  const d = digitsOf(s);
  if (d.length < 8 || d.length > 15) return false;
  if (/^\d{4}-\d{2}-\d{2}/.test(s) || /^(19|20)\d{2}[-.](19|20)\d{2}$/.test(s)) return false;
  return true;
}

function* matches(re: RegExp, text: string): Generator<RegExpExecArray> {
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) yield m;
}

/**
 * The personal data found in `text`, by start (overlaps resolved in favour
 * of the earlier, then the longer hit; checksummed kinds win over phones).
 *
 * @example
 * ```ts
 * import { detectPersonal } from "./personal.ts";
 * detectPersonal("mail jane.doe@example.org"); // [{ kind: "email", start: 5, end: 25 }]
 * ```
 */
export function detectPersonal(text: string): PersonalHit[] {
  const hits: PersonalHit[] = [];
  const add = (kind: PersonalKind, m: RegExpExecArray) =>
    hits.push({ kind, start: m.index, end: m.index + m[0].length });
  for (const m of matches(EMAIL, text)) add("email", m);
  for (const m of matches(IBAN, text)) if (ibanValid(m[0])) add("iban", m);
  for (const m of matches(CARD, text)) {
    const d = digitsOf(m[0]);
    if (luhnValid(d) && cardNetwork(d)) add("card", m);
  }
  for (const m of matches(IPV4, text)) {
    const octets = m[0].split(".").every((o) => +o <= 255 && (o.length === 1 || o[0] !== "0"));
    // a four-part version number has an address's shape: its label decides
    if (octets && !VERSION_BEFORE.test(text.slice(Math.max(0, m.index - 12), m.index))) {
      add("ipv4", m);
    }
  }
  for (const m of matches(IPV6, text)) if (ipv6Valid(m[0])) add("ipv6", m);
  for (const m of matches(PHONE, text)) if (phoneValid(m[0])) add("phone", m);
  for (const m of matches(ADDRESS, text)) add("address", m);
  const rank: Record<PersonalKind, number> = {
    email: 0,
    iban: 1,
    card: 2,
    ipv6: 3,
    ipv4: 4,
    address: 5,
    phone: 6,
  }; // deno-fmt-ignore-line
  hits.sort((a, b) => a.start - b.start || rank[a.kind] - rank[b.kind] || b.end - a.end);
  const out: PersonalHit[] = [];
  for (const h of hits) {
    const last = out[out.length - 1];
    if (last && h.start < last.end) {
      if (rank[h.kind] < rank[last.kind] && h.end >= last.end) out[out.length - 1] = h;
      continue;
    }
    out.push(h);
  }
  return out;
}

/**
 * A masked value of a hit, safe to show: the kind's shape with most
 * characters replaced by `*` (e-mail: first letter and domain, `j***@example.org`;
 * phone: last two digits; card and IBAN: country or last four; IP: first part;
 * address: first letters of the name and the street type).
 */
export function redact(kind: PersonalKind, value: string): string {
  switch (kind) {
    case "email": {
      const at = value.lastIndexOf("@");
      return `${value[0]}***${value.slice(at)}`;
    }
    case "phone":
      return keepLast(value, 2, /\d/);
    case "card":
      return keepLast(value, 4, /\d/);
    case "iban":
      return value.slice(0, 2) + keepLast(value.slice(2), 4, /[A-Z0-9]/);
    case "ipv4":
      return value.split(".").map((p, i) => (i === 0 ? p : "*")).join(".");
    case "ipv6":
      return value.split(":").map((p, i) => (i === 0 || p === "" ? p : "*")).join(":");
    case "address":
      return value.replace(/\d/g, "*").replace(
        new RegExp(String.raw`\b([A-Z])[a-z]+\b(?! *\.?$)`, "g"),
        (_, c) => `${c}***`,
      );
  }
}

/** `value` with every character matching `masked` replaced by `*` except the last `keep` of them. */
function keepLast(value: string, keep: number, masked: RegExp): string {
  let left = keep;
  return value.split("").reverse().map((c) => (masked.test(c) ? (left-- > 0 ? c : "*") : c))
    .reverse().join("");
}

/** Hits of a text with their masked values (never the raw ones). */
export function redactedHits(
  text: string,
  hits: readonly PersonalHit[] = detectPersonal(text),
): { kind: PersonalKind; start: number; end: number; masked: string }[] {
  return hits.map((h) => ({ ...h, masked: redact(h.kind, text.slice(h.start, h.end)) }));
}

/** Per kind, whether the text has at least one hit (a bit per kind, in {@link PERSONAL_KINDS} order). */
export function kindMask(hits: readonly PersonalHit[]): number {
  let m = 0;
  for (const h of hits) m |= 1 << PERSONAL_KINDS.indexOf(h.kind);
  return m;
}
