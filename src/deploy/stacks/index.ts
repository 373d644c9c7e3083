/** The registry: which stack a config's `profile` deploys. A new profile is one line here. */
import type { Config } from '../../config/schema.js'
import { ChatmailError, ExitCode } from '../../lib/errors.js'
import type { StackDefinition } from '../service.js'
import { dovecotStack } from './dovecot.js'

export const STACKS: Partial<Record<Config['profile'], StackDefinition>> = {
  dovecot: dovecotStack,
}

export function stackFor(profile: Config['profile']): StackDefinition {
  const stack = STACKS[profile]
  if (!stack) {
    const known = Object.keys(STACKS)
    throw new ChatmailError(
      `profile ${profile} cannot be deployed yet; only ${known.join(', ')} is implemented`,
      ExitCode.usage,
      `set profile = "${known[0]}" in the config`,
    )
  }
  return stack
}
