import { hostname, userInfo } from 'node:os'
import type { ClientChannel } from 'ssh2'
import { ChatmailError, cannotRun, ExitCode } from '../lib/errors.js'
import { APPLY_LOCK, AUDIT_LOG, LOCK_FILE, OWNER_FILE } from '../server/paths.js'
import { collect, type SshSession } from '../ssh/index.js'

/**
 * The host lock: one long-lived channel runs a shell that holds `flock` on LOCK_FILE for as long
 * as the channel's stdin is open, so a crashed or disconnected deploy can never leave a stale
 * lock. The same shell runs the facts script right after taking the lock (one round trip for
 * both) and, on release, appends whatever it is sent to the audit log.
 */
export class HostLock {
  private constructor(
    private readonly session: SshSession,
    private readonly channel: ClientChannel,
    readonly output: string,
  ) {}

  static owner(): string {
    let user = 'unknown'
    try {
      user = userInfo().username
    } catch {
      // no passwd entry for this uid (containers): keep 'unknown'
    }
    return `${user}@${hostname()} pid ${process.pid} since ${new Date().toISOString()}`
  }

  /**
   * Takes the lock and runs `script` under it; its stdout (up to a line `end`) is `output`.
   * `readOnly` (a dry run) changes nothing on the host: a shared lock on the lock file only if it
   * exists (a host where no deploy ran since boot has nothing to wait for), no owner file, and
   * `release` writes no audit line.
   */
  static async acquire(
    session: SshSession,
    script: string,
    owner = HostLock.owner(),
    timeoutMs = 900_000,
    readOnly = false,
  ): Promise<HostLock> {
    const busy = `printf 'busy\\t%s\\n' "$(cat ${OWNER_FILE} 2>/dev/null)"; exit 75`
    const waitApply = `flock ${readOnly ? '-s ' : ''}-w ${Math.floor(timeoutMs / 1000) - 5} ${APPLY_LOCK} true 2>/dev/null || true`
    const holder = (
      readOnly
        ? [
            `if [ -e ${LOCK_FILE} ]; then exec 9<${LOCK_FILE}; if ! flock -s -n 9; then ${busy}; fi; fi`,
            `[ ! -e ${APPLY_LOCK} ] || ${waitApply}`,
            script,
            'cat >/dev/null',
          ]
        : [
            'mkdir -p /run/lock',
            `exec 9>>${LOCK_FILE}`,
            `if ! flock -n 9; then ${busy}; fi`,
            `printf '%s\\n' '${owner.replace(/'/g, '')}' >${OWNER_FILE}`,
            waitApply,
            script,
            `while IFS= read -r l; do printf '%s\\n' "$l" >>${AUDIT_LOG}; done`,
            `rm -f ${OWNER_FILE}`,
          ]
    ).join('\n')
    session.roundTrips++
    const channel = await session.open(holder)
    const output = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = []
      const errChunks: Buffer[] = []
      const text = () => Buffer.concat(chunks).toString('utf8')
      const timer = setTimeout(() => {
        channel.removeAllListeners('close')
        channel.close()
        reject(cannotRun(`gathering facts on ${session.target.host} took longer than ${timeoutMs / 1000} s`))
      }, timeoutMs)
      const onData = (d: Buffer) => {
        chunks.push(d)
        const t = text()
        if (/(^|\n)end\n/.test(t)) {
          clearTimeout(timer)
          channel.off('data', onData)
          resolve(t)
        }
      }
      channel.on('data', onData)
      channel.stderr.on('data', (d: Buffer) => errChunks.push(d))
      channel.on('close', () => {
        clearTimeout(timer)
        const t = text()
        const busy = /^busy\t(.*)$/m.exec(t)
        if (busy) {
          reject(
            new ChatmailError(
              `another deploy is running on ${session.target.host} (${busy[1] || 'owner unknown'})`,
              ExitCode.failed,
              `wait for it to finish; the lock (${LOCK_FILE}) is released when that deploy's SSH connection ends`,
            ),
          )
        } else {
          const err = Buffer.concat(errChunks).toString('utf8').trim()
          reject(
            cannotRun(
              `gathering facts on ${session.target.host} failed: ${err.split('\n').slice(-3).join('; ') || 'no output'}`,
            ),
          )
        }
      })
    })
    return new HostLock(session, channel, output)
  }

  /** Appends the audit lines, releases the lock and waits for the holder to exit. */
  async release(auditLines: string[] = []): Promise<void> {
    this.session.roundTrips++
    this.channel.removeAllListeners('close')
    const done = collect(this.channel, auditLines.map((l) => `${l.replace(/\n/g, ' ')}\n`).join(''))
    await done
  }
}
