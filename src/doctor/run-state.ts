/**
 * What one doctor run holds open for its checks: the IMAP session and the early TURN
 * connections. It travels in the check context (ctx.state) and is closed when the run ends.
 */

import type { DoctorOptions } from './doctor-options.js'
import { ImapSessionSlot } from './imap-session.js'
import { TurnPrefetch } from './turn-prefetch.js'

const ALLOCATION_CHECKS = ['turn.allocate.udp', 'turn.allocate.tcp', 'turn.allocate.tls']

export class RunState {
  readonly imap = new ImapSessionSlot()
  readonly turnPrefetch = new TurnPrefetch()
  /** The dns group's one lookup of the whole zone, shared by its checks (checks/dns.ts). */
  dnsZone: Promise<unknown> | undefined

  /** The state of a run about to start: TURN connections begin now when an allocation will run. */
  static start(options: DoctorOptions, plan: ReadonlyMap<string, 'run' | 'skipped'>): RunState {
    const state = new RunState()
    if (ALLOCATION_CHECKS.some((id) => plan.get(id) === 'run')) state.turnPrefetch.start(options)
    return state
  }

  async close(): Promise<void> {
    await Promise.all([this.imap.close(), this.turnPrefetch.close()])
  }
}
