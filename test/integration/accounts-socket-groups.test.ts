/**
 * chatmail-accounts without supplementary groups (issue 23 item 10e): its unit has root make a
 * setgid directory of each socket's group, where the socket is born with that group, so the
 * service (owner of the socket, no member of the group) may "chown" it to the group it already
 * has. Here the built program runs as nobody, with no supplementary groups (node's spawn with a
 * uid drops them), its dict socket for a group nobody is not in: refused in a plain directory,
 * given in the setgid one.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ACCOUNTS_PROGRAM } from '../helpers/accounts.js'
import { buildRemote, logWith } from '../helpers/dovecot.js'

const NOBODY = 65534
const GROUP = 'daemon'
const groupId = (name: string) =>
  Number(
    readFileSync('/etc/group', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${name}:`))
      ?.split(':')[2],
  )

describe.skipIf(process.getuid?.() !== 0)('chatmail-accounts as nobody, its dict socket for the group daemon', () => {
  let dir: string
  const children: ChildProcess[] = []
  beforeAll(() => {
    buildRemote()
    dir = mkdtempSync(join(tmpdir(), 'accounts-groups-'))
    chownSync(dir, NOBODY, NOBODY)
  })
  afterAll(() => {
    for (const c of children) c.kill()
    rmSync(dir, { recursive: true, force: true })
  })

  /** Starts the service with its dict socket in `socketDir`; its log once it listens or exits. */
  async function start(name: string, socketDir: string): Promise<{ log: string; exited: boolean }> {
    const d = join(dir, name)
    mkdirSync(d, { mode: 0o700 })
    chownSync(d, NOBODY, NOBODY)
    const conf = join(d, 'accounts.conf')
    const lines = [
      'domain = example.org',
      `data_dir = ${d}`,
      `mail_root = ${d}/mail`,
      `dict_socket = ${socketDir}/dict.socket`,
      `dict_socket_group = ${GROUP}`,
      `socketmap_socket = ${d}/socketmap.socket`,
      `http_socket = ${d}/http.socket`,
      `control_socket = ${d}/control.socket`,
    ]
    writeFileSync(conf, `${lines.join('\n')}\n`, { mode: 0o644 })
    const child = spawn(process.execPath, [ACCOUNTS_PROGRAM, conf], {
      uid: NOBODY,
      gid: NOBODY,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    children.push(child)
    let log = ''
    let exited = false
    child.stderr?.on('data', (b: Buffer) => {
      log += b.toString()
    })
    child.once('exit', () => {
      exited = true
    })
    await logWith(() => (exited ? 'exited' : log), /control: listening|exited/, 10_000)
    return { log, exited }
  }

  it('in a plain directory of its own: chown refused (EPERM), the service stops', async () => {
    const plain = join(dir, 'plain')
    mkdirSync(plain, { mode: 0o750 })
    chownSync(plain, NOBODY, NOBODY)
    const r = await start('a', plain)
    expect(r.exited, r.log).toBe(true)
    expect(r.log).toMatch(/EPERM/)
  })

  it('in a setgid directory of the group (as the unit has root make it): it listens, the socket has the group', async () => {
    const setgid = join(dir, GROUP)
    mkdirSync(setgid)
    chownSync(setgid, NOBODY, groupId(GROUP))
    chmodSync(setgid, 0o2750)
    const r = await start('b', setgid)
    expect(r.exited, r.log).toBe(false)
    expect(r.log).toMatch(/control: listening/)
    const st = statSync(join(setgid, 'dict.socket'))
    expect(st.isSocket()).toBe(true)
    expect(st.gid).toBe(groupId(GROUP))
    expect(st.mode & 0o777).toBe(0o660)
  })
})
