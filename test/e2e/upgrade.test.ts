/**
 * A Debian 12 chatmail server upgraded in place to Debian 13 (`apt full-upgrade` to trixie, the way
 * Debian's release notes do it, keeping our changed conffiles) and rebooted, then deployed again, converges to
 * the Debian 13 configuration: dovecot 2.4 with its own grammar, the mail kept, the doctor green,
 * and a further deploy changes nothing.
 *
 * Opt-in (CHATMAIL_E2E_UPGRADE=1): the upgrade downloads and installs a whole release (minutes).
 * It prints its figures; it asserts none of them.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type ConfiguredHost, startConfiguredHost } from '../helpers/deployed-host.js'
import { guestShell, startTestHost, stopTestHost, testHostSkipReason } from '../helpers/testhost.js'

const OPTS = { name: 'th-d13-upgrade', index: 51, suite: 'bookworm' } as const
const skip = process.env.CHATMAIL_E2E_UPGRADE === '1' ? testHostSkipReason() : 'opt-in: CHATMAIL_E2E_UPGRADE=1'
const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`

/** The sources, then apt's non-interactive full upgrade, keeping the conffiles we manage (confold). */
const UPGRADE = [
  'set -e',
  `sed -i -E 's/\\bbookworm(-[a-z]+)?\\b/trixie\\1/g' /etc/apt/sources.list.d/debian.sources`,
  'apt-get update -q >/dev/null',
  // apt exits 100 when dovecot 2.4 refuses the 2.3 configuration at its configure step (expected).
  'rc=0; DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef full-upgrade >/var/log/chatmail-test-upgrade.log 2>&1 || rc=$?',
  '. /etc/os-release && echo "apt-get exit $rc, now Debian $VERSION_ID"',
].join('\n')

const DICT_FILE = '/etc/dovecot/accounts-dict.conf.ext'
const MAIL_COUNT = (user: string) => `doveadm search -u '${user}' mailbox INBOX subject "before the upgrade" | wc -l`

describe.skipIf(skip)(`a Debian 12 server upgraded in place to 13${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let c: ConfiguredHost
  const shell = (command: string) => guestShell(c.host, command)
  const deploy = async (...extra: string[]) => {
    const t0 = performance.now()
    const r = await c.deploy(...extra)
    expect(r.code, `${r.stderr}\n${r.stdout.slice(0, 4000)}`).toBe(0)
    return { out: JSON.parse(r.stdout), took: seconds(t0) }
  }

  beforeAll(async () => {
    c = await startConfiguredHost({ ...OPTS, deployTimeoutMs: 900_000 })
  }, 300_000)

  afterAll(async () => {
    await c?.stop()
  }, 120_000)

  test('deploy on 12, full-upgrade to 13, deploy again: the 13 configuration, the mail kept, doctor green', async () => {
    const first = await deploy('--no-doctor')
    // An IP-only server: the doctor's login is the address literal, as every account's.
    const user = `doctor@[${c.host.host}]`
    expect(await shell('doveconf -n | head -n 1')).toMatch(/^# 2\.3\./)
    await shell(
      `printf 'From: a@example.org\\nSubject: before the upgrade\\n\\nkept?\\n' | doveadm save -u '${user}' -m INBOX`,
    )
    expect((await shell(MAIL_COUNT(user))).trim()).toBe('1')
    // dovecot 2.3's dict passdb/userdb file, which 2.4 does not read: the redeploy on 13 removes it.
    expect(await shell(`grep -c '^# Managed by' ${DICT_FILE}`)).toBe('1\n')

    const t0 = performance.now()
    const upgraded = (await shell(UPGRADE)).trim()
    expect(upgraded).toMatch(/now Debian 13$/)
    const upgradeTook = seconds(t0)
    // dovecot 2.4 refuses the 2.3 configuration, so dpkg could not finish configuring it.
    const halfConfigured = await shell('dpkg --audit | grep -E "^ [a-z]" || true')
    // A reboot, as after any release upgrade (the test host's overlay is kept).
    await stopTestHost({ ...OPTS, keep: true }, { purge: false })
    c.host = await startTestHost({ ...OPTS, keep: true })
    const afterReboot = await shell(
      'systemctl is-active dovecot postfix nginx coturn chatmail-metadata iroh-relay || true',
    )

    const again = await deploy()
    expect(again.out.changed).toBeGreaterThan(0)
    expect(again.out.doctor.status).toBe('ok')
    expect(await shell('doveconf -n | head -n 1')).toMatch(/^# 2\.4\./)
    expect(await shell('grep -c "^dovecot_config_version" /etc/dovecot/dovecot.conf')).toBe('1\n')
    expect((await shell(MAIL_COUNT(user))).trim()).toBe('1')
    expect(await shell('dpkg --audit')).toBe('')
    const present = `for f in ${DICT_FILE} /etc/dovecot/chatmail-accounts.lua; do [ ! -e "$f" ] || echo "$f"; done`
    expect(await shell(present)).toBe('/etc/dovecot/chatmail-accounts.lua\n')

    const noop = await deploy('--no-doctor')
    expect(noop.out.changed).toBe(0)
    expect(noop.out.restarted).toEqual([])
    process.stderr.write(
      `upgrade figures: deploy on 12 ${first.took}; full-upgrade 12 -> 13 ${upgradeTook}; ` +
        `${upgraded}; left unconfigured: ${halfConfigured.trim().split('\n').join(', ') || 'nothing'}; ` +
        `services after the reboot: ${afterReboot.trim().split('\n').join(' ')}; ` +
        `redeploy on 13 ${again.took} (${again.out.changed} changed, restarted ${again.out.restarted.join(' ')}); ` +
        `no-op ${noop.took}\n`,
    )
  }, 1_800_000)
})
