/**
 * Errors a user can cause: a bad file, column, option, config or run folder. The CLI prints
 * the message as one line on stderr and exits with code 2; nothing is written before them.
 */
export class UserError extends Error {
  override name = "UserError";
}
