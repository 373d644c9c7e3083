import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildConfig } from '../../src/config/init.js'
import type { Config } from '../../src/config/schema.js'
import {
  type CommandResource,
  checkSpec,
  directory,
  type FileResource,
  type Resource,
} from '../../src/deploy/resources.js'
import { buildStack } from '../../src/deploy/service.js'
import { MANAGED_BY, obsoleteManagedFiles, ssha512 } from '../../src/deploy/services/common.js'
import { stackFor } from '../../src/deploy/stacks/index.js'
import { canonical, mailHome } from '../../src/protocols/address.js'
import { PATHS } from '../../src/server/paths.js'
import { BOOKWORM, buildTestStack, testStackContext } from '../helpers/stack.js'

const config = (domain: string, extra: Partial<Parameters<typeof buildConfig>[0]> = {}) =>
  buildConfig({ path: 'x', force: false, domain, profile: 'dovecot', ...extra })

const stack = (c = config('chat.example.org')) => buildTestStack(c)

const fileAt = (resources: Resource[], path: string) =>
  resources.find((r): r is FileResource => r.kind === 'file' && r.path === path)

describe('the dovecot stack', () => {
  it('renders every template with every value, and is a valid spec', async () => {
    for (const c of [
      config('chat.example.org'),
      config('203.0.113.5'),
      config('chat.example.org', { tlsMode: 'manual', cert: '/c.pem', key: '/k.pem' }),
    ]) {
      const spec = await stack(c)
      expect(checkSpec(spec)).toEqual([])
      for (const r of spec.resources) if (r.kind === 'file') expect(r.content).not.toMatch(/\{\{|\}\}/)
    }
  })
  it('keeps the TURN secret in secret files only', async () => {
    const c = config('chat.example.org')
    const spec = await stack(c)
    const holders = spec.resources.filter(
      (r) => r.kind === 'file' && r.content.includes(c.turn.secret),
    ) as FileResource[]
    expect(holders.map((f) => [f.path, f.secret, f.mode])).toEqual([
      [PATHS.turnSecret, true, '0400'],
      ['/etc/turnserver.conf', true, '0640'],
    ])
    const commands = spec.resources.filter((r) => r.kind === 'command')
    for (const cmd of commands) expect(JSON.stringify(cmd)).not.toContain(c.turn.secret)
  })
  it('configures coturn, dovecot METADATA and the relay as Delta Chat needs them', async () => {
    const c = config('chat.example.org')
    const spec = await stack(c)
    const turn = fileAt(spec.resources, '/etc/turnserver.conf')!.content
    expect(turn).toMatch(/^use-auth-secret$/m)
    expect(turn).toMatch(/^realm=chat\.example\.org$/m)
    expect(turn).toMatch(/^no-multicast-peers$/m)
    expect(turn).toMatch(/^denied-peer-ip=127\.0\.0\.0-127\.255\.255\.255$/m)
    expect(turn).toMatch(/^tls-listening-port=5349$/m)
    const dovecot = fileAt(spec.resources, '/etc/dovecot/dovecot.conf')!.content
    expect(dovecot).toContain('mail_attribute_dict = proxy:/run/chatmail-metadata/metadata.socket:metadata')
    expect(dovecot).toMatch(/imap_metadata = yes/)
    const relay = fileAt(spec.resources, '/etc/iroh-relay.toml')!.content
    expect(relay).toMatch(/^enable_stun = false$/m)
    expect(relay).toMatch(/^enable_metrics = false$/m)
    expect(relay).toContain('http_bind_addr = "127.0.0.1:3340"')
    const nginx = fileAt(spec.resources, '/etc/nginx/conf.d/chatmail.conf')!.content
    expect(nginx).toContain('location = /relay')
    expect(nginx).toContain('proxy_set_header Upgrade $http_upgrade;')
    const ip = await stack(config('203.0.113.5'))
    expect(fileAt(ip.resources, '/etc/iroh-relay.toml')!.content).toContain('http_bind_addr = "[::]:3340"')
    expect(JSON.stringify(ip.resources)).toContain('subjectAltName=IP:203.0.113.5')
  })
  it("the sign-up URLs: a browser's GET is sent to dcaccount: where core's own sign-up works; /cgi-bin/newemail.py is /new", async () => {
    const nginxOf = async (c: Config) => fileAt((await stack(c)).resources, '/etc/nginx/conf.d/chatmail.conf')!.content
    const redirect = (d: string) => `return 301 dcaccount:https://${d}/new$is_args$args;`
    const locations = (conf: string) => conf.split(/^ {4}location /m)
    for (const domain of ['chat.example.org', '_chat.example.org']) {
      const conf = await nginxOf(config(domain))
      for (const path of ['= /new {', '= /cgi-bin/newemail.py {']) {
        const block = locations(conf).find((l) => l.startsWith(path))
        expect(block, path).toContain('if ($request_method = GET) {')
        expect(block, path).toContain(redirect(domain))
      }
      expect(conf).toContain('proxy_pass http://unix:/run/chatmail-accounts/www-data/http.socket:/new;')
    }
    // Self-signed on a name without `_`, and IP-only: core's strict sign-up cannot reach them; no redirect.
    for (const c of [config('chat.example.org', { tlsMode: 'self-signed' }), config('203.0.113.5')]) {
      const conf = await nginxOf(c)
      expect(conf).not.toContain('dcaccount:')
      expect(conf).toContain('location = /cgi-bin/newemail.py {')
    }
  })
  it('nginx logs no query strings nor referers: invite tokens (/?i=, /new?i=) and addresses stay out of its access log', async () => {
    const nginx = fileAt(
      (await stack(config('chat.example.org'))).resources,
      '/etc/nginx/conf.d/chatmail.conf',
    )!.content
    const format = /^log_format (\S+) ([^;]*);$/m.exec(nginx)
    expect(format?.[1]).toBe('chatmail')
    // Where a query or the URL with it could come from: the request line, the URI, the page before.
    for (const v of [
      '$request ',
      '$request"',
      '$request_uri',
      '$args',
      '$query_string',
      '$arg_',
      '$is_args',
      '$http_referer',
    ])
      expect(format?.[2]).not.toContain(v)
    expect(format?.[2]).toContain('$request_method $uri $server_protocol')
    expect(format?.[2]).toContain('$remote_addr')
    expect(format?.[2]).toContain('$status')
    // Each server (80, whose redirect carries the query too, and 443) logs with it; no other log line.
    const servers = nginx.split(/^server \{$/m).slice(1)
    expect(servers).toHaveLength(2)
    for (const server of servers) expect(server).toMatch(/^ {4}access_log \/var\/log\/nginx\/access\.log chatmail;$/m)
    expect([...nginx.matchAll(/access_log ([^;]*);/g)].map((m) => m[1]).sort()).toEqual([
      '/var/log/nginx/access.log chatmail',
      '/var/log/nginx/access.log chatmail',
      'off',
    ])
  })
  it('passes every smtpd message through chatmail-filter, with its limits from [mail]; 451 when it is away', async () => {
    const c = config('chat.example.org')
    c.mail.maxMessageSize = 20_000_000
    c.mail.maxUserSendPerMinute = 30
    const spec = await stack(c)
    const main = fileAt(spec.resources, '/etc/postfix/main.cf')?.content ?? ''
    expect(main).toMatch(/^smtpd_milters = unix:chatmail-filter\/milter\.sock, unix:opendkim\/opendkim\.sock$/m)
    expect(main).toMatch(/^milter_default_action = tempfail$/m)
    expect(main).toMatch(/^message_size_limit = 20000000$/m)
    const conf = fileAt(spec.resources, '/etc/chatmail/filter.conf')?.content ?? ''
    expect(conf).toMatch(/^socket = \/var\/spool\/postfix\/chatmail-filter\/milter\.sock$/m)
    expect(conf).toMatch(/^max_message_size = 20000000$/m)
    expect(conf).toMatch(/^max_user_send_per_minute = 30$/m)
    expect(conf).toMatch(/^max_user_send_burst = 10$/m)
    const unit = fileAt(spec.resources, '/etc/systemd/system/chatmail-filter.service')?.content ?? ''
    expect(unit).toMatch(/^ReadWritePaths=\/var\/spool\/postfix\/chatmail-filter$/m)
    expect(unit).toMatch(/^PrivateNetwork=yes$/m)
    expect(spec.resources).toContainEqual(
      directory('/var/spool/postfix/chatmail-filter', { owner: 'chatmail-filter', group: 'postfix', mode: '0750' }),
    )
  })
  it('renders the same files twice (a second deploy changes nothing)', async () => {
    const c = config('chat.example.org')
    const a = await stack(c)
    const b = await stack(c)
    expect(b).toEqual(a)
  })
  it('pins iroh-relay v0.35.0 by sha256 per arch', async () => {
    const spec = await stack()
    const bin = spec.resources.find((r) => r.kind === 'binary')
    expect(bin).toMatchObject({
      path: '/usr/local/bin/iroh-relay',
      variants: {
        x86_64: { sha256: '45c81199dbd70f8c4c30fef7f3b9727ca6e3cea8f2831333eeaf8aa71bf0fac1' },
        aarch64: { sha256: 'f8ef27631fac213b3ef668d02acd5b3e215292746a3fc71d90c63115446008b1' },
      },
    })
    expect(JSON.stringify(bin)).toContain('iroh-relay-v0.35.0-x86_64-unknown-linux-musl.tar.gz')
  })
  it('hashes the doctor password as dovecot SSHA512, stable per secret', () => {
    const h = ssha512('pw', 'doctor@x.example', 'secret-1')
    expect(h).toMatch(/^\{SSHA512\}[A-Za-z0-9+/]+=*$/)
    expect(Buffer.from(h.slice(9), 'base64')).toHaveLength(64 + 16)
    expect(ssha512('pw', 'doctor@x.example', 'secret-1')).toBe(h)
    expect(ssha512('pw', 'doctor@x.example', 'secret-2')).not.toBe(h)
  })
  it('templates exist for every unit it restarts', () => {
    expect(readFileSync('templates/iroh-relay/iroh-relay.service', 'utf8')).toContain(
      'ExecStart=/usr/local/bin/iroh-relay --config-path /etc/iroh-relay.toml',
    )
  })
})

describe('stacks made of services', () => {
  it('claims the ports of every service, and restarts on resources of the spec', async () => {
    const spec = await stack()
    expect(spec.ports.map((p) => `${p.port}/${p.proto}`).sort()).toEqual(
      [
        '25/tcp',
        '465/tcp',
        '587/tcp',
        '143/tcp',
        '993/tcp',
        '80/tcp',
        '443/tcp',
        '3478/tcp',
        '3478/udp',
        '5349/tcp',
        '3340/tcp',
      ].sort(),
    )
    const ids = new Set(spec.resources.map((r) => r.id))
    const units = spec.resources.filter((r) => r.kind === 'service')
    expect(units.map((u) => u.unit).sort()).toEqual(
      [
        'certbot.timer',
        'chatmail-accounts.service',
        'chatmail-filter.service',
        'chatmail-expire.timer',
        'chatmail-metadata.service',
        'coturn.service',
        'dovecot.service',
        'iroh-relay.service',
        'nginx.service',
        'opendkim.service',
        'postfix.service',
      ].sort(),
    )
    for (const u of units) for (const r of [...u.restartOn, ...(u.reloadOn ?? [])]) expect(ids).toContain(r.id)
    // The certificate restarts every service that reads it.
    const cert = spec.resources.find((r) => r.id === 'command:tls-self-signed')!
    const onCert = units.filter((u) => u.restartOn.some((r) => r.id === cert.id)).map((u) => u.unit)
    expect(onCert.sort()).toEqual(['coturn.service', 'dovecot.service', 'nginx.service', 'postfix.service'])
  })
  it('keeps accounts as server data and the doctor account in its own managed file', async () => {
    const spec = await stack()
    const users = fileAt(spec.resources, '/etc/dovecot/users')!
    expect(users).toMatchObject({ data: true, group: 'dovecot', mode: '0640' })
    // Created with a comment on its lines' format, and nothing else (dovecot skips # lines).
    expect(users.content.split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toEqual([])
    expect(users.content).toContain('#   ADDRESS:{SHA512-CRYPT}HASH::\n')
    expect(users.content).toContain('e.g. admin@chat.example.org\n')
    expect(users.content).toContain('/home/vmail/mail/chat.example.org/LOCAL')
    // Server data, not managed: no MANAGED_BY line (which would make it removable as a stale managed file).
    expect(users.content).not.toContain(MANAGED_BY)
    const doctor = fileAt(spec.resources, '/etc/dovecot/doctor.passwd')!
    expect(doctor.data).toBeUndefined()
    expect(doctor.secret).toBe(true)
    expect(doctor.content).toMatch(/^doctor@chat\.example\.org:\{SSHA512\}/)
    const conf = fileAt(spec.resources, '/etc/dovecot/dovecot.conf')!.content
    expect(conf.indexOf('/etc/dovecot/doctor.passwd')).toBeGreaterThan(0)
    expect(conf.indexOf('/etc/dovecot/users')).toBeGreaterThan(conf.indexOf('/etc/dovecot/doctor.passwd'))
  })
  it('on an IP-only server the doctor is doctor@[IP] in dovecot and in postfix (postfix delivers to that form)', async () => {
    const spec = await stack(config('203.0.113.5'))
    expect(fileAt(spec.resources, '/etc/dovecot/doctor.passwd')!.content).toMatch(
      /^doctor@\[203\.0\.113\.5\]:\{SSHA512\}/,
    )
    expect(fileAt(spec.resources, '/etc/dovecot/users')!.content).toContain('e.g. admin@[203.0.113.5]\n')
    expect(fileAt(spec.resources, '/etc/postfix/main.cf')!.content).toMatch(
      /^local_recipient_maps = inline:\{ \{doctor@\[203\.0\.113\.5\]=ok\} \}, /m,
    )
  })
  it("on an IP-only server the passwd-file accounts' mailboxes are beside chatmail-accounts' (the bare IP), on 2.3 and 2.4", async () => {
    const build = (release: string) => buildTestStack(config('203.0.113.5'), { host: { ...BOOKWORM, release } })
    const v23 = fileAt((await build('12')).resources, '/etc/dovecot/dovecot.conf')!.content
    const v24 = fileAt((await build('13')).resources, '/etc/dovecot/dovecot.conf')!.content
    // Where chatmail-accounts puts an account's mailbox (its userdb answer, its expiry).
    const home = mailHome('/home/vmail/mail', canonical('LOCAL@[203.0.113.5]', '203.0.113.5')!, '203.0.113.5')
    expect(home).toBe('/home/vmail/mail/203.0.113.5/local')
    const accountsHome = home.replace(/local$/, 'LOCAL')
    expect(v23.match(/home=\S+/g)).toEqual(Array(2).fill(`home=${accountsHome.replace('LOCAL', '%n')}`))
    expect(v23).toContain(`mail_home = ${accountsHome.replace('LOCAL', '%n')}\n`)
    const v24home = accountsHome.replace('LOCAL', '%{user | username}')
    expect(v24.match(/^\s+home = .*$/gm)?.map((l) => l.trim())).toEqual(Array(2).fill(`home = ${v24home}`))
    expect(v24).toContain(`mail_home = ${v24home}\n`)
    for (const v of [v23, v24]) expect(v).not.toMatch(/mail\/(%d|%\{user \| domain\}|\[)/)
  })
  it("renders a release's own template when templates/<dir>/debian-<release>/ has one", async () => {
    const templates = mkdtempSync(join(tmpdir(), 'chatmail-templates-'))
    cpSync(resolve('templates'), templates, { recursive: true })
    mkdirSync(join(templates, 'postfix', 'debian-13'))
    writeFileSync(
      join(templates, 'postfix', 'debian-13', 'own_senders'),
      'trixie {{own_sender_lines}} {{managed_by}}\n',
    )
    const build = (release: string) =>
      buildTestStack(config('chat.example.org'), { host: { ...BOOKWORM, release }, templatesDir: templates })
    expect(fileAt((await build('13')).resources, '/etc/postfix/own_senders')!.content).toMatch(
      /^trixie \/@chat\\\.example\\\.org\$\/i REJECT /,
    )
    expect(fileAt((await build('12')).resources, '/etc/postfix/own_senders')!.content).not.toContain('trixie')
  })
  it('renders dovecot 2.3 on Debian 12 and 2.4 on Debian 13, or for the dovecot-core installed', async () => {
    const conf = async (release: string, core?: string) => {
      const packages = new Map(core ? [['dovecot-core', core]] : [])
      const spec = await buildTestStack(config('chat.example.org'), { host: { ...BOOKWORM, release, packages } })
      expect(checkSpec(spec)).toEqual([])
      return fileAt(spec.resources, '/etc/dovecot/dovecot.conf')!.content
    }
    const v23 = await conf('12')
    expect(v23).not.toContain('dovecot_config_version')
    expect(v23).toContain('mail_attribute_dict = proxy:/run/chatmail-metadata/metadata.socket:metadata')
    expect(v23).toContain('ssl_cert = </etc/chatmail/tls/fullchain.pem')
    const v24 = await conf('13')
    // 2.4 wants the version first, before any other setting.
    expect(v24.split('\n').find((l) => l !== '' && !l.startsWith('#'))).toBe('dovecot_config_version = 2.4.0')
    expect(v24).toContain('dict_proxy_socket_path = /run/chatmail-metadata/metadata.socket')
    expect(v24).toContain('ssl_server_cert_file = /etc/chatmail/tls/fullchain.pem')
    expect(v24.indexOf('/etc/dovecot/users')).toBeGreaterThan(v24.indexOf('/etc/dovecot/doctor.passwd'))
    expect(v24).not.toMatch(/%[dnLu]\b|mail_location|disable_plaintext_auth|ssl_cert =/)
    // On both: XCHATMAIL, and logins as user@[IP] (an IP-only server's accounts and its doctor).
    expect(v23).toContain('imap_capability = +XCHATMAIL')
    expect(v24).toMatch(/imap_capability \{\n\s+XCHATMAIL = yes\n/)
    for (const v of [v23, v24]) expect(v).toMatch(/^auth_username_chars = [^\n]*@\[\]$/m)
    expect(await conf('13', '1:2.3.19.1+dfsg1-2.1+deb12u7')).toBe(v23)
    expect(await conf('12', '1:2.4.1+dfsg1-6+deb13u7')).toBe(v24)
  })
  it('dovecot 2.3 and 2.4 alike: chatmail-accounts after the passwd-files, XCHATMAIL, user@[IP], the admin contact', async () => {
    const c = config('chat.example.org')
    c.mail.admin = 'ops@example.org'
    c.mail.comment = 'a test server'
    const build = (release: string) => buildTestStack(c, { host: { ...BOOKWORM, release } })
    const [s12, s13] = [await build('12'), await build('13')]
    const v23 = fileAt(s12.resources, '/etc/dovecot/dovecot.conf')!.content
    const v24 = fileAt(s13.resources, '/etc/dovecot/dovecot.conf')!.content
    for (const conf of [v23, v24]) {
      expect(conf).toContain('mail_server_admin = mailto:ops@example.org')
      expect(conf).toContain('mail_server_comment = a test server')
      expect(conf).toMatch(/^auth_username_chars = .*@\[\]$/m)
      expect(conf).toMatch(/XCHATMAIL/)
    }
    // 2.3: the dict passdb/userdb after both passwd-files; 2.4 has no dict passdb: a Lua script.
    expect(v23.indexOf('driver = dict')).toBeGreaterThan(v23.indexOf('/etc/dovecot/users'))
    expect(v23).toContain('imap_capability = +XCHATMAIL')
    expect(fileAt(s12.resources, '/etc/dovecot/accounts-dict.conf.ext')!.content).toContain(
      'uri = proxy:/run/chatmail-accounts/dovecot/dict.socket:accounts',
    )
    expect(fileAt(s12.resources, '/etc/dovecot/chatmail-accounts.lua')).toBeUndefined()
    expect(v24.match(/^(passdb|userdb) \w+/gm)).toEqual([
      'passdb doctor',
      'passdb users',
      'passdb accounts',
      'userdb doctor',
      'userdb users',
      'userdb accounts',
    ])
    expect(v24.match(/lua_file = \/etc\/dovecot\/chatmail-accounts\.lua/g)).toHaveLength(2)
    expect(v24).toMatch(/imap_capability \{\s+XCHATMAIL = yes\s/)
    const lua = fileAt(s13.resources, '/etc/dovecot/chatmail-accounts.lua')!.content
    expect(lua).toContain('local SOCKET = "/run/chatmail-accounts/dovecot/dict.socket"')
    expect(fileAt(s13.resources, '/etc/dovecot/accounts-dict.conf.ext')).toBeUndefined()
    const pkgs = (s: typeof s12) => s.resources.flatMap((r) => (r.kind === 'package' ? [r.name] : []))
    expect(pkgs(s13)).toEqual(expect.arrayContaining(['dovecot-auth-lua', 'lua-socket', 'lua-cjson']))
    expect(pkgs(s12)).not.toContain('dovecot-auth-lua')
    const unit = s13.resources.find((r) => r.kind === 'service' && r.unit === 'dovecot.service')
    if (unit?.kind !== 'service') throw new Error('no dovecot.service')
    expect(unit.restartOn.map((r) => r.id)).toContain('file:/etc/dovecot/chatmail-accounts.lua')
  })
  it('makes the self-signed certificate again when it no longer names the server (an IP-only server given a domain)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatmail-selfsigned-'))
    const local = (cmd: string) =>
      cmd.replaceAll(PATHS.tlsCert, join(dir, 'cert.pem')).replaceAll(PATHS.tlsKey, join(dir, 'key.pem'))
    const resource = async (domain: string) =>
      (await stack(config(domain, { tlsMode: 'self-signed' }))).resources.find(
        (r): r is CommandResource => r.id === 'command:tls-self-signed',
      )!
    const sh = (cmd: string) => spawnSync('bash', ['-c', local(cmd)]).status
    // The command's own openssl step (real openssl; the chown and the move are the host's business).
    const make = async (domain: string) =>
      sh(
        `${(await resource(domain)).run.split(' && ')[0]} && mv ${PATHS.tlsKey}.new ${PATHS.tlsKey} && mv ${PATHS.tlsCert}.new ${PATHS.tlsCert}`,
      )
    const kept = async (domain: string) => sh((await resource(domain)).unless) === 0
    expect(await kept('203.0.113.5')).toBe(false) // no certificate yet
    expect(await make('203.0.113.5')).toBe(0)
    expect(await kept('203.0.113.5')).toBe(true)
    expect(await kept('chat.example.org')).toBe(false)
    expect(await kept('203.0.113.6')).toBe(false)
    expect(await make('chat.example.org')).toBe(0)
    expect(await kept('chat.example.org')).toBe(true)
    expect(await kept('203.0.113.5')).toBe(false)
  })
  it('dovecot 2.3 and 2.4 alike: many devices (hibernation, limits, the unit drop-in, inotify)', async () => {
    const build = (release: string) => buildTestStack(config('chat.example.org'), { host: { ...BOOKWORM, release } })
    for (const [release, internalUser] of [
      ['12', '$default_internal_user'],
      ['13', '$SET:default_internal_user'],
    ] as const) {
      const spec = await build(release)
      const conf = fileAt(spec.resources, '/etc/dovecot/dovecot.conf')!.content
      expect(conf).toMatch(/^imap_hibernate_timeout = 30s$/m)
      // Delta Chat compresses whenever offered, and a compressed session cannot hibernate.
      if (release === '13') expect(conf).toMatch(/^\s+"COMPRESS=DEFLATE" = no$/m)
      else expect(conf).not.toMatch(/imap_zlib|COMPRESS/)
      const imap = /^service imap \{\n([\s\S]*?)^\}/m.exec(conf)?.[1] ?? ''
      expect(imap).toContain(`unix_listener imap-master {\n    user = ${internalUser}\n  }`)
      const processLimit = Number(/^ {2}process_limit = (\d+)$/m.exec(imap)?.[1])
      const auth = /^service auth \{\n([\s\S]*?)^\}/m.exec(conf)?.[1] ?? ''
      const authLimit = Number(/^ {2}client_limit = (\d+)$/m.exec(auth)?.[1])
      // auth takes a connection from each reused imap process and each imap-login, imap-urlauth-login
      // and lmtp process (doveconf counts 100 each), which the limit covers.
      expect([processLimit, authLimit]).toEqual([1700, 2000])
      expect(processLimit + 3 * 100).toBeLessThanOrEqual(authLimit)
      expect(conf).not.toMatch(/^\s*default_client_limit\b/m)
      expect(auth).toContain('unix_listener /var/spool/postfix/private/auth {')
      const dropin = fileAt(spec.resources, '/etc/systemd/system/dovecot.service.d/chatmail.conf')!.content
      const unit = (key: string) => Number(new RegExp(`^${key}=(\\d+)$`, 'm').exec(dropin)?.[1])
      // Two descriptors per device in imap-login and imap-hibernate (dovecot's default 1000 a
      // process), one per client in auth; a task per imap process.
      expect(unit('LimitNOFILE')).toBeGreaterThanOrEqual(2 * Math.max(1000, authLimit))
      expect(unit('TasksMax')).toBeGreaterThan(processLimit + 1000)
      const dovecot = spec.resources.find((r) => r.kind === 'service' && r.unit === 'dovecot.service')
      if (dovecot?.kind !== 'service') throw new Error('no dovecot.service')
      expect(dovecot.restartOn.map((r) => r.id)).toContain('file:/etc/systemd/system/dovecot.service.d/chatmail.conf')
      const sysctl = fileAt(spec.resources, '/etc/sysctl.d/60-chatmail-dovecot.conf')!.content
      expect(sysctl).toMatch(/^fs\.inotify\.max_user_instances = 65536$/m)
      expect(sysctl).toMatch(/^fs\.inotify\.max_user_watches = 262144$/m)
      const apply = spec.resources.find((r) => r.id === 'command:dovecot-inotify-limits') as CommandResource
      expect(apply.run).toBe('/usr/lib/systemd/systemd-sysctl /etc/sysctl.d/60-chatmail-dovecot.conf')
      // Nothing to do where /proc/sys/fs is read-only (a container) or the limits hold already.
      expect(apply.unless).toMatch(/^\[ ! -w \/proc\/sys\/fs\/inotify\/max_user_instances \] \|\| /)
    }
  })
  it("removes the other release's dovecot file after an upgrade, only while it carries our managed-by line", async () => {
    const cmd = async (release: string) => {
      const spec = await buildTestStack(config('chat.example.org'), { host: { ...BOOKWORM, release } })
      return spec.resources.find(
        (r): r is CommandResource => r.kind === 'command' && r.id === 'command:dovecot-other-release-files',
      )
    }
    expect(await cmd('13')).toMatchObject({
      description: 'remove /etc/dovecot/accounts-dict.conf.ext (dovecot 2.4 does not read it)',
      phase: 'after-services',
    })
    expect((await cmd('12'))?.description).toBe(
      'remove /etc/dovecot/chatmail-accounts.lua (dovecot 2.3 does not read it)',
    )
    // The shell itself, on files of a scratch directory: ours goes, the operator's and a missing one stay.
    const d = mkdtempSync(join(tmpdir(), 'chatmail-obsolete-'))
    const [ours, theirs, gone] = ['ours.conf', 'theirs.conf', 'gone.conf'].map((f) => join(d, f)) as [
      string,
      string,
      string,
    ]
    writeFileSync(ours, `# ${MANAGED_BY}\nuri = proxy:x\n`)
    writeFileSync(theirs, 'uri = proxy:mine\n')
    const c = obsoleteManagedFiles('t', 'test', [ours, theirs, gone])
    const sh = (script: string) => spawnSync('bash', ['-c', script]).status
    expect(sh(c.unless)).toBe(1)
    expect(sh(c.run)).toBe(0)
    expect([existsSync(ours), existsSync(theirs), existsSync(gone)]).toEqual([false, true, false])
    expect(sh(c.unless)).toBe(0)
    expect(sh(obsoleteManagedFiles('t', 'test', [theirs, gone]).unless)).toBe(0)
  })
  it('refuses a profile without a stack, and two services declaring one resource differently', async () => {
    // The config refuses such a profile at load already (test/unit/config.test.ts); the registry still guards.
    expect(() => stackFor('madmail' as Config['profile'])).toThrow(
      /profile madmail cannot be deployed yet; only dovecot is implemented/,
    )
    const a = { name: 'a', build: () => ({ directories: [directory('/srv/x')] }) }
    const b = { name: 'b', build: () => ({ directories: [directory('/srv/x', { mode: '0700' })] }) }
    const c = { name: 'c', build: () => ({ directories: [directory('/srv/x')] }) }
    const ctx = testStackContext(config('x.example.org'))
    await expect(buildStack({ profile: 't', services: [a, b] }, ctx)).rejects.toThrow(
      /a and b declare dir:\/srv\/x differently/,
    )
    expect((await buildStack({ profile: 't', services: [a, c] }, ctx)).resources).toHaveLength(1)
  })
})
