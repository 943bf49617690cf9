/**
 * Errors the user can fix (bad experiment files, missing or corrupt data).
 * `main.ts` prints their message without a stack trace and exits with
 * status 2; every other error is a failure of the program (status 1).
 *
 * @module
 */

/**
 * An error caused by the user's input. The message is one paragraph that
 * names the file (with line:column where known) and the field, says what is
 * wrong and what would be valid.
 */
export class UserError extends Error {
  /** Create a user error with a one-paragraph message. */
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

/** True when `error` is a {@link UserError} (also across module copies). */
export function isUserError(error: unknown): error is UserError {
  return error instanceof UserError ||
    (error instanceof Error && error.name === "UserError");
}

/** Characters of outside input an error message quotes at most ({@link excerpt}). */
export const EXCERPT_CHARS = 60;

/**
 * A short, escaped quote of outside input for an error message: control
 * characters, quotes and backslashes escaped as in JSON, at most `max`
 * characters of the input, and how many more were left out. A 50 MB line or
 * a MiB of NUL bytes never floods the terminal.
 */
export function excerpt(text: string, max: number = EXCERPT_CHARS): string {
  const head = text.length > max ? text.slice(0, max) : text;
  const quoted = JSON.stringify(head).replace(
    /[\u007f-\u009f\u2028\u2029\ufffd]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return text.length > max ? `${quoted}… (${text.length - max} more characters)` : quoted;
}

/** An error as a worker thread posts it: its message and whether it is the user's. */
export interface ThreadError {
  message: string;
  user: boolean;
}

/** `error` as a worker thread posts it (rebuilt by {@link fromThread}). */
export function toThread(error: unknown): ThreadError {
  return {
    message: error instanceof Error ? error.message : String(error),
    user: isUserError(error),
  };
}

/** The error a worker thread posted ({@link toThread}), as this thread throws it: a UserError when it was one. */
export function fromThread(error: ThreadError): Error {
  return error.user ? new UserError(error.message) : new Error(error.message);
}
