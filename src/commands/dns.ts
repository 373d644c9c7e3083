import { readFile, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import * as Flags from '@oclif/core/flags'
import { checkDomain as checkDomainName } from '../config/domain.js'
import { loadConfigIfPresent } from '../config/load.js'
import { BaseCommand, commonFlags, configFlag, domainArg } from '../lib/base-command.js'
import { cannotRun, describeFsError, ExitCode, usageError } from '../lib/errors.js'
import { note } from '../lib/output.js'
import { prose } from '../lib/prose.js'

export default class Dns extends BaseCommand {
  static override summary = 'Print the DNS zone a chatmail server needs, or check it at its nameservers.'
  static override description =
    prose`Prints every record the server needs, as BIND zone lines: A/AAAA, MX, SPF, DKIM (the
public key, read from the host over SSH), DMARC, MTA-STS (_mta-sts TXT and the mta-sts name),
TLS-RPT, SRV for IMAP and submission (RFC 6186) and CAA for the ACME CA in use.

With --check it asks the domain's authoritative nameservers (its NS records, asked directly,
without recursion; not the system resolver's cache) and lists EVERY missing or wrong record at
once, with the exact line to set. CNAMEs are followed (a DKIM key at a provider, mta-sts as a
CNAME or as addresses are fine). --nameserver asks one server you name instead: a hidden
primary, a split-horizon server, a test server.

With chatmail.toml for DOMAIN, the DKIM key and the server's addresses come from the host over
SSH (the deploy's target and SSH options); --offline does not connect (give --address and
--dkim-key then). Records marked recommended (SRV, CAA, TLS-RPT) only warn.
When the DKIM record is right and its key came from the host, --check also runs opendkim-testkey
there: the host's opendkim must find the record through its own resolver, or it refuses all
arriving mail (exit 1).

Exit codes: 0 every required record is right (recommended ones may be missing; --strict: not
even those), 1 a record is missing or wrong, 2 usage error, 3 could not run (no nameserver
answered, SSH failed, unreadable file).`
  static override examples = [
    { description: 'The zone for the server of ./chatmail.toml:', command: '<%= config.bin %> dns' },
    { description: 'Write it to a file for the DNS provider:', command: '<%= config.bin %> dns --zonefile chat.zone' },
    { description: 'Check every record at the authoritative servers:', command: '<%= config.bin %> dns --check' },
    {
      description: 'Ask a hidden primary (or a test server) instead:',
      command: '<%= config.bin %> dns --check --nameserver 192.0.2.53',
    },
    {
      description: 'Another server, without SSH:',
      command: '<%= config.bin %> dns chat.example.org --check --address 203.0.113.5 --json',
    },
  ]
  static override enableJsonFlag = true
  static override args = {
    domain: domainArg,
  }
  static override flags = {
    ...commonFlags,
    config: configFlag,
    check: Flags.boolean({
      description: 'Check the records at the authoritative nameservers instead of printing the zone.',
      default: false,
    }),
    zonefile: Flags.string({ description: 'Write the zone to FILE (- for stdout).', helpValue: 'FILE' }),
    nameserver: Flags.string({
      description:
        "Ask this server instead of the domain's NS (recursion allowed: split horizon, hidden primaries, tests).",
      helpValue: 'HOST[:PORT]',
    }),
    address: Flags.string({
      description: "The server's address for A/AAAA (repeatable; default: the host's, over SSH).",
      helpValue: 'IP',
      multiple: true,
    }),
    'dkim-key': Flags.string({
      description:
        'The DKIM key (PEM public or private key, or base64 DER; only the public half is used) instead of the host.',
      helpValue: 'FILE',
    }),
    offline: Flags.boolean({ description: 'Do not connect to the host over SSH.', default: false }),
    strict: Flags.boolean({
      description: 'With --check: missing recommended records fail too (exit 1).',
      default: false,
    }),
    timeout: Flags.integer({ description: 'Timeout of each DNS question, in seconds.', default: 3, min: 1, max: 60 }),
    ssh: Flags.string({
      description: 'SSH destination (default: deploy.destination, else root@DOMAIN).',
      helpValue: '[USER@]HOST[:PORT]',
    }),
    identity: Flags.string({ char: 'i', description: 'SSH private key file.', helpValue: 'FILE' }),
    'known-hosts': Flags.string({ description: 'known_hosts file to check the host key against.', helpValue: 'FILE' }),
    'ssh-config': Flags.string({ char: 'F', description: 'ssh_config file to read.', helpValue: 'FILE' }),
  }

  public async run(): Promise<unknown> {
    const { args, flags } = await this.parse(Dns)
    const dns = await import('../dns/index.js')
    const nameserver = dns.nameServerFlag(flags.nameserver)
    const addresses = flags.address ?? []
    for (const a of addresses) if (!isIP(a)) throw usageError(`--address ${a} is not an IP address`)
    const loaded = await loadConfigIfPresent(flags.config)
    const raw = args.domain ?? loaded?.config.domain
    if (!raw) throw cannotRun('no domain: give DOMAIN or run in the directory of chatmail.toml (chatmail init)')
    const d = checkDomainName(raw)
    if (!d.ok) throw usageError(d.reason)
    if (d.kind === 'ipv4') throw usageError(`${d.domain} is an IP-only server: it has no DNS records to publish`)
    const domain = d.domain
    const config = loaded?.config.domain === domain ? loaded : undefined

    let dkim: ReturnType<typeof dns.dkimKeyFromText> | undefined
    if (flags['dkim-key']) {
      const file = flags['dkim-key']
      const text = await readFile(file, 'utf8').catch((err: unknown) => {
        throw describeFsError(err, file, 'DKIM key file')
      })
      dkim = dns.dkimKeyFromText(text, file)
    }
    let hostAddresses: string[] = []
    let dkimFromHost = false
    if (config && !flags.offline && (!dkim || addresses.length === 0)) {
      const facts = dns.parseHostDnsFacts(
        await this.onHost(config, flags, dns.HOST_DNS_FACTS, 'the DKIM key and addresses'),
      )
      dkimFromHost = !dkim && facts.dkim !== undefined
      dkim ??= facts.dkim
      const external = config.config.turn.externalIp?.split('/')[0]
      hostAddresses = external ? [external] : dns.publicAddresses(facts.addresses)
      if (!facts.dkim && !this.jsonEnabled()) note('chatmail: the host has no DKIM key yet (deploy first)')
    }
    const entries = dns.buildZone(
      dns.zoneInputFor(domain, config?.config, {
        addresses: addresses.length ? addresses : hostAddresses,
        ...(dkim ? { dkim } : {}),
      }),
    )
    const zoneText = dns.renderZone(entries, { header: [`the zone chatmail needs for ${domain}`] })
    if (flags.zonefile && flags.zonefile !== '-') {
      await writeFile(flags.zonefile, zoneText, { mode: 0o644 }).catch((err: unknown) => {
        throw cannotRun(`cannot write ${flags.zonefile}: ${(err as Error).message}`)
      })
      if (!this.jsonEnabled()) note(`chatmail: wrote the zone for ${domain} to ${flags.zonefile}`)
    }
    if (!flags.check) {
      if (this.jsonEnabled()) return { domain, zone: zoneText, records: entries }
      if (!flags.zonefile || flags.zonefile === '-') process.stdout.write(zoneText)
      return undefined
    }

    if (!this.jsonEnabled()) {
      const { describeServer } = await import('../dns/query.js')
      note(`chatmail: asking ${nameserver ? describeServer(nameserver) : `the authoritative nameservers of ${domain}`}`)
    }
    const result = await dns.checkDomain(entries, domain, {
      ...(nameserver ? { nameserver } : {}),
      timeoutMs: flags.timeout * 1000,
    })
    // The host's own lookup of the record the authoritative servers serve right: opendkim's resolver path.
    if (config && dkimFromHost && result.records.some((r) => r.id === 'dkim' && r.status === 'ok')) {
      result.opendkim = dns.parseOpendkimProbe(
        await this.onHost(config, flags, dns.opendkimProbeCommand(domain), "opendkim's lookup of the DKIM record"),
        domain,
      )
      if (result.opendkim.status === 'fail' && result.status !== 'error') result.status = 'fail'
    }
    process.exitCode =
      result.status === 'error'
        ? ExitCode.cannotRun
        : result.status === 'fail' || (flags.strict && result.status === 'warn')
          ? ExitCode.failed
          : ExitCode.ok
    if (this.jsonEnabled()) return result
    const { renderCheck } = await import('../dns/report.js')
    process.stdout.write(renderCheck(result))
    return undefined
  }

  /** Runs one command on the host (as root, over the deploy's SSH target); resolves with its output. */
  private async onHost(
    loaded: NonNullable<Awaited<ReturnType<typeof loadConfigIfPresent>>>,
    flags: { ssh?: string; identity?: string; 'known-hosts'?: string; 'ssh-config'?: string },
    command: string,
    what: string,
  ): Promise<string> {
    const { resolveDeployTarget } = await import('../app/deploy-host.js')
    const { describeTarget, SshSession, terminalPassphrase } = await import('../ssh/index.js')
    const target = await resolveDeployTarget(loaded, {
      ...(flags.ssh ? { destination: flags.ssh } : {}),
      ...(flags.identity ? { identity: flags.identity } : {}),
      ...(flags['known-hosts'] ? { knownHosts: flags['known-hosts'] } : {}),
      ...(flags['ssh-config'] ? { sshConfig: flags['ssh-config'] } : {}),
      acceptNewHostKey: false,
    })
    if (!this.jsonEnabled()) note(`chatmail: reading ${what} from ${describeTarget(target)}`)
    const ask = terminalPassphrase()
    let session: Awaited<ReturnType<typeof SshSession.connectTo>>
    try {
      session = await SshSession.connectTo(target, ask ? { askPassphrase: ask } : {})
    } catch (err) {
      const e = err as Error & { hint?: string }
      throw cannotRun(e.message, e.hint ?? '--offline (with --address and --dkim-key) prints the zone without the host')
    }
    try {
      return (await session.exec(command)).stdout
    } finally {
      session.close()
    }
  }
}
