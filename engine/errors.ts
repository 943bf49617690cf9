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
