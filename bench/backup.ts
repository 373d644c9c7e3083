/**
 * `chatmail backup` / `restore`'s host script with Debian's restic on loopback (root): a server of
 * BENCH_ACCOUNTS accounts (default 10000) with BENCH_MB of mail (default 1024, random bytes: encrypted
 * mail does not compress) in maildirs under a temp dir. Prints: the first backup, a second one of the
 * unchanged server (and its freeze: the consistent pass), the copy of the repository to "the
 * operator's machine" and its incremental second copy, and a restore into the emptied paths
 * (restic check --read-data included). No units are stopped here: on a host the freeze adds
 * systemctl stop/start of postfix, dovecot and chatmail-accounts.
 *   tsx bench/backup.ts            BENCH_ACCOUNTS=2000 BENCH_MB=100 tsx bench/backup.ts
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { copyRepository, localRepo } from '../src/app/backup-repo.js'
import { loopbackLayout, runHostScript } from '../test/helpers/backup.js'

const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 10000)
const MB = Number(process.env.BENCH_MB ?? 1024)
const PASSWORD = 'benchBackupPassword_0123456789abcdef'
const root = mkdtempSync(join(tmpdir(), 'chatmail-bench-backup-'))
const { layout } = loopbackLayout(root)
const host = (p: string) => join(root, 'host', p)

const seconds = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
  const t0 = process.hrtime.bigint()
  const r = await f()
  console.log(
    `${what}: ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s (load ${loadavg()[0]?.toFixed(1)})`,
  )
  return r
}

function makeServer(): void {
  mkdirSync(host('accounts'), { recursive: true })
  const lines: string[] = []
  const perAccount = Math.floor((MB * 1024 * 1024) / ACCOUNTS)
  for (let i = 0; i < ACCOUNTS; i++) {
    const user = `u${i}`
    lines.push(`${user}@chat.example.org\t{PBKDF2}x\t0`)
    const cur = host(`mail/chat.example.org/${user}/cur`)
    mkdirSync(cur, { recursive: true })
    mkdirSync(host(`mail/chat.example.org/${user}/new`))
    // Two messages an account: the mail of a server with short-lived messages.
    for (let m = 0; m < 2; m++) writeFileSync(join(cur, `17000000${m}.M${i}P1.bench:2,S`), randomBytes(perAccount >> 1))
  }
  writeFileSync(layout.accountsFile, `${lines.join('\n')}\n`)
}

const check = (r: Awaited<ReturnType<typeof runHostScript>>, what: string) => {
  if (r.code !== 0) throw new Error(`${what}: ${r.error ?? r.stderr.slice(-500)}`)
  return r
}

try {
  console.log(`backup bench: ${ACCOUNTS} accounts, ${MB} MB of mail, restic on loopback (${root})`)
  await seconds('make the server', async () => makeServer())
  await seconds('first backup (live pass + consistent pass + forget + check)', async () =>
    check(await runHostScript('backup', layout, PASSWORD), 'backup'),
  )
  const again = await seconds('second backup of the unchanged server', async () =>
    check(await runHostScript('backup', layout, PASSWORD), 'backup'),
  )
  const final = JSON.parse(again.results.get('final') ?? '{}') as { data_added: number; total_files_processed: number }
  console.log(
    `  its consistent pass (the freeze on a host, without the units' stop/start): ${(Number(again.results.get('freeze_ms')) / 1000).toFixed(1)} s, ${final.total_files_processed} files, ${final.data_added} bytes added`,
  )
  const copyDir = join(root, 'operator')
  const first = await seconds('copy of the repository to the operator', () =>
    copyRepository(localRepo(layout.repository), localRepo(copyDir)),
  )
  console.log(`  ${first.files} files, ${(first.bytes / 1e6).toFixed(0)} MB`)
  check(await runHostScript('backup', layout, PASSWORD), 'backup')
  const next = await seconds('incremental copy after a third backup', () =>
    copyRepository(localRepo(layout.repository), localRepo(copyDir)),
  )
  console.log(`  ${next.files} files, ${(next.bytes / 1e3).toFixed(0)} kB`)
  rmSync(join(root, 'host'), { recursive: true, force: true })
  await seconds('restore (check --read-data, restore, owners, move into place)', async () =>
    check(await runHostScript('restore', layout, PASSWORD), 'restore'),
  )
} finally {
  rmSync(root, { recursive: true, force: true })
}
