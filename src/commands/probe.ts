import * as Flags from '@oclif/core/flags'
import { BaseCommand, commonFlags } from '../lib/base-command.js'
import { usageError } from '../lib/errors.js'
import { note } from '../lib/output.js'
import { prose } from '../lib/prose.js'

export default class Probe extends BaseCommand {
  static override summary = 'Run the doctor as a Prometheus exporter for the servers of a targets file.'
  static override description = prose`A long-lived HTTP server. GET /probe?target=NAME runs chatmail doctor against
NAME and answers in the OpenMetrics text format: chatmail_doctor_check{domain,id,group,status} (1
for the status each check has, 0 for the others), chatmail_doctor_check_duration_seconds,
chatmail_doctor_checks{domain,status} (how many checks ended so), chatmail_doctor_status,
chatmail_doctor_run_duration_seconds and chatmail_doctor_last_run_timestamp_seconds. GET /metrics
is the prober's own (runs, reused results, requests, memory).

Only the targets in the targets file are probed; any other name is refused (403), so the prober is
no open proxy for probing arbitrary hosts. The file is TOML, one [[target]] per server, its keys
the doctor's flags: name (the domain, what ?target= names), config (that server's chatmail.toml:
its doctor account and TURN secret), user, password_file, turn_secret_file, ca, insecure,
imap_host, imap_port, relay_url, turn, nameserver, timeout (seconds per check), only, skip
(lists of check ids or groups), tls_ports (a table, e.g. { https = 8443 }). Relative paths are
relative to the file. The file is read at start; restart the prober to read it again.

It never runs two probes of one target at once (a second scrape shares the running one), runs at
most --max-concurrent doctor runs in all, and answers again with a result younger than
--min-interval instead of checking the server again. What it reads from a server is capped as in
chatmail doctor. It never creates accounts (mail.signup only asks) and never logs in over SSH.

It listens on loopback by default; --listen another address only behind a firewall that lets
your Prometheus alone in. SIGTERM or SIGINT stops it.

Exit codes:
  0  stopped by SIGTERM or SIGINT
  2  usage error (unknown flag, bad value)
  3  could not run (targets file unreadable or wrong, address in use)`
  static override examples = [
    {
      description: 'Probe the servers of /etc/chatmail/probe.toml, for a Prometheus on this machine:',
      command: '<%= config.bin %> probe --targets /etc/chatmail/probe.toml',
    },
    {
      description: 'What Prometheus asks (see docs/guides/monitoring.md for the scrape config):',
      command: 'curl "http://127.0.0.1:9851/probe?target=chat.example.org"',
    },
  ]
  static override flags = {
    ...commonFlags,
    targets: Flags.string({ description: 'The targets file (TOML).', required: true, helpValue: 'FILE' }),
    listen: Flags.string({ description: 'Where to listen (default: 127.0.0.1:9851).', helpValue: 'IP:PORT' }),
    'max-concurrent': Flags.integer({
      description: 'Doctor runs at once, over all targets.',
      default: 2,
      min: 1,
      max: 64,
    }),
    'min-interval': Flags.string({
      description: 'A result younger than this many seconds is answered again without a new run.',
      default: '60',
      helpValue: 'SECONDS',
    }),
  }

  public async run(): Promise<void> {
    const { flags } = await this.parse(Probe)
    const minInterval = Number(flags['min-interval'])
    if (!/^\d+(\.\d+)?$/.test(flags['min-interval']) || minInterval > 86400) {
      throw usageError(`--min-interval ${flags['min-interval']} is not a number of seconds from 0 to 86400`)
    }
    // Listening for the signals before the port opens: a stop asked any time after start is heard.
    const stopped = new Promise<void>((stop) => {
      process.once('SIGTERM', stop)
      process.once('SIGINT', stop)
    })
    const { DEFAULT_LISTEN, startProber } = await import('../app/probe/index.js')
    const listen = flags.listen ?? DEFAULT_LISTEN
    const prober = await startProber(flags.targets, listen, {
      maxConcurrent: flags['max-concurrent'],
      minIntervalMs: minInterval * 1000,
    })
    const { address, port } = prober.address
    const shown = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
    note(`chatmail probe: listening on http://${shown}/ for ${prober.targets.length} target(s)`)
    await stopped
    await prober.close()
  }
}
