/**
 * What every chatmail host needs besides its services: base packages (restic for `chatmail backup`
 * and `restore`), chatmail's directories.
 */

import { PATHS } from '../../server/paths.js'
import { POLICY_MARK } from '../apply.js'
import { command, directory, pkg } from '../resources.js'
import type { ServiceModule } from '../service.js'

export const system: ServiceModule = {
  name: 'system',
  build: () => ({
    packages: [pkg('openssl'), pkg('ca-certificates'), pkg('curl'), pkg('restic')],
    directories: [directory(PATHS.configDir), directory(PATHS.stateDir)],
    commands: [
      // A deploy killed during its package install leaves the policy-rc.d that kept daemons from starting.
      command(
        'policy-rc-leftover',
        'remove the policy-rc.d an interrupted deploy left behind',
        `! grep -qs '${POLICY_MARK}' /usr/sbin/policy-rc.d`,
        'rm -f /usr/sbin/policy-rc.d',
      ),
      // A package dpkg could not finish configuring: after an in-place upgrade to Debian 13,
      // dovecot 2.4 refuses the 2.3 configuration in its postinst. Once the deploy has written the
      // configuration for the new versions and restarted the services, dpkg can finish.
      command(
        'dpkg-configure-pending',
        'finish the package configuration dpkg left pending (dpkg --configure -a)',
        '! dpkg --audit 2>/dev/null | grep -q .',
        'DEBIAN_FRONTEND=noninteractive dpkg --force-confold --force-confdef --configure -a',
        'after-services',
      ),
    ],
  }),
}
