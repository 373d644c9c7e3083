/** The flags every `chatmail fleet …` command takes. */
import * as Flags from '@oclif/core/flags'

export const fleetFlags = {
  inventory: Flags.string({
    char: 'I',
    description: 'Directory of chatmail.toml files, one per server.',
    default: 'servers',
    env: 'CHATMAIL_INVENTORY',
    helpValue: 'DIR',
  }),
  concurrency: Flags.integer({
    char: 'j',
    description: 'Servers worked on at once.',
    default: 4,
    min: 1,
    max: 64,
  }),
}
