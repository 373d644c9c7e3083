/**
 * Account creations per second: first IMAP logins of new addresses against a real dovecot whose
 * passdb/userdb is chatmail-accounts (the built service, default PBKDF2 cost), 16 at once.
 *   npx tsx bench/accounts.ts [COUNT]
 * Goal (issue 11): >= 200 creations/s. Also prints logins/s of existing accounts.
 */
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { dovecotAuthBlocks, startAccountsService } from '../test/helpers/accounts.js'
import { startDovecot } from '../test/helpers/dovecot.js'
import { imapLogin } from '../test/helpers/imap-login.js'

const COUNT = Number(process.argv[2] ?? 2000)
const CONCURRENCY = 16
const DOMAIN = 'bench.example.org'

async function run(port: number, names: string[], dovecot: { logs(): string }): Promise<number> {
  let next = 0
  const t0 = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < names.length) {
        const name = names[next++] as string
        const reply = await imapLogin(port, `${name}@${DOMAIN}`, `password-of-${name}`)
        if (!reply.startsWith('a OK')) throw new Error(`${name}: ${reply}\n${dovecot.logs().slice(-1500)}`)
      }
    }),
  )
  return Number(process.hrtime.bigint() - t0) / 1e9
}

const dataDir = mkdtempSync(join(tmpdir(), 'bench-accounts-data-'))
const mailRoot = mkdtempSync(join(tmpdir(), 'bench-accounts-mail-'))
const svc = await startAccountsService({
  domain: DOMAIN,
  mailRoot,
  dataDir,
  extra: { pbkdf2_rounds: '10000', max_creations_per_client: '1000000' },
})
const dovecot = await startDovecot({
  auth: dovecotAuthBlocks(svc.dictSocket, svc.dir),
  extraConfig: 'auth_failure_delay = 0',
})
const owner = statSync(dovecot.homeRoot)
chownSync(mailRoot, owner.uid, owner.gid)
try {
  const names = Array.from({ length: COUNT }, (_, i) => `b${String(i).padStart(8, '0')}`)
  const first = await run(dovecot.imapPort, names, dovecot)
  const again = await run(dovecot.imapPort, names, dovecot)
  console.log(
    `accounts: ${COUNT} first logins (creations) in ${first.toFixed(2)} s = ${(COUNT / first).toFixed(0)} creations/s; ` +
      `${COUNT} logins of existing accounts = ${(COUNT / again).toFixed(0)}/s (IMAP LOGIN over loopback, ${CONCURRENCY} at once, PBKDF2 10000 rounds)`,
  )
} finally {
  await dovecot.stop()
  await svc.stop()
  rmSync(dataDir, { recursive: true, force: true })
  rmSync(mailRoot, { recursive: true, force: true })
}
