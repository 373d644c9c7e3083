import * as Args from '@oclif/core/args'
import { Command } from '@oclif/core/command'
import * as Errors from '@oclif/core/errors'
import * as Flags from '@oclif/core/flags'
import { ChatmailError, ExitCode, oneLine, toJsonError } from './errors.js'
import { printable } from './printable.js'

/** Flags every command takes. */
export const commonFlags = {
  verbose: Flags.boolean({
    char: 'v',
    description: 'Print more detail (and stack traces of unexpected errors).',
    default: false,
  }),
}

export const configFlag = Flags.string({
  char: 'c',
  description: 'Path of the config file.',
  default: 'chatmail.toml',
  env: 'CHATMAIL_CONFIG',
  helpValue: 'FILE',
})

/** The SSH destination of the commands that reach the server (deploy host, invite). */
export const destinationArg = Args.string({ description: 'user@host[:port] or a Host alias from ~/.ssh/config.' })

/** How the commands that reach the server over SSH find it (deploy host, backup, restore). */
export const sshFlags = {
  identity: Flags.string({
    char: 'i',
    description: 'SSH private key, tried first (then the ssh-agent, then ~/.ssh/id_*, as ssh does).',
    helpValue: 'FILE',
  }),
  'ssh-config': Flags.string({
    char: 'F',
    description: 'SSH config file (default: ~/.ssh/config; none: read no config).',
    helpValue: 'FILE',
  }),
  'known-hosts': Flags.string({
    description: 'known_hosts file (default: UserKnownHostsFile, else ~/.ssh/known_hosts).',
    helpValue: 'FILE',
  }),
}

/** The flags of the commands that deploy (deploy host, restore). */
export const deployFlags = {
  ...sshFlags,
  'accept-new-host-key': Flags.boolean({
    description: 'Trust and record the key of a host not yet in known_hosts.',
    default: false,
  }),
  'skip-dns-check': Flags.boolean({
    description: 'Do not require the domain to resolve to the host.',
    default: false,
  }),
  'iroh-relay-source': Flags.string({
    description: 'Mirror URL (directory) or local .tar.gz of iroh-relay v0.35.0.',
    helpValue: 'URL|FILE',
  }),
  'iroh-relay-sha256': Flags.string({
    description: 'sha256 of the iroh-relay binary, when not the pinned release.',
    helpValue: 'HEX',
  }),
}

/** The domain of the commands that look at a server from the outside (doctor, dns). */
export const domainArg = Args.string({ description: 'The chatmail domain (default: domain in chatmail.toml).' })

/**
 * The base of every command: one clear line on stderr for any error, a documented exit code,
 * and never a stack trace unless --verbose asks for it.
 */
export abstract class BaseCommand extends Command {
  protected verbose = false

  public override async init(): Promise<void> {
    await super.init()
    this.verbose = this.argv.includes('--verbose') || this.argv.includes('-v')
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<void> {
    // A parse failure is reported here; oclif must not also warn that the command never parsed.
    ;(this as unknown as { parsed: boolean }).parsed = true
    const { message, exitCode, hint } = normalizeError(err)
    // The error on its own line, its hint on the next (issue 15: they used to run together);
    // control characters (from a server or a file) escaped, never sent to the terminal.
    if (this.jsonEnabled()) {
      process.stdout.write(`${JSON.stringify(toJsonError({ message, hint, exitCode }))}\n`)
    }
    const text = hint ? `${printable(message)}\nhint: ${printable(hint)}` : printable(message)
    process.stderr.write(`chatmail: ${text}\n`)
    if (this.verbose && !(err instanceof ChatmailError) && err.stack) process.stderr.write(`${err.stack}\n`)
    process.exitCode = exitCode
  }
}

export function normalizeError(err: Error & { exitCode?: number; oclif?: { exit?: number } }): {
  message: string
  exitCode: number
  hint: string | undefined
} {
  if (err instanceof ChatmailError) return { message: oneLine(err.message), exitCode: err.exitCode, hint: err.hint }
  if (err instanceof Errors.ExitError)
    return { message: oneLine(err.message), exitCode: err.oclif.exit ?? 1, hint: undefined }
  // oclif parse errors (unknown flag, missing arg, bad option value) are usage errors.
  const parseNames = new Set([
    'NonExistentFlagsError',
    'UnexpectedArgsError',
    'RequiredArgsError',
    'FailedFlagValidationError',
    'ArgInvalidOptionError',
    'FlagInvalidOptionError',
  ])
  if (parseNames.has(err.constructor?.name) || err.oclif?.exit === ExitCode.usage) {
    return { message: oneLine(err.message), exitCode: ExitCode.usage, hint: 'see --help' }
  }
  if (err instanceof Errors.CLIError) {
    return { message: oneLine(err.message), exitCode: err.oclif?.exit ?? ExitCode.usage, hint: undefined }
  }
  return {
    message: `unexpected error: ${oneLine(err.message || String(err))}`,
    exitCode: ExitCode.cannotRun,
    hint: 'run again with --verbose for details',
  }
}
