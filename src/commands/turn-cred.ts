import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import { BaseCommand, commonFlags, configFlag } from '../lib/base-command.js'
import { ExitCode, usageError } from '../lib/errors.js'
import { note } from '../lib/output.js'
import { prose } from '../lib/prose.js'
import { FORMATS, type Format, mintForCli, verifyForCli } from '../turn/cli.js'

export default class TurnCred extends BaseCommand {
  static override summary = "Print TURN REST credentials minted with the server's secret, or verify one."
  static override description = prose`Mints TURN credentials the way chatmail servers hand them to Delta Chat:
username = expiry as Unix seconds, password = base64(HMAC-SHA1(secret, username)).
The secret comes from the config file, --secret-file or --secret-env; never from the command line.

Formats:
  line     host:port:username:password, the metadata value Delta Chat parses
  json     {"host","port","tlsPort","username","password","expires","ttl"}
  ice      an RTCIceServer object (turn: and turns: URLs) for a WebRTC test page
  uclient  a ready turnutils_uclient command line

--user NAME makes the username "expiry:NAME". coturn accepts that form; chatmail-turn and
Delta Chat core do not (they need the pure timestamp), so the line format refuses it.

--verify USERNAME PASSWORD (or one metadata line) checks a credential: exit 0 when valid,
1 with the reason (bad signature, expired, malformed).

Exit codes: 0 ok, 1 credential invalid (--verify), 2 usage error, 3 no secret or unreadable config.`
  static override examples = [
    { description: 'Credentials for a day, as Delta Chat gets them:', command: '<%= config.bin %> turn-cred' },
    {
      description: 'One hour, as an RTCIceServer object:',
      command: '<%= config.bin %> turn-cred --ttl 1h --format ice',
    },
    {
      description: "Test the server with coturn's client:",
      command: 'eval "$(<%= config.bin %> turn-cred --ttl 10m --format uclient)"',
    },
    {
      description: 'Secret from a file, for a TURN server on another host:',
      command: '<%= config.bin %> turn-cred --secret-file /etc/coturn/secret --host turn.example.org',
    },
    {
      description: 'Check credentials a server handed out:',
      command: '<%= config.bin %> turn-cred --verify "chat.example.org:3478:1767225600:6fZ1mRk0Bv4oJm1b2h1hfyNfQ9Q="',
    },
  ]
  static override args = {
    username: Args.string({
      description: 'With --verify: the username, or a whole metadata line host:port:username:password.',
    }),
    password: Args.string({ description: 'With --verify: the password.' }),
  }
  static override flags = {
    ...commonFlags,
    config: configFlag,
    ttl: Flags.string({
      char: 't',
      description: 'How long the credential is valid: 3600, 90s, 30m, 12h, 5d (at most 5d without --allow-long-ttl).',
      default: '24h',
      helpValue: 'DURATION',
    }),
    'allow-long-ttl': Flags.boolean({
      description: 'Accept a --ttl over 5d (up to 365d): a leaked credential stays valid that long.',
      default: false,
    }),
    user: Flags.string({ char: 'u', description: 'Append :NAME to the username (coturn only).', helpValue: 'NAME' }),
    host: Flags.string({ description: 'TURN host for the output (default: turn.host or the domain from the config).' }),
    port: Flags.integer({ description: 'TURN port for the output (default: turn.port, 3478).', min: 1, max: 65535 }),
    'tls-port': Flags.integer({
      description: 'TURN-over-TLS port for ice/json (default: turn.tls_port, 5349).',
      min: 1,
      max: 65535,
    }),
    format: Flags.string({ char: 'f', description: 'Output format.', options: [...FORMATS], default: 'line' }),
    'secret-file': Flags.string({
      description: 'Read the secret from this file (first line).',
      helpValue: 'FILE',
      exclusive: ['secret-env'],
    }),
    'secret-env': Flags.string({ description: 'Read the secret from this environment variable.', helpValue: 'VAR' }),
    verify: Flags.boolean({ description: 'Verify USERNAME PASSWORD instead of minting.', default: false }),
  }

  // The shared --json (BaseCommand): the output in --format json, and errors as the JSON error shape.
  static override enableJsonFlag = true

  public async run(): Promise<Record<string, unknown> | undefined> {
    const { args, flags } = await this.parse(TurnCred)
    const json = this.jsonEnabled()
    const source = { secretFile: flags['secret-file'], secretEnv: flags['secret-env'], configPath: flags.config }
    if (flags.verify) {
      if (!args.username) throw usageError('--verify needs USERNAME PASSWORD, or one line host:port:username:password')
      const res = await verifyForCli(source, args.username, args.password, Date.now())
      for (const w of res.warnings) note(`warning: ${w}`)
      process.exitCode = res.ok ? ExitCode.ok : ExitCode.failed
      if (json) return res.json
      if (flags.format === 'json') this.log(JSON.stringify(res.json))
      else if (res.ok) this.log(res.message)
      else process.stderr.write(`chatmail: ${res.message}\n`)
      return undefined
    }
    if (args.username)
      throw usageError(`unexpected argument ${args.username}`, 'USERNAME PASSWORD are only for --verify')
    const format: Format = json ? 'json' : (flags.format as Format)
    const out = await mintForCli(source, {
      ttl: flags.ttl,
      user: flags.user,
      host: flags.host,
      port: flags.port,
      tlsPort: flags['tls-port'],
      format,
      nowMs: Date.now(),
      allowLongTtl: flags['allow-long-ttl'],
    })
    for (const w of out.warnings) note(`warning: ${w}`)
    if (json) return JSON.parse(out.text) as Record<string, unknown>
    this.log(out.text)
    if (process.stderr.isTTY && format === 'line') note(out.summary)
    return undefined
  }
}
