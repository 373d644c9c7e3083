/** The doctor's check selection, shared by `doctor` and `fleet doctor`. */
import * as Flags from '@oclif/core/flags'

export const checkSelectionFlags = {
  only: Flags.string({
    description: 'Run only these checks or groups (comma list).',
    helpValue: 'IDS',
    multiple: true,
  }),
  skip: Flags.string({ description: 'Skip these checks or groups (comma list).', helpValue: 'IDS', multiple: true }),
  timeout: Flags.string({
    char: 't',
    description: 'Timeout of each check, in seconds.',
    default: '5',
    helpValue: 'SECONDS',
  }),
}
