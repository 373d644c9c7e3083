/**
 * The CLI's single entry: every command, registered explicitly, so that the whole CLI can be
 * bundled into one file and start without scanning the tree.
 */
import DeployHost from './commands/deploy/host.js'
import Dns from './commands/dns.js'
import Doctor from './commands/doctor.js'
import Init from './commands/init.js'
import Invite from './commands/invite.js'
import TurnCred from './commands/turn-cred.js'

export { execute } from '@oclif/core'

export const COMMANDS = {
  'deploy:host': DeployHost,
  dns: Dns,
  doctor: Doctor,
  init: Init,
  invite: Invite,
  'turn-cred': TurnCred,
}
