/**
 * `chatmail backup` / `restore`'s host script (templates/shell/backup.sh) with Debian's real restic
 * on loopback: server data in a temp dir stands in for the host's paths, the script is the one the
 * commands send (hostScript), run by `bash -s` as root. A backup, an incremental backup of the
 * unchanged data, the copy to "the operator's machine" (copyRepository, also incremental), a
 * restore that puts back every file with its owner and mode, a rerun that changes nothing, the
 * owner mapping by name, a host with accounts of its own refused, and a tampered copy refused.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type HostLayout, hostScript } from '../../src/app/backup.js'
import { copyRepository, localRepo } from '../../src/app/backup-repo.js'
import { localManifest, loopbackLayout, runHostScript } from '../helpers/backup.js'

const haveRestic = spawnSync('restic', ['version']).status === 0
const isRoot = process.getuid?.() === 0
const PASSWORD = 'xxxxxxxxTestPassword_0123456789abcdefghij'

// restic check --read-data reads the whole repository: minutes on a loaded 2-core machine.
describe.skipIf(!haveRestic || !isRoot)('backup.sh with restic on loopback', { timeout: 400_000 }, () => {
  let root: string
  let layout: HostLayout
  let data: string[]
  const run = (mode: 'backup' | 'restore', l = layout, force = false) => runHostScript(mode, l, PASSWORD, force)

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'chatmail-backup-'))
    const d = (p: string) => join(root, 'host', p)
    ;({ layout, data } = loopbackLayout(root))
    for (const p of [
      d('accounts'),
      d('mail/chat.example.org/alice/cur'),
      d('mail/chat.example.org/bob/new'),
      d('queue/deferred/A'),
      d('dkim'),
    ]) {
      mkdirSync(p, { recursive: true })
    }
    writeFileSync(layout.accountsFile, 'alice@chat.example.org:{SHA}x\nbob@chat.example.org:{SHA}y\n', { mode: 0o600 })
    writeFileSync(d('users'), 'old@chat.example.org:{PLAIN}z\n', { mode: 0o640 })
    for (let i = 0; i < 50; i++) {
      writeFileSync(
        d(`mail/chat.example.org/alice/cur/${1700000000 + i}.M1P1.host,S=3:2,S`),
        `message ${i}\n${'x'.repeat(i * 100)}`,
      )
    }
    writeFileSync(d('mail/chat.example.org/bob/new/1700000100.M2P2.host'), 'unread\n')
    writeFileSync(d('queue/deferred/A/A1B2C3'), 'queued message\n', { mode: 0o700 })
    writeFileSync(d('dkim/opendkim.private'), '-----BEGIN PRIVATE KEY-----\nkey\n', { mode: 0o600 })
    chownSync(d('mail/chat.example.org/bob/new/1700000100.M2P2.host'), 65534, 65534)
  })
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true })
  })

  it('backs up, and an unchanged server a second time adds (almost) nothing', async () => {
    const first = await run('backup')
    expect(first.error, first.stderr).toBeUndefined()
    expect(first.code).toBe(0)
    const final = JSON.parse(first.results.get('final') ?? '{}')
    expect(final.total_files_processed).toBeGreaterThanOrEqual(55)
    expect(statSync(layout.passwordFile).mode & 0o777).toBe(0o600)
    expect(statSync(layout.repository).mode & 0o777).toBe(0o700)
    const second = await run('backup')
    expect(second.code).toBe(0)
    const again = JSON.parse(second.results.get('final') ?? '{}')
    expect(again.files_new).toBe(0)
    expect(again.files_changed).toBe(0)
    expect(again.data_added).toBeLessThan(4096)
    expect(Number(second.results.get('freeze_ms'))).toBeGreaterThanOrEqual(0)
  })

  it('copies the repository, and a second copy moves only what is new', async () => {
    const copy = join(root, 'operator/backup')
    const first = await copyRepository(localRepo(layout.repository), localRepo(copy))
    expect(first.files).toBeGreaterThan(5)
    const none = await copyRepository(localRepo(layout.repository), localRepo(copy))
    expect(none).toEqual({ files: 0, bytes: 0, removed: 0 })
    await run('backup')
    const next = await copyRepository(localRepo(layout.repository), localRepo(copy))
    // A new snapshot file, its tree and index; forget and prune may replace one snapshot.
    expect(next.files).toBeGreaterThan(0)
    expect(next.files).toBeLessThan(first.files)
    expect(readdirSync(join(copy, 'snapshots')).sort()).toEqual(
      readdirSync(join(layout.repository, 'snapshots')).sort(),
    )
  })

  it('refuses to restore over a host with accounts of its own, then restores every file, owner and mode', async () => {
    const before = localManifest(data)
    expect(before.length).toBeGreaterThanOrEqual(55)
    const refused = await run('restore')
    expect(refused.code).toBe(12)
    expect(refused.error).toMatch(/has accounts of its own.*--force/)
    rmSync(join(root, 'host'), { recursive: true, force: true })
    const done = await run('restore')
    expect(done.error, done.stderr).toBeUndefined()
    expect(done.results.get('snapshot')).toMatch(/^[0-9a-f]{8}$/)
    expect(localManifest(data)).toEqual(before)
    expect(existsSync(layout.stageDir)).toBe(false)
    const rerun = await run('restore')
    expect(rerun.code).toBe(0)
    expect(rerun.results.has('already')).toBe(true)
    expect(localManifest(data)).toEqual(before)
  })

  it('maps owners by name onto the restoring host', () => {
    const stage = join(root, 'map')
    const file = join(stage, 'mail/x')
    mkdirSync(join(stage, 'mail'), { recursive: true })
    writeFileSync(file, 'x')
    chownSync(file, 4242, 4243)
    mkdirSync(join(stage, root, 'state'), { recursive: true })
    // The old host's nobody had 4242 and nogroup 4243; here they are 65534.
    writeFileSync(join(stage, layout.ownersFile), 'u nobody 4242\ng nogroup 4243\nu no-such-user-here 7\n')
    const script = hostScript('restore', { ...layout, stageDir: stage }, PASSWORD).replace(
      /restore_main\n$/,
      'map_owners\n',
    )
    execFileSync('bash', ['-s'], { input: script })
    expect([statSync(file).uid, statSync(file).gid]).toEqual([65534, 65534])
  })

  it('refuses a tampered backup and changes nothing', async () => {
    const before = localManifest(data)
    // The largest pack: it holds the messages.
    const packs = readdirSync(join(layout.repository, 'data'), { recursive: true, encoding: 'utf8' })
      .map((p) => join(layout.repository, 'data', p))
      .filter((p) => statSync(p).isFile())
    const pack = packs.sort((a, b) => statSync(b).size - statSync(a).size)[0] as string
    const bytes = readFileSync(pack)
    bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0xff, bytes.length >> 1)
    writeFileSync(pack, bytes)
    rmSync(layout.restoredFile)
    rmSync(layout.accountsFile)
    const refused = await run('restore')
    expect(refused.code).toBe(10)
    expect(refused.error).toMatch(/failed verification .*tampered.*nothing was restored/)
    expect(localManifest(data)).toEqual(before.filter((l) => !l.startsWith(`${layout.accountsFile} `)))
  })
})
