/**
 * chatmail-accounts' one-shot commands, run as root beside the service: `invite` and `expire`,
 * which ask the running service over its control socket.
 */
import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { connect } from 'node:net'
import { addressDomain } from '../../protocols/address.js'
import type { Logger } from '../lib/log.js'
import type { Expired } from './accounts.js'
import type { ServiceConfig } from './config.js'
import { expireMessages, mailboxToDelete } from './expire.js'
import { sweepOrphans } from './orphans.js'

/** An orphan mailbox modified within this many seconds stays (orphans.ts). */
const ORPHAN_MIN_AGE = 86400

/** One request to the running service over its control socket; its answer line (exit 3 when unreachable). */
function control(config: ServiceConfig, request: object, log: Logger): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(config.controlSocket.path)
    let buf = ''
    s.setTimeout(60_000, () => {
      log('error', 'the service did not answer within 60 s')
      process.exit(3)
    })
    s.on('error', (err) => {
      log('error', `cannot reach chatmail-accounts at ${config.controlSocket.path}: ${err.message}`)
      process.exit(3)
    })
    s.on('data', (d) => {
      buf += d.toString()
      if (buf.includes('\n')) {
        s.destroy()
        resolve(buf)
      }
    })
    s.write(`${JSON.stringify(request)}\n`)
  })
}

/** `invite CONFIG USES TTL`: asks the running service over its control socket. */
export async function invite(config: ServiceConfig, uses: number, ttl: number, log: Logger): Promise<void> {
  const answer = await control(config, { op: 'invite', uses, ttl }, log)
  process.stdout.write(answer)
  process.exit(JSON.parse(answer).ok ? 0 : 1)
}

function doveadm(args: string[]): string | undefined {
  try {
    execFileSync('doveadm', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 })
    return undefined
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string }
    return (e.stderr?.toString().trim() || e.message).split('\n')[0]
  }
}

/**
 * `expire CONFIG` (chatmail-expire.service, as root): inactive accounts first (the service removes
 * them from its file and keeps them on its expiring list; their sessions are kicked and their
 * mailboxes deleted here, then the service is told which are gone), then mailboxes of no account
 * (orphans.ts), then old messages in the remaining mailboxes. Cut off anywhere, the next run
 * finishes the job: the service hands out the list again. One summary line; exit 1 when any step
 * failed.
 */
export async function expire(config: ServiceConfig, log: Logger): Promise<void> {
  let failed = false
  const answer = JSON.parse(await control(config, { op: 'expire' }, log)) as {
    ok: boolean
    reason?: string
    expired?: Expired[]
  }
  if (!answer.ok) {
    log('error', `inactive accounts were not expired: ${answer.reason}`)
    failed = true
  }
  const deleted: string[] = []
  for (const e of answer.expired ?? []) {
    const target = mailboxToDelete(config.mailRoot, config.rules.domain, e.address, e.home)
    if ('gone' in target) {
      deleted.push(e.address)
      continue
    }
    if (!target.ok) {
      log('error', target.reason)
      failed = true
      continue
    }
    doveadm(['kick', e.address])
    try {
      rmSync(target.path, { recursive: true, force: true })
      deleted.push(e.address)
    } catch (err) {
      log('error', `cannot delete the mailbox ${e.home} of ${e.address}: ${(err as Error).message}`)
      failed = true
    }
  }
  // In requests under the control socket's line limit (4096 bytes).
  for (let i = 0; i < deleted.length; ) {
    const batch: string[] = []
    let size = 64
    while (i < deleted.length && size + (deleted[i] as string).length + 3 < 4000) {
      size += (deleted[i] as string).length + 3
      batch.push(deleted[i++] as string)
    }
    if (batch.length === 0) batch.push(deleted[i++] as string) // (an address is far shorter than a line)
    const done = JSON.parse(await control(config, { op: 'mailboxes-deleted', addresses: batch }, log)) as {
      ok: boolean
      reason?: string
    }
    if (!done.ok) {
      log('error', `the service did not take the deleted mailboxes off its list (the next run retries): ${done.reason}`)
      failed = true
    }
  }
  const now = Math.floor(Date.now() / 1000)
  const x = config.expiry
  const domain = config.rules.domain
  let orphans = 0
  if (!answer.ok) log('warn', 'orphan mailboxes: not swept while the accounts could not be expired')
  else if (x.usersFile === undefined) log('info', 'orphan mailboxes: not swept (users_file is not set)')
  else {
    const domainDir = `${config.mailRoot}/${domain}`
    const sweep = sweepOrphans({
      dataDir: config.dataDir,
      domainDir,
      usersFile: x.usersFile,
      exempt: x.exempt,
      now,
      minAgeSeconds: ORPHAN_MIN_AGE,
    })
    if (!sweep.ok) {
      log('error', `orphan mailboxes: none removed: ${sweep.reason}`)
      failed = true
    } else {
      for (const e of sweep.errors) log('error', e)
      if (sweep.errors.length > 0) failed = true
      orphans = sweep.removed
      if (orphans > 0) log('info', `removed ${orphans} orphan mailbox(es): directories in ${domainDir} of no account`)
    }
  }
  const exempt = new Set(
    x.exempt.filter((a) => a.endsWith(`@${addressDomain(domain)}`)).map((a) => a.slice(0, a.lastIndexOf('@'))),
  )
  const messages = expireMessages(
    `${config.mailRoot}/${domain}`,
    { mailsBefore: now - x.deleteMailsAfter, largeBefore: now - x.deleteLargeAfter, largeSize: x.largeMessageSize },
    exempt,
  )
  for (const e of messages.errors) log('error', e)
  if (messages.errors.length > 0) failed = true
  let count = 0
  for (const [local, n] of messages.deleted) {
    count += n
    const why = doveadm(['force-resync', '-u', `${local}@${addressDomain(domain)}`, '*'])
    if (why) log('warn', `resync of ${local}@${addressDomain(domain)} failed: ${why}`)
  }
  log(
    failed ? 'error' : 'info',
    `expiry: ${answer.expired?.length ?? 0} inactive account(s) deleted, ${count} old message(s) in ${messages.deleted.size} mailbox(es), ${orphans} orphan mailbox(es) removed`,
  )
  process.exit(failed ? 1 : 0)
}
