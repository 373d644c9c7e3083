/**
 * What `chatmail fleet doctor` and `fleet deploy` do to one server of the inventory, as fleet
 * tasks (run.ts). A `fleet status` plugs in the same way: a task that returns one row.
 */
import { saveDoctorAccount } from '../../config/doctor-account.js'
import { runDoctor } from '../../doctor/index.js'
import type { DoctorReport } from '../../doctor/model.js'
import { resolveDoctorOptions } from '../../doctor/options.js'
import { toJsonReport } from '../../doctor/report/json.js'
import { type DeployTargetOptions, deployHost } from '../deploy-host.js'
import { deploySummary } from '../deploy-render.js'
import type { FleetOutcome, FleetStatus, FleetTask } from './run.js'

export interface FleetDoctorOptions {
  only?: string[] | undefined
  skip?: string[] | undefined
  timeout?: string | undefined
  ca?: string | undefined
  insecure: boolean
  strict: boolean
}

/** "28 ok, 1 warn, 2 fail: relay.ping, turn.relay" */
function verdict(report: DoctorReport): string {
  const ids = (s: string) => report.checks.filter((c) => c.status === s).map((c) => c.id)
  const failed = ids('fail')
  const shown = failed.length > 4 ? `${failed.slice(0, 4).join(', ')}, …` : failed.join(', ')
  const counts = `${ids('ok').length} ok, ${ids('warn').length} warn, ${failed.length} fail`
  return failed.length ? `${counts}: ${shown}` : counts
}

const statusOf = (report: DoctorReport, strict: boolean): FleetStatus =>
  strict && report.status === 'warn' ? 'fail' : report.status

export function doctorTask(o: FleetDoctorOptions): FleetTask {
  return async (entry): Promise<FleetOutcome> => {
    const { options } = await resolveDoctorOptions({
      domain: entry.loaded.config.domain,
      config: entry.path,
      insecure: o.insecure,
      ca: o.ca,
      timeout: o.timeout,
    })
    const report = await runDoctor(options, { only: o.only, skip: o.skip })
    return { status: statusOf(report, o.strict), summary: verdict(report), data: toJsonReport(report) }
  }
}

export interface FleetDeployOptions extends Omit<DeployTargetOptions, 'destination'> {
  dryRun: boolean
  skipDnsCheck: boolean
  doctor: boolean
}

export function deployTask(o: FleetDeployOptions): FleetTask {
  return async (entry): Promise<FleetOutcome> => {
    const out = await deployHost({ ...o, loaded: entry.loaded, confirm: () => true })
    if (out.newDoctorPassword) await saveDoctorAccount(entry.path, out.doctorUser, out.newDoctorPassword)
    const s = deploySummary(out, o.dryRun)
    const what = o.dryRun
      ? `${s.changed} to change, ${s.unchanged} unchanged (dry run)`
      : `${s.changed} changed${s.restarted.length ? `, restarted ${s.restarted.join(' ')}` : ''}`
    const doctor = out.doctor ? `; doctor: ${verdict(out.doctor)}` : ''
    return { status: out.doctor ? statusOf(out.doctor, false) : 'ok', summary: `${what}${doctor}`, data: s }
  }
}
