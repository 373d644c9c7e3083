import { shellQuote } from './quote.js'

/** Wraps a command in `sudo -n sh -c …` unless the login user is root or sudo is not wanted. */
export function sudoWrap(command: string, isRoot: boolean, sudo = true): string {
  return sudo && !isRoot ? `sudo -n sh -c ${shellQuote(command)}` : command
}

/** Does this stderr say that `sudo -n` wanted a password (or a terminal to ask for one)? */
export function sudoNeedsPassword(stderr: string): boolean {
  return /sudo: (a password is required|a terminal is required)/.test(stderr)
}
