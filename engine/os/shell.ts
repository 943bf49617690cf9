/**
 * Shell words: how the harness writes a command line a user can paste (the
 * commands in reports and `import.json`, the Slurm scripts).
 *
 * @module
 */

/** Quotes a word for a POSIX shell (as is when it holds only safe characters). */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
