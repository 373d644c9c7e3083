/** What every chatmail host needs besides its services: base packages, chatmail's directories. */
import { POLICY_MARK } from '../apply.js'
import { command, directory, pkg } from '../resources.js'
import type { ServiceModule } from '../service.js'

export const system: ServiceModule = {
  name: 'system',
  build: () => ({
    packages: [pkg('openssl'), pkg('ca-certificates'), pkg('curl')],
    directories: [directory('/etc/chatmail'), directory('/var/lib/chatmail')],
    commands: [
      // A deploy killed during its package install leaves the policy-rc.d that kept daemons from starting.
      command(
        'policy-rc-leftover',
        'remove the policy-rc.d an interrupted deploy left behind',
        `! grep -qs '${POLICY_MARK}' /usr/sbin/policy-rc.d`,
        'rm -f /usr/sbin/policy-rc.d',
      ),
    ],
  }),
}
