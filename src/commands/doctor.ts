import { writeFile } from 'node:fs/promises'
import * as Flags from '@oclif/core/flags'
import type { CheckDef, DoctorReport } from '../doctor/model.js'
import { type DoctorFlags, resolveDoctorOptions } from '../doctor/options.js'
import { type JsonReport, toJsonReport } from '../doctor/report/json.js'
import { toJUnit } from '../doctor/report/junit.js'
import { plainProgress, renderText } from '../doctor/report/plain.js'
import { parseTlsPorts } from '../doctor/tls-ports.js'
import { BaseCommand, commonFlags, configFlag, domainArg } from '../lib/base-command.js'
import { checkSelectionFlags } from '../lib/check-flags.js'
import { describeWriteError, ExitCode, usageError } from '../lib/errors.js'
import { colourOn, note } from '../lib/output.js'
import { prose } from '../lib/prose.js'

export default class Doctor extends BaseCommand {
  static override summary = 'Check from the outside that a chatmail server gives Delta Chat what it needs.'
  static override description =
    prose`Logs in over IMAP, reads the METADATA Delta Chat reads (iroh relay, TURN), checks the
certificate and the TURN credentials, allocates on the TURN server (two allocations relay to each
other, as calls between two users who both need the relay do), talks to the iroh relay, and
proves mail flow: SMTP submission and an OpenPGP-encrypted message to self that must arrive.
Checks run concurrently, each with its own timeout, and print in a fixed order; every failure
says what to change. A root cause (a name that does not resolve, a closed port, a certificate not
accepted) is said once, by the first check that meets it; the checks that depend on it are skipped
with "needs CHECK, which failed", and the summary names what to fix first.

Values come from chatmail.toml when it is about DOMAIN; flags override. Without a TURN secret
(--turn-secret-file or the config) turn.credential.hmac is skipped, not failed.

Check ids are stable (for --only/--skip, JSON and JUnit): imap.tls imap.login
imap.metadata.capability imap.xchatmail metadata.irohrelay metadata.turn metadata.turns turn.credential.hmac
turn.credential.expiry turn.allocate.udp turn.allocate.tcp turn.allocate.tls
turn.rejects-bad-credentials turn.rejects-expired-credentials turn.relay relay.ping
relay.generate204 relay.upgrade relay.handshake relay.forward tls.imap tls.submission tls.submission-starttls
tls.https tls.turns dns.address dns.mx dns.spf dns.dkim dns.dmarc dns.mta-sts dns.tls-rpt
dns.srv dns.caa dns.certificate mail.autoconfig mail.signup mail.submission mail.roundtrip
mail.rejects-unencrypted.
Groups: imap discovery credentials turn relay tls dns mail. A selector may also be an id prefix
(metadata selects metadata.*).

The dns group (for a domain name, not an IP-only server; for special-use names such as .test only
with --nameserver) asks the domain's authoritative nameservers, as chatmail dns --check does:
the IMAP host's A/AAAA, MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV and CAA, and whether the
HTTPS certificate covers every name the zone publishes (the domain, mta-sts.DOMAIN). Without a
chatmail.toml for DOMAIN only a missing address or MX fails; other records warn.

With --ssh [USER@]HOST[:PORT] (the same keys and known_hosts rules as deploy host, one
connection, nothing written) the host group runs too: host.units (every unit of the stack
active, none failed), host.ports (each port held by its unit), host.disk (/, /home/vmail,
/var/log: warn at 85% used, fail at 95% or under 200 MiB free), host.memory (warn under 10%
available, fail under 3%), host.clock (skew against this machine: warn at 5 s, fail at 60 s),
host.restart-needed (warn: a process runs a replaced binary or library), host.version (the last
deploy and the iroh-relay binary).

The tls group checks the certificate on IMAP 993, submission 465 and 587 (STARTTLS), HTTPS 443
and TURN over TLS 5349 (--tls-port NAME=PORT when elsewhere): valid for the name, a trusted
chain, and a warning under 14 days left.

The mail group: the autoconfig XML, the sign-up endpoint /new (only asked; --signup creates an
account and logs in with it), SMTP submission with login, an OpenPGP-encrypted message to self
that must arrive in INBOX (its time in the detail), and a plaintext one that must be refused.

--prometheus FILE writes gauges chatmail_doctor_check{domain,id,group,status} (1 for the
status a check has, 0 for the others), chatmail_doctor_check_duration_seconds{domain,id,group},
chatmail_doctor_checks{domain,status} (how many checks ended so), chatmail_doctor_status{domain,status}, chatmail_doctor_run_duration_seconds and
chatmail_doctor_last_run_timestamp_seconds; the file is replaced atomically (mode 0644).

Output: a live tree on a terminal, else one line per check, in check order, on stderr; the report
on stdout. --json prints only the report: {"status", "checks": [{"id", "group", "title", "status",
"detail", "hint", "durationMs"}]}.

Verdicts: fail when something a Delta Chat client uses is broken, or something this server offers
(or, with chatmail.toml for DOMAIN, something chatmail deployed) is broken; warn when something
useful is missing; skip, with the reason, when the server does not offer it and Delta Chat does
not need it (e.g. TURN over TCP/TLS on a UDP-only server).

Exit codes:
  0  nothing failed (warnings allowed, unless --strict)
  1  at least one check failed (with --strict: or warned)
  2  usage error (unknown flag, bad value, unknown check id)
  3  could not run at all (no domain, unreadable config or file)`
  static override examples = [
    { description: 'Check the server of ./chatmail.toml:', command: '<%= config.bin %> doctor' },
    {
      description: 'Check another server with a test account:',
      command: 'CHATMAIL_USER=me@chat.example.org CHATMAIL_PASSWORD=… <%= config.bin %> doctor chat.example.org',
    },
    {
      description: 'In CI, after a deploy (warnings fail the job too):',
      command: '<%= config.bin %> doctor --strict --json --junit doctor.xml > doctor.json',
    },
    {
      description: 'From cron, for node_exporter (--collector.textfile.directory):',
      command: '<%= config.bin %> doctor --prometheus /var/lib/prometheus/node-exporter/chatmail.prom > /dev/null',
    },
    {
      description: 'Only the TURN checks, against a given TURN server with locally minted credentials:',
      command: '<%= config.bin %> doctor --only turn --turn turn.example.org:3478 --turn-secret-file secret',
    },
    {
      description: 'A staging server with a private CA, everything but the relay:',
      command: '<%= config.bin %> doctor staging.example.org --ca ca.pem --skip relay --timeout 10',
    },
  ]
  static override enableJsonFlag = true
  static override args = {
    domain: domainArg,
  }
  static override flags = {
    ...commonFlags,
    config: configFlag,
    'imap-host': Flags.string({ description: 'IMAP host (default: DOMAIN).', helpValue: 'HOST' }),
    'imap-port': Flags.integer({
      description: 'IMAP port: 993 is implicit TLS, 143 means STARTTLS (default: imap.port, 993).',
      min: 1,
      max: 65535,
    }),
    user: Flags.string({
      char: 'u',
      description: 'Account to log in with.',
      env: 'CHATMAIL_USER',
      helpValue: 'ADDRESS',
    }),
    password: Flags.string({
      description:
        'Its password. On the command line it shows in ps and shell history: prefer CHATMAIL_PASSWORD or --password-file.',
      env: 'CHATMAIL_PASSWORD',
      helpValue: 'PASSWORD',
    }),
    'password-file': Flags.string({
      description: 'File holding the password (a final newline is ignored); wins over CHATMAIL_PASSWORD.',
      helpValue: 'FILE',
    }),
    'turn-secret-file': Flags.string({
      description:
        "File with the server's TURN secret (default: turn.secret of the config); enables turn.credential.hmac.",
      helpValue: 'FILE',
    }),
    ca: Flags.string({ description: 'Also trust the CA certificate(s) in this PEM file.', helpValue: 'FILE' }),
    insecure: Flags.boolean({ description: 'Accept any certificate (TLS problems become warnings).', default: false }),
    'relay-url': Flags.string({
      description: 'Check this iroh relay instead of the advertised one.',
      helpValue: 'URL',
    }),
    turn: Flags.string({
      description: 'Check this TURN server instead of the advertised one.',
      helpValue: 'HOST:PORT',
    }),
    ...checkSelectionFlags,
    junit: Flags.string({ description: 'Also write a JUnit XML report to FILE.', helpValue: 'FILE' }),
    prometheus: Flags.string({
      description:
        "Also write the report as OpenMetrics text to FILE (atomically), for node_exporter's textfile collector.",
      helpValue: 'FILE',
    }),
    'tls-port': Flags.string({
      description:
        'Where a TLS endpoint listens when not on its usual port (imap 993, submission 465, submission-starttls 587, https 443, turns 5349).',
      helpValue: 'NAME=PORT',
      multiple: true,
    }),
    ssh: Flags.string({
      description:
        'Also check the host from the inside over SSH (read-only, one connection): host.units host.ports host.disk host.memory host.clock host.restart-needed host.version.',
      helpValue: '[USER@]HOST[:PORT]',
    }),
    identity: Flags.string({
      char: 'i',
      description: 'With --ssh: SSH private key, tried first (then the agent, then ~/.ssh/id_*), as deploy host.',
      helpValue: 'FILE',
    }),
    'known-hosts': Flags.string({
      description: 'With --ssh: known_hosts file (default: UserKnownHostsFile, else ~/.ssh/known_hosts).',
      helpValue: 'FILE',
    }),
    'ssh-config': Flags.string({
      char: 'F',
      description: 'With --ssh: SSH config file (default: ~/.ssh/config; none: read no config).',
      helpValue: 'FILE',
    }),
    'accept-new-host-key': Flags.boolean({
      description: 'With --ssh: trust and record the key of a host not yet in known_hosts (never a changed key).',
      default: false,
    }),
    nameserver: Flags.string({
      description: "The dns group asks this DNS server instead of the domain's authoritative nameservers.",
      helpValue: 'HOST[:PORT]',
    }),
    signup: Flags.boolean({
      description: 'mail.signup creates a real account through POST /new and logs in with it (the server keeps it).',
      default: false,
    }),
    strict: Flags.boolean({
      description: 'Warnings fail the exit code too (exit 1), e.g. for CI gates. The report is unchanged.',
      default: false,
    }),
  }

  public async run(): Promise<JsonReport | undefined> {
    const { args, flags } = await this.parse(Doctor)
    const input: DoctorFlags = {
      domain: args.domain,
      config: flags.config,
      imapHost: flags['imap-host'],
      imapPort: flags['imap-port'],
      user: flags.user,
      password: flags.password,
      passwordFile: flags['password-file'],
      passwordOnCommandLine: this.argv.some((a) => a === '--password' || a.startsWith('--password=')),
      turnSecretFile: flags['turn-secret-file'],
      ca: flags.ca,
      insecure: flags.insecure,
      relayUrl: flags['relay-url'],
      turn: flags.turn,
      timeout: flags.timeout,
      nameserver: flags.nameserver,
    }
    const { options, warnings } = await resolveDoctorOptions(input)
    if (flags['tls-port']) options.tlsPorts = parseTlsPorts(flags['tls-port'])
    if (flags.signup) options.signup = true
    const json = this.jsonEnabled()
    // On stderr in every mode: the JSON on stdout stays the report alone.
    for (const w of warnings) note(`warning: ${w}`)
    const progress = json ? undefined : await this.progress()
    // imapflow and listr2 load only when the doctor runs (the CLI bundle keeps them external).
    const wantsHost = (flags.only ?? []).some((s) => /(^|,)\s*host(\.|,|$)/.test(s))
    if (wantsHost && !flags.ssh) throw usageError('the host checks need --ssh [USER@]HOST[:PORT]')
    const { HostProbe, runDoctor } = await import('../doctor/index.js')
    const ssh = flags.ssh ? await this.sshHost(flags) : undefined
    if (ssh) options.host = new HostProbe(flags.ssh as string, ssh.connect)
    let report: DoctorReport
    try {
      report = await runDoctor(options, {
        only: flags.only,
        skip: flags.skip,
        onPlan: (checks) => progress?.plan(checks),
        onResult: (r) => progress?.result(r),
      })
    } finally {
      ssh?.close()
    }
    await progress?.done()
    if (flags.junit) await writeJUnit(flags.junit, report)
    if (flags.prometheus) await writePrometheus(flags.prometheus, report, options.domain)
    process.exitCode = failsExit(report, flags.strict) ? ExitCode.failed : ExitCode.ok
    if (json) return toJsonReport(report)
    process.stdout.write(renderText(report, { colour: colourOn(process.stdout) }))
    return undefined
  }

  /** --ssh: where and how to connect (resolved as deploy host does); the connection opens when a host check asks. */
  private async sshHost(flags: {
    ssh?: string | undefined
    identity?: string | undefined
    'known-hosts'?: string | undefined
    'ssh-config'?: string | undefined
    'accept-new-host-key': boolean
  }) {
    const { resolveTarget, SshSession } = await import('../ssh/index.js')
    const target = await resolveTarget(flags.ssh as string, {
      ...(flags.identity ? { identity: flags.identity } : {}),
      ...(flags['known-hosts'] ? { knownHosts: flags['known-hosts'] } : {}),
      ...(flags['ssh-config'] ? { sshConfig: flags['ssh-config'] } : {}),
      acceptNewHostKey: flags['accept-new-host-key'],
    })
    let session: ReturnType<typeof SshSession.connectTo> | undefined
    return {
      connect: () => {
        session ??= SshSession.connectTo(target)
        return session
      },
      close: () => {
        session?.then((s) => s.close()).catch(() => undefined)
      },
    }
  }

  /** The tree on a terminal, plain lines otherwise; both on stderr. */
  private async progress() {
    const stderr = process.stderr
    if (stderr.isTTY) {
      const { ttyProgress } = await import('../doctor/report/tty.js')
      let tree: ReturnType<typeof ttyProgress> | undefined
      return {
        plan: (checks: CheckDef[]) => {
          tree = ttyProgress(checks, stderr)
        },
        result: (r: DoctorReport['checks'][number]) => tree?.onResult(r),
        done: async () => tree?.done(),
      }
    }
    const plain = plainProgress((line) => stderr.write(line), { colour: false })
    return { plan: () => undefined, result: plain.onResult, done: async () => undefined }
  }
}

/** Exit 1 on a failure, and with --strict on a warning too. */
export function failsExit(report: DoctorReport, strict: boolean): boolean {
  return report.status === 'fail' || (strict && report.status === 'warn')
}

async function writePrometheus(path: string, report: DoctorReport, domain: string): Promise<void> {
  const { toOpenMetrics, writeAtomically } = await import('../doctor/report/prometheus.js')
  try {
    await writeAtomically(path, toOpenMetrics(report, domain))
  } catch (err) {
    throw describeWriteError(err, path, 'Prometheus file')
  }
}

async function writeJUnit(path: string, report: DoctorReport): Promise<void> {
  try {
    await writeFile(path, toJUnit(report))
  } catch (err) {
    throw describeWriteError(err, path, 'JUnit file')
  }
}
